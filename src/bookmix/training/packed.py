"""The packed trainer: K models of one shape, each on its own stream, trained together in one process.

    results = train_pack(model_cfg, train_cfg, streams, out_dirs, heldouts=None, seeds=None)

Each model is a trial as :func:`bookmix.training.loop.train` runs it: its own seed, data, learning-rate schedule
position, AdamW state, gradient clipping, curve, checkpoints and divergence handling; and each ``out_dirs[k]`` ends up
holding exactly the files a single ``train()`` writes (``checkpoint/`` in the same format, with the optimizer state
as a ``torch.optim.AdamW`` state dict, ``curve.jsonl``, ``events.jsonl``, ``result.json``). So a packed trial is
resumed, evaluated and exported like any other, and can even be resumed by ``train()`` alone, or the reverse.

Only the arithmetic is shared: the weights live in one :class:`~bookmix.models.packed.PackedLM`, a step is one
batched forward/backward over (K, B, T) windows, clipping and AdamW run on every model at once with per-model
learning rates and norms. Nothing mixes two models, so on CPU in fp32 a pack computes what K separate runs compute
(to rounding). A model whose stream ends, or whose loss turns NaN, leaves the pack; the others go on.

Pack size: :func:`auto_pack_size` from the memory estimate (``bookmix.forecast.memory``) and the point where a pack
has enough arithmetic per step to keep a GPU busy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bookmix.errors import BookmixError
from bookmix.models.config import ModelConfig
from bookmix.models.model import IGNORE_INDEX, LM
from bookmix.models.packed import PackedLM
from bookmix.recipes.stream import WindowSource
from bookmix.training.checkpoint import CHECKPOINT, read_checkpoint, recover, save_checkpoint
from bookmix.training.config import TrainConfig
from bookmix.training.curve import CURVE, Curve
from bookmix.training.device import autocast, compute_dtype, enable_fast_math, memory_bytes, resolve_device
from bookmix.training.evaluate import sample_windows
from bookmix.training.faults import FaultInjector

# The single trainer's own helpers, so that a pack validates windows, checks a resume and logs events exactly as
# train() does.
from bookmix.training.loop import Events, RunPlan, check_resumable, load_windows, plan_run, run_config
from bookmix.training.result import RESULT, TrainResult, finite_or_none
from bookmix.training.schedule import lr_at
from bookmix.training.step import make_optimizer, to_device

__all__ = [
    "MAX_PACK", "PACK_CPU_ACTIVATION_BYTES", "PACK_TARGET_FLOPS_PER_TOKEN", "PackedAdamW", "auto_pack_size",
    "cpu_pack_cap", "pack_size", "packed_step", "train_pack", "train_recipes_packed",
]

LogFn = Callable[[dict], None]

MAX_PACK = 64
"""Most models in one pack. Past a few dozen micro-models a GPU is saturated and a bigger pack only adds memory."""

PACK_TARGET_FLOPS_PER_TOKEN = 9e8
"""Training FLOPs per token of the whole pack worth aiming at: about GPT-2 small's (124M parameters, T=1024), a model
that already keeps an H100's tensor cores well fed. K = this / one model's FLOPs per token: ~40 nano, ~8 micro."""


# ---- pack size -----------------------------------------------------------------------------------------------------
def _dtype_name(dtype: torch.dtype) -> str:
    return "bf16" if dtype == torch.bfloat16 else "fp32"


def pack_bytes(model_cfg: ModelConfig, k: int, micro_batch: int, seq_len: int, dtype: str) -> int:
    """Estimated peak bytes of a pack of ``k``: k models' tensors, but one output-layer block and one process's CUDA
    context (``forecast.memory.estimate_memory(models=k)``)."""
    from bookmix.forecast.memory import estimate_memory

    return estimate_memory(model_cfg, micro_batch, seq_len=seq_len, dtype=dtype, optimizer="adamw", models=k).total_bytes


def pack_size(model_cfg: ModelConfig, micro_batch: int, seq_len: int, dtype: str, available: int) -> int:
    """Models of this shape to train together in ``available`` bytes: as many as fit at ``micro_batch``, no more than
    it takes to keep a GPU busy (:data:`PACK_TARGET_FLOPS_PER_TOKEN`), at most :data:`MAX_PACK`, at least 1."""
    fits = 0
    while fits < MAX_PACK and pack_bytes(model_cfg, fits + 1, micro_batch, seq_len, dtype) <= available:
        fits += 1
    busy = math.floor(PACK_TARGET_FLOPS_PER_TOKEN / model_cfg.flops_per_token(seq_len))
    return int(max(1, min(fits, busy, MAX_PACK)))


def auto_pack_size(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    device: str | torch.device | None = None,
    seq_len: int | None = None,
    available: int | None = None,
) -> int:
    """The pack size for ``device``: :func:`pack_size` from its memory (or ``available`` bytes, planning for another
    machine) on a GPU; 1 on a CPU, where packing gains little: a CPU already runs a small model's matmuls at full
    speed (bench/train_packed.py: 0.95–1.15× sequential on 2 threads; a forced pack trains in sub-packs of
    :func:`cpu_pack_cap`)."""
    dev = resolve_device(device if device is not None else train_cfg.device)
    if dev.type == "cpu" and available is None:
        return 1
    dtype = _dtype_name(compute_dtype(dev, train_cfg.dtype))
    t = seq_len or model_cfg.block_size
    return pack_size(model_cfg, train_cfg.micro_batch, t, dtype, memory_bytes(dev) if available is None else int(available))


def fit_pack_micro_batch(model_cfg: ModelConfig, k: int, micro_batch: int, seq_len: int, dtype: str, available: int) -> int:
    """The largest micro-batch ≤ ``micro_batch`` (halving) at which a pack of ``k`` fits ``available`` bytes."""
    mb = micro_batch
    while pack_bytes(model_cfg, k, mb, seq_len, dtype) > available:
        if mb == 1:
            need = pack_bytes(model_cfg, k, 1, seq_len, dtype)
            raise BookmixError(
                f"pack of {k} {model_cfg.name!r} models needs about {need / 2**30:.1f} GiB even at micro-batch 1, "
                f"but the device has {available / 2**30:.1f} GiB; use a smaller pack (auto_pack_size)"
            )
        mb = max(1, mb // 2)
    return mb


PACK_CPU_ACTIVATION_BYTES = 32 << 20
"""On a CPU, the most bytes the widest activation of one packed forward (K × micro-batch × T × max(d_ff, d_model)
floats) may take; a bigger pack trains as sub-packs (:func:`cpu_pack_cap`). A pack's activations are K times a single
model's and stream from memory rather than cache once too big. Micro × 16 on 2 threads, with the pack step of
bench/train_packed.py: whole micro-batches of 8 (64 MiB) 0.93× sequential, split into 4 or 2 windows a pass
0.96–1.01×, sub-packs of 8 at whole micro-batches 1.06×."""


def cpu_pack_cap(model_cfg: ModelConfig, micro_batch: int, seq_len: int) -> int:
    """On a CPU, the most models one packed step takes: as many as keep a whole micro-batch's widest activation within
    :data:`PACK_CPU_ACTIVATION_BYTES`. A bigger pack would have to split its micro-batches, and on a CPU the extra
    passes cost more than packing saves (micro × 32 split to 2 windows a pass: 0.81× sequential), so
    :func:`train_pack` trains it as sub-packs of this size, one after another, each model exactly as in one pack."""
    widest = 4 * micro_batch * seq_len * max(model_cfg.ff_dim, model_cfg.d_model)
    return int(max(1, min(MAX_PACK, PACK_CPU_ACTIVATION_BYTES // widest)))


# ---- the optimizer: K AdamWs in one ------------------------------------------------------------------------------
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
            i: {"step": step.clone(), "exp_avg": self.exp_avg[n][k].detach().cpu().clone(),
                "exp_avg_sq": self.exp_avg_sq[n][k].detach().cpu().clone()}
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


def clip_grad_norms(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Per-model global gradient norm (K,), and each model's gradients scaled to at most ``max_norm`` as
    ``torch.nn.utils.clip_grad_norm_`` scales a single model's (0 turns clipping off)."""
    grads = [p.grad for p in params if p.grad is not None]
    sq = sum(torch.linalg.vector_norm(g.flatten(1), dim=1, dtype=torch.float32).square() for g in grads)
    norms = sq.sqrt()  # (K,)
    if max_norm > 0:
        coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view((-1,) + (1,) * (g.dim() - 1)).to(g.dtype))
    return norms


# ---- one step of the pack ------------------------------------------------------------------------------------------
def _chunk_share(counts: torch.Tensor, lo: int, size: int) -> torch.Tensor:
    """Fraction of each model's windows (counts (K,)) that fall in rows lo..lo+size of the padded batch."""
    in_chunk = (counts - lo).clamp(min=0, max=size)
    return in_chunk / counts.clamp_min(1)


def packed_step(
    model: torch.nn.Module,
    optimizer: PackedAdamW,
    batch: torch.Tensor,
    counts: torch.Tensor,
    *,
    micro_batch: int,
    lrs: Sequence[float],
    grad_clip: float,
    device: torch.device,
    dtype: torch.dtype,
    corrupt: torch.Tensor | None = None,
    check_memory: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward over ``batch`` (K, E, T+1) in micro-batches, clip, update. Returns (loss (K,), grad norm (K,)).

    Model k's windows are rows ``0 .. counts[k]`` of its slice; the rest is padding (IGNORE_INDEX, which the inputs
    read as token 0 and the loss leaves out). Each micro-batch's per-model loss is weighted by the model's share of
    its windows there, so every model's gradient is the mean over its whole batch, as in ``step.train_step``.
    ``corrupt`` (K,) multiplies the losses (fault injection: NaN for one model); no host sync happens here.
    """
    batch = to_device(batch, device)
    counts_dev = counts.to(device)
    total = torch.zeros(batch.shape[0], device=device)
    for lo in range(0, batch.shape[1], micro_batch):
        chunk = batch[:, lo : lo + micro_batch]
        if check_memory is not None:
            check_memory(chunk.shape[1])
        with autocast(device, dtype):
            # inputs (K, b, T), targets shifted by one; the loss without the pack's whole logits (head_loss)
            _, loss = model(chunk[..., :-1].clamp_min(0), chunk[..., 1:], logits=False)
        if corrupt is not None:
            loss = loss * corrupt
        loss = loss * _chunk_share(counts_dev, lo, chunk.shape[1])
        loss.sum().backward()  # models share no weight: the sum's gradient for model k is its own loss's
        total += loss.detach()
    params = list(optimizer.params.values())
    grad_norm = clip_grad_norms(params, grad_clip)
    optimizer.step(lrs)
    optimizer.zero_grad()
    return total, grad_norm


@torch.no_grad()
def packed_heldout_loss(
    model: torch.nn.Module, windows: torch.Tensor, counts: torch.Tensor, micro_batch: int, device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Per-model token-weighted mean loss (K,) on held-out ``windows`` (K, n, T+1), model k's first ``counts[k]`` rows."""
    was_training = model.training
    model.eval()
    windows, counts = windows.to(device), counts.to(device)
    total = torch.zeros(windows.shape[0], device=device, dtype=torch.float64)
    for lo in range(0, windows.shape[1], micro_batch):
        chunk = windows[:, lo : lo + micro_batch]
        with autocast(device, dtype):
            _, loss = model(chunk[..., :-1].clamp_min(0), chunk[..., 1:], logits=False)
        total += loss.double() * _chunk_share(counts, lo, chunk.shape[1]).double()
    model.train(was_training)
    return total


# ---- one model's bookkeeping -----------------------------------------------------------------------------------
@dataclass
class _Member:
    """One trial in the pack: its plan, files and progress, as the single trainer keeps them in its locals."""

    index: int
    """Position in the caller's lists (and in the returned results)."""
    out_dir: Path
    stream: WindowSource
    plan: RunPlan
    train_cfg: TrainConfig
    config: dict
    events: Events
    fault: FaultInjector | None
    held: np.ndarray | None
    step: int = 0
    tokens: int = 0
    seconds0: float = 0.0
    last_loss: float | None = None
    micro_batch: int | None = None
    curve: Curve | None = None
    mark_tokens: int = 0
    mark_t: float = 0.0
    record: dict = field(default_factory=dict)

    @property
    def paths(self) -> dict[str, str]:
        return {"checkpoint": str(self.out_dir / CHECKPOINT), "curve": str(self.out_dir / CURVE), "result": str(self.out_dir / RESULT)}


def _open_member(index, model_cfg, train_cfg, stream, out_dir, meta, fault) -> tuple[_Member, dict, dict]:  # noqa: ANN001
    """Plan one trial, check or read its checkpoint; returns (member, weights, AdamW state dict)."""
    plan = plan_run(model_cfg, train_cfg, stream)
    config = run_config(model_cfg, train_cfg, stream, plan, meta)
    member = _Member(index, out_dir, stream, plan, train_cfg, config, Events(out_dir / "events.jsonl", None), fault, None)
    recover(out_dir)
    ckpt = read_checkpoint(out_dir)
    if ckpt is None:
        lm = LM(model_cfg, seed=train_cfg.seed)  # on CPU, as train() builds it: the same weights bit for bit
        return member, dict(lm.named_parameters()), {}
    check_resumable(ckpt, config, train_cfg)
    from safetensors.torch import load_file

    tensors = load_file(ckpt.path / "model.safetensors")
    blob = torch.load(ckpt.path / "optimizer.pt", map_location="cpu", weights_only=True)
    member.step, member.tokens = int(ckpt.state["step"]), int(ckpt.state["tokens"])
    member.seconds0, member.last_loss = float(ckpt.state["seconds"]), ckpt.state.get("last_loss")
    member.micro_batch = int(ckpt.state["micro_batch"])
    return member, tensors, blob["optimizer"]


def _stack_windows(arrays: list[np.ndarray], seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, n_max, T+1) int64, each model's rows first and IGNORE_INDEX padding after; and the counts (K,)."""
    counts = [a.shape[0] for a in arrays]
    out = np.full((len(arrays), max(counts), seq_len + 1), IGNORE_INDEX, dtype=np.int64)
    for k, a in enumerate(arrays):
        out[k, : a.shape[0]] = a
    return torch.from_numpy(out), torch.tensor(counts, dtype=torch.long)


# ---- the packed trainer ------------------------------------------------------------------------------------------
def train_pack(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    streams: Sequence[WindowSource],
    out_dirs: Sequence[str | Path],
    heldouts: WindowSource | Sequence[WindowSource | None] | None = None,
    device: str | torch.device | None = None,
    seeds: Sequence[int] | None = None,
    on_log: LogFn | None = None,
    metas: Sequence[dict | None] | None = None,
    faults: Sequence[FaultInjector | None] | None = None,
) -> list[TrainResult]:
    """Train (or resume, or return the stored results of) one model per stream, together. See the module docstring.

    ``heldouts``: one held-out stream for all, or one per model. ``seeds[k]`` replaces ``train_cfg.seed`` for model k
    (default: every model uses ``train_cfg.seed``, as K separate ``train()`` calls would). ``on_log`` gets what
    ``train()``'s on_log gets, each record with ``pack_index`` (k) added. ``metas[k]`` is stored in model k's
    checkpoint like ``train(meta=...)``; ``faults`` injects simulated faults per model (tests only).
    """
    k_all = len(streams)
    out_paths = [Path(d) for d in out_dirs]
    if k_all == 0:
        raise BookmixError("train_pack: streams: a pack needs at least one stream")
    per_model = {"out_dirs": out_paths, "seeds": seeds, "metas": metas, "faults": faults}
    if heldouts is not None and not isinstance(heldouts, WindowSource):
        per_model["heldouts"] = heldouts
    for name, values in per_model.items():
        if values is not None and len(values) != k_all:
            raise BookmixError(f"train_pack: {name}: {len(values)} given for {k_all} streams")
    if len({p.resolve() for p in out_paths}) != k_all:
        raise BookmixError("train_pack: out_dirs: two models of the pack would write the same folder")
    held_list = [heldouts] * k_all if heldouts is None or isinstance(heldouts, WindowSource) else list(heldouts)

    results: list[TrainResult | None] = []
    for d in out_paths:
        d.mkdir(parents=True, exist_ok=True)
        results.append(TrainResult.load(d))
    todo = [k for k in range(k_all) if results[k] is None]
    if not todo:
        return results  # type: ignore[return-value]

    dev = resolve_device(device if device is not None else train_cfg.device)
    if dev.type == "cpu":
        cap = cpu_pack_cap(model_cfg, train_cfg.micro_batch, int(streams[todo[0]].seq_len))
        if len(todo) > cap:  # sub-packs one after another: every model trains exactly as it would in one pack
            for lo in range(0, len(todo), cap):
                group = todo[lo : lo + cap]

                def pick(values, group=group):  # noqa: ANN001, ANN202
                    return None if values is None else [values[k] for k in group]

                sub_held = heldouts if heldouts is None or isinstance(heldouts, WindowSource) else pick(held_list)
                done = train_pack(model_cfg, train_cfg, pick(streams), pick(out_paths), heldouts=sub_held, device=dev,
                                  seeds=pick(seeds), on_log=_regrouped(on_log, group), metas=pick(metas),
                                  faults=pick(faults))
                for k, result in zip(group, done, strict=True):
                    results[k] = result
            return results  # type: ignore[return-value]
    dtype = compute_dtype(dev, train_cfg.dtype)
    enable_fast_math(dev)
    members: list[_Member] = []
    opened: list[tuple[dict, dict]] = []
    sample_cache: dict[int, np.ndarray] = {}
    for k in todo:
        cfg_k = train_cfg if seeds is None else train_cfg.model_copy(update={"seed": int(seeds[k])})
        m, tensors, opt_state = _open_member(
            k, model_cfg, cfg_k, streams[k], out_paths[k], (metas or [None] * k_all)[k], (faults or [None] * k_all)[k]
        )
        if held_list[k] is not None:  # one shared held-out stream is sampled once, not K times
            key = id(held_list[k])
            if key not in sample_cache:
                sample_cache[key] = sample_windows(held_list[k], train_cfg.eval_windows)
            m.held = sample_cache[key]
            if m.held.shape[1] - 1 != m.plan.seq_len:
                raise BookmixError(f"heldouts[{k}]: seq_len {m.held.shape[1] - 1} differs from the stream's {m.plan.seq_len}")
        if members and m.plan.seq_len != members[0].plan.seq_len:
            raise BookmixError(
                f"train_pack: streams[{k}]: seq_len {m.plan.seq_len} differs from streams[{members[0].index}]'s "
                f"{members[0].plan.seq_len}; a pack trains windows of one length"
            )
        m.events.on_log = _tagged(on_log, k)
        members.append(m)
        opened.append((tensors, opt_state))

    seq_len = members[0].plan.seq_len
    wps = train_cfg.windows_per_step
    pack = PackedLM(model_cfg, len(members)).to(dev)
    optimizer = PackedAdamW(pack, train_cfg)
    for slot, (m, (tensors, opt_state)) in enumerate(zip(members, opened, strict=True)):
        try:
            pack.set_member(slot, tensors)
            optimizer.set_member(slot, opt_state)
        except (KeyError, RuntimeError) as exc:
            raise BookmixError(f"{m.out_dir / CHECKPOINT}: weights or optimizer state do not match the model config ({exc})") from None
    del opened
    stored = [m.micro_batch for m in members if m.micro_batch is not None]
    micro_batch = min(stored) if stored else fit_pack_micro_batch(
        model_cfg, len(members), train_cfg.micro_batch, seq_len, _dtype_name(dtype), memory_bytes(dev)
    )
    for m in members:
        if m.micro_batch is None and micro_batch < train_cfg.micro_batch:
            m.events.emit({"event": "oom_backoff", "step": 0, "micro_batch": micro_batch, "reason": "memory estimate"})
        m.micro_batch = micro_batch
        m.events.emit({"event": "start", "step": m.step, "total_steps": m.plan.total_steps, "device": str(dev),
                       "micro_batch": micro_batch, "pack": len(members)})
        m.curve = Curve(m.out_dir / CURVE, keep_until_step=m.step)
        m.mark_tokens, m.mark_t = m.tokens, time.perf_counter()
    runner = torch.compile(pack, dynamic=False) if train_cfg.compile else pack
    t0 = time.perf_counter()
    last_ckpt_t = t0

    def finish(m: _Member, status: str, final_loss, held_loss, diverged_at=None) -> None:  # noqa: ANN001
        seconds = m.seconds0 + (time.perf_counter() - t0)
        result = TrainResult(
            final_loss=final_loss, heldout_loss=held_loss, steps=m.step, tokens=m.tokens, seconds=seconds,
            tokens_per_s=m.tokens / seconds if seconds > 0 else 0.0, diverged_at_step=diverged_at, status=status,
            paths=m.paths, micro_batch=micro_batch,
        )
        result.save(m.out_dir)
        results[m.index] = result

    def held_losses(ms: list[_Member]) -> list[float | None]:
        """Held-out loss of every model in the pack (None for one without a held-out stream)."""
        if all(m.held is None for m in ms):
            return [None] * len(ms)
        empty = np.zeros((0, seq_len + 1), dtype=np.int64)
        windows, counts = _stack_windows([m.held if m.held is not None else empty for m in ms], seq_len)
        losses = packed_heldout_loss(runner, windows, counts, micro_batch, dev, dtype).tolist()
        return [loss if m.held is not None else None for m, loss in zip(ms, losses, strict=True)]

    def drop(leaving: list[int]) -> None:
        nonlocal members, first_bad, runner
        keep = [s for s in range(len(members)) if s not in leaving]
        members = [members[s] for s in keep]
        if keep:
            pack.keep(keep)
            optimizer.keep(keep)
            first_bad = first_bad[torch.as_tensor(keep, device=dev)]
            if train_cfg.compile:
                runner = torch.compile(pack, dynamic=False)

    # Killed after a model's final checkpoint, before its result.json: finish it without training.
    first_bad = torch.full((len(members),), -1, dtype=torch.long, device=dev)
    done_now = [s for s, m in enumerate(members) if m.step >= m.plan.total_steps]
    if done_now:
        held = held_losses(members)
        for s in done_now:
            finish(members[s], "completed", members[s].last_loss, held[s])
        drop(done_now)

    pack.train()
    while members:
        arrays = []
        for m in members:
            lo = m.step * wps
            arrays.append(load_windows(m.stream, lo, min(lo + wps, m.plan.n_windows), model_cfg.vocab_size).numpy())
        batch, counts = _stack_windows(arrays, seq_len)
        lrs = [lr_at(m.step, m.plan.total_steps, m.train_cfg) for m in members]
        corrupt = None
        if any(m.fault is not None for m in members):
            corrupt = torch.tensor([float(m.fault.corrupt(torch.ones(()), m.step)) if m.fault else 1.0 for m in members],
                                   device=dev)
        check = _memory_check(members)
        try:
            loss, grad_norm = packed_step(runner, optimizer, batch, counts, micro_batch=micro_batch, lrs=lrs,
                                          grad_clip=train_cfg.grad_clip, device=dev, dtype=dtype, corrupt=corrupt,
                                          check_memory=check)
        except torch.OutOfMemoryError:
            optimizer.zero_grad()
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            if micro_batch == 1:
                raise BookmixError(f"out of GPU memory at micro-batch 1: a pack of {len(members)} {model_cfg.name!r} "
                                   f"models does not fit {dev}; use a smaller pack") from None
            micro_batch = max(1, micro_batch // 2)
            for m in members:
                m.events.emit({"event": "oom_backoff", "step": m.step, "micro_batch": micro_batch,
                               "grad_accum": math.ceil(wps / micro_batch)})
            continue  # the same step again, same windows, same effective batch
        steps_now = torch.tensor([m.step for m in members], device=dev)
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), steps_now, first_bad)
        now = time.perf_counter()
        due = []
        for m, n in zip(members, counts.tolist(), strict=True):
            m.step += 1
            m.tokens += n * seq_len
            c = m.train_cfg
            last = m.step == m.plan.total_steps
            log = m.step % c.log_every == 0 or last
            evaluate = m.held is not None and (last or (c.eval_every > 0 and m.step % c.eval_every == 0))
            ckpt = last or (c.checkpoint_every > 0 and m.step % c.checkpoint_every == 0) or (
                c.checkpoint_seconds > 0 and now - last_ckpt_t >= c.checkpoint_seconds)
            due.append((log, evaluate, ckpt, last))
        if not any(any(d) for d in due):
            continue

        bad = first_bad.tolist()  # the host sync: only when some model logs, evaluates or saves
        losses, norms = loss.tolist(), grad_norm.tolist()
        held = held_losses(members) if any(d[1] for d in due) else None
        now = time.perf_counter()
        leaving, saved = [], False
        for s, (m, (log, evaluate, ckpt, last)) in enumerate(zip(members, due, strict=True)):
            if bad[s] >= 0:
                m.step = bad[s]
                m.tokens = min(bad[s] * wps, m.plan.n_windows) * seq_len
                ck = read_checkpoint(m.out_dir)
                m.events.emit({"event": "diverged", "step": bad[s], "checkpoint_step": int(ck.state["step"]) if ck else None})
                finish(m, "diverged", finite_or_none(m.last_loss), None, diverged_at=bad[s])
                leaving.append(s)
                continue
            if not (log or evaluate or ckpt):
                continue
            m.last_loss = losses[s]
            if log or evaluate:
                m.record = {"step": m.step, "tokens": m.tokens, "loss": losses[s], "lr": lrs[s], "grad_norm": norms[s],
                            "tokens_per_s": (m.tokens - m.mark_tokens) / max(now - m.mark_t, 1e-9)}
                if evaluate:
                    m.record["heldout_loss"] = held[s]
                m.curve.append(m.record)
                if on_log is not None:
                    on_log({**m.record, "pack_index": m.index})
                m.mark_tokens, m.mark_t = m.tokens, time.perf_counter()
            if ckpt:
                _save_member(m, pack, optimizer, s, lrs[s], micro_batch, wps, t0)
                saved = True
            if last:
                finish(m, "completed", m.last_loss, m.record.get("heldout_loss"))
                leaving.append(s)
        if saved:
            last_ckpt_t = time.perf_counter()
        if leaving:
            drop(leaving)
    return results  # type: ignore[return-value]


def _save_member(m: _Member, pack: PackedLM, optimizer: PackedAdamW, slot: int, lr: float, micro_batch: int,
                 wps: int, t0: float) -> None:
    """Model ``slot``'s checkpoint, in the single trainer's format, through its own writer."""
    state = {
        "step": m.step, "tokens": m.tokens, "micro_batch": micro_batch, "grad_accum": math.ceil(wps / micro_batch),
        "seconds": m.seconds0 + (time.perf_counter() - t0), "last_loss": m.last_loss,
    }
    weights = {n: t.cpu() for n, t in pack.member(slot).items()}
    save_checkpoint(m.out_dir, _Frozen(pack.cfg, weights), _Frozen(pack.cfg, optimizer.member(slot, lr)), m.config, state)


@dataclass(frozen=True)
class _Frozen:
    """What ``checkpoint.save_checkpoint`` reads of a model (``cfg``, ``state_dict()``) and of an optimizer
    (``state_dict()``): one pack slot's tensors, handed over without building an LM or an AdamW per save."""

    cfg: ModelConfig
    tensors: dict

    def state_dict(self) -> dict:
        return self.tensors


def _regrouped(on_log: LogFn | None, group: list[int]) -> LogFn | None:
    """A sub-pack's records under the whole pack's indices."""
    if on_log is None:
        return None
    return lambda record: on_log({**record, "pack_index": group[record["pack_index"]]})


def _tagged(on_log: LogFn | None, index: int) -> LogFn | None:
    if on_log is None:
        return None
    return lambda record: on_log({**record, "pack_index": index})


def _memory_check(members: list[_Member]) -> Callable[[int], None] | None:
    faults = [m.fault for m in members if m.fault is not None and m.fault.oom_above_micro_batch is not None]
    if not faults:
        return None

    def check(windows: int) -> None:
        for f in faults:
            f.check_memory(windows)

    return check


# ---- composition: many recipes over one library, in packs ----------------------------------------------------------
def train_recipes_packed(
    library: str | Path,
    recipes: Sequence,
    model: str | ModelConfig,
    train_cfg: TrainConfig,
    out_root: str | Path,
    pack: int | None = None,
    seq_len: int | None = None,
    device: str | None = None,
    on_log: LogFn | None = None,
) -> list[TrainResult]:
    """Train one model per recipe, ``pack`` at a time (default :func:`auto_pack_size`), each into
    ``out_root/<recipe id>/`` with the library's holdout books as the held-out stream: what ``train_recipe`` does
    for one recipe, for many. ``on_log`` records carry ``recipe_id``. Re-running skips finished recipes."""
    from bookmix.library import Library
    from bookmix.models.config import preset
    from bookmix.training.heldout import holdout_windows

    if pack is not None and pack < 1:
        raise BookmixError(f"--pack: must be ≥ 1, got {pack}")
    ids = [r.id for r in recipes]
    if len(set(ids)) != len(ids):
        raise BookmixError("recipes: the same recipe is listed twice; each recipe trains once into its own folder")
    lib = Library.open(library)
    cfg = preset(model, vocab_size=lib.vocab_size) if isinstance(model, str) else model.with_vocab(lib.vocab_size)
    t = seq_len or cfg.block_size
    k = pack or auto_pack_size(cfg, train_cfg, device, seq_len=t)
    held = holdout_windows(lib, t, train_cfg.eval_windows)
    lib_path = str(Path(library).resolve())
    results: list[TrainResult] = []
    for lo in range(0, len(recipes), k):
        group = list(recipes[lo : lo + k])
        metas = [{"recipe": r.to_dict(), "recipe_id": r.id, "library": lib_path} for r in group]

        def tagged(record: dict, group=group, lo=lo) -> None:  # noqa: ANN001
            if on_log is not None:
                on_log({**record, "recipe_id": group[record["pack_index"]].id, "pack_index": lo + record["pack_index"]})

        results += train_pack(cfg, train_cfg, [r.stream(lib, t) for r in group], [Path(out_root) / r.id for r in group],
                              heldouts=held, device=device, on_log=tagged, metas=metas)
    return results
