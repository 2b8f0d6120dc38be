"""The packed trainer's optimizer: K AdamWs in one, each model with its own learning rate and step count, whose
per-model state converts one to one to and from the ``torch.optim.AdamW`` state dict a single run saves."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from bookmix.models.model import LM
from bookmix.models.packed import PackedLM
from bookmix.training.config import TrainConfig
from bookmix.training.step import make_optimizer


class PackedAdamW:
    """``torch.optim.AdamW`` (decoupled decay, bias-corrected moments) for every model of a pack at once, each with its
    own learning rate and step count. Hyper-parameters and the decay/no-decay split are those of the single trainer's
    :func:`~bookmix.training.step.make_optimizer`, read from an AdamW it builds over a shape-only model, so that the
    per-model state converts one to one to and from the state dict a single run saves."""

    def __init__(self, pack: PackedLM, cfg: TrainConfig) -> None:
        with torch.device("meta"):
            shape_model = LM(pack.cfg)
        template = make_optimizer(shape_model, cfg, torch.device("cpu"))
        name_of = {id(p): n for n, p in shape_model.named_parameters()}
        self.order = [name_of[id(p)] for g in template.param_groups for p in g["params"]]
        """Parameter names in the order of a single run's AdamW state dict (its integer keys)."""
        self.decay = {name_of[id(p)]: g["weight_decay"] for g in template.param_groups for p in g["params"]}
        self.template = template.state_dict()
        self.betas, self.eps = cfg.betas, cfg.eps
        self.params = dict(pack.named_parameters())
        self.exp_avg = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.steps = [0] * pack.k

    # -- slots ------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def set_member(self, k: int, state: dict) -> None:
        """Load slot k from a single run's AdamW state dict (``optimizer.state_dict()``); an empty state is a fresh start."""
        per_param = state.get("state", {})
        if not per_param:
            self.steps[k] = 0
            for n in self.params:
                self.exp_avg[n][k].zero_()
                self.exp_avg_sq[n][k].zero_()
            return
        for i, name in enumerate(self.order):
            s = per_param[i]
            self.exp_avg[name][k].copy_(s["exp_avg"])
            self.exp_avg_sq[name][k].copy_(s["exp_avg_sq"])
        self.steps[k] = int(float(per_param[0]["step"]))

    def member(self, k: int, lr: float) -> dict:
        """Slot k as a single run's AdamW state dict: what ``torch.optim.AdamW.load_state_dict`` accepts."""
        groups = [dict(g, lr=lr) for g in self.template["param_groups"]]
        if self.steps[k] == 0:
            return {"state": {}, "param_groups": groups}
        step = torch.tensor(float(self.steps[k]), dtype=torch.float32)
        state = {
            # clone: a view would carry the whole pack's storage into torch.save (K times the file, K times the write)
            i: {
                "step": step.clone(),
                "exp_avg": self.exp_avg[n][k].detach().cpu().clone(),
                "exp_avg_sq": self.exp_avg_sq[n][k].detach().cpu().clone(),
            }
            for i, n in enumerate(self.order)
        }
        return {"state": state, "param_groups": groups}

    def keep(self, slots: list[int]) -> None:
        """Follow :meth:`PackedLM.keep` (call it after the pack's, whose parameters this holds)."""
        index = torch.as_tensor(slots, dtype=torch.long, device=next(iter(self.params.values())).device)
        for store in (self.exp_avg, self.exp_avg_sq):
            for n in store:
                store[n] = store[n].index_select(0, index)
        self.steps = [self.steps[s] for s in slots]

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    # -- the update -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, lrs: Sequence[float]) -> None:
        """One AdamW step of every model, model k at learning rate ``lrs[k]``.

        The per-model scalars (decay factor, bias corrections) are computed on the host in float64 as torch's AdamW
        does, then applied as (K, 1, ...) tensors; the moments update as torch's foreach implementation does."""
        b1, b2 = self.betas
        self.steps = [s + 1 for s in self.steps]
        dev = next(iter(self.params.values())).device
        bc1 = [1 - b1**s for s in self.steps]
        bc2_sqrt = [math.sqrt(1 - b2**s) for s in self.steps]

        def vec(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32).to(dev, non_blocking=True)

        neg_step = vec([-lr / c for lr, c in zip(lrs, bc1, strict=True)])
        bc2_t = vec(bc2_sqrt)
        decay_cache: dict[float, torch.Tensor] = {}
        for name, p in self.params.items():
            g = p.grad
            if g is None:
                continue
            wd = self.decay[name]
            if wd and wd not in decay_cache:
                decay_cache[wd] = vec([1 - lr * wd for lr in lrs])
            decay = decay_cache[wd] if wd else None
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            # On a CPU a few models at a time, so that the update's temporaries stay small enough for the caches.
            per = p.shape[0] if dev.type != "cpu" else max(1, OPTIMIZER_CPU_SLAB_BYTES // (4 * p[0].numel()))
            for lo in range(0, p.shape[0], per):
                ks = slice(lo, lo + per)
                self._update(p[ks], g[ks], m[ks], v[ks], None if decay is None else decay[ks], bc2_t[ks], neg_step[ks])

    def _update(self, p, g, m, v, decay, bc2, neg_step) -> None:  # noqa: ANN001
        shape = (-1,) + (1,) * (p.dim() - 1)
        b1, b2 = self.betas
        if decay is not None:
            p.mul_(decay.view(shape))
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (v.sqrt() / bc2.view(shape)).add_(self.eps)
        p.addcmul_(torch.div(m, denom, out=denom), neg_step.view(shape))


OPTIMIZER_CPU_SLAB_BYTES = 16 << 20
"""On a CPU, :meth:`PackedAdamW.step` updates a parameter this many bytes of models at a time."""
