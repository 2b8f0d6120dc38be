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

Files, by idea: pack_size.py (how many models a pack holds), packed_adamw.py (the optimizer), packed_step.py (one
step); here the pack as the engine's stepper (:class:`PackStepper`: engine.py runs each trial's bookkeeping).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from bookmix.errors import BookmixError
from bookmix.models.config import ModelConfig
from bookmix.models.model import LM
from bookmix.models.packed import PackedLM
from bookmix.recipes.stream import WindowSource
from bookmix.training.checkpoint import CHECKPOINT, save_checkpoint
from bookmix.training.config import TrainConfig
from bookmix.training.device import compute_dtype, enable_fast_math, fit_micro_batch, memory_bytes, resolve_device
from bookmix.training.engine import LogFn, Run, train_runs
from bookmix.training.evaluate import sample_windows
from bookmix.training.faults import FaultInjector
from bookmix.training.loop import open_window_run
from bookmix.training.pack_size import cpu_pack_cap
from bookmix.training.packed_adamw import PackedAdamW
from bookmix.training.packed_step import packed_heldout_loss, packed_step, stack_windows
from bookmix.training.result import TrainResult

__all__ = ["PackStepper", "train_pack"]


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
    per_model: dict[str, Sequence[Any] | None] = {"out_dirs": out_paths, "seeds": seeds, "metas": metas, "faults": faults}
    if heldouts is not None and not isinstance(heldouts, WindowSource):
        per_model["heldouts"] = heldouts
    for name, values in per_model.items():
        if values is not None and len(values) != k_all:
            raise BookmixError(f"train_pack: {name}: {len(values)} given for {k_all} streams")
    if len({p.resolve() for p in out_paths}) != k_all:
        raise BookmixError("train_pack: out_dirs: two models of the pack would write the same folder")
    held_list = [heldouts] * k_all if heldouts is None or isinstance(heldouts, WindowSource) else list(heldouts)

    runs: list[Run] = []
    samples: dict[int, np.ndarray] = {}  # one shared held-out stream is sampled once, not K times
    for k in range(k_all):
        cfg_k = train_cfg if seeds is None else train_cfg.model_copy(update={"seed": int(seeds[k])})
        held = held_list[k]
        if held is not None and id(held) not in samples:
            samples[id(held)] = sample_windows(held, train_cfg.eval_windows)
        run = open_window_run({"model": model_cfg.to_dict()}, model_cfg.block_size, cfg_k, streams[k], out_paths[k],
                              None, model_cfg.vocab_size, (metas or [None] * k_all)[k], _tagged(on_log, k),
                              held=samples[id(held)] if held is not None else None)
        if run.held is not None and run.held.shape[1] - 1 != int(streams[k].seq_len):
            raise BookmixError(f"heldouts[{k}]: seq_len {run.held.shape[1] - 1} differs from the stream's {streams[k].seq_len}")
        if int(streams[k].seq_len) != int(streams[0].seq_len):
            raise BookmixError(f"train_pack: streams[{k}]: seq_len {streams[k].seq_len} differs from streams[0]'s "
                               f"{streams[0].seq_len}; a pack trains windows of one length")
        runs.append(run)
    todo = [k for k in range(k_all) if runs[k].result is None]
    dev = resolve_device(device if device is not None else train_cfg.device)
    cap = cpu_pack_cap(model_cfg, train_cfg.micro_batch, int(streams[0].seq_len)) if dev.type == "cpu" else max(len(todo), 1)
    # On a CPU, sub-packs one after another: every model trains exactly as it would in one pack.
    for lo in range(0, len(todo), cap):
        group = [runs[k] for k in todo[lo : lo + cap]]
        stepper = PackStepper(model_cfg, group, [(faults or [None] * k_all)[k] for k in todo[lo : lo + cap]], dev)
        train_runs(stepper, group, dev, start={"pack": len(group)})
    return [r.result for r in runs]  # type: ignore[misc]


class PackStepper:
    """The engine's stepper for a pack: K models of one shape in one :class:`PackedLM`, one step for all."""

    def __init__(self, model_cfg: ModelConfig, runs: list[Run], faults: list[FaultInjector | None], device: torch.device) -> None:
        train_cfg = runs[0].train_cfg
        self.cfg, self.device, self.faults = model_cfg, device, faults
        self.dtype = compute_dtype(device, train_cfg.dtype)
        self.seq_len = int(runs[0].config["stream"]["seq_len"])
        self.size = len(runs)
        self.name = f"a pack of {self.size} {model_cfg.name!r} models"
        self.compile = train_cfg.compile
        enable_fast_math(device)
        self.pack = PackedLM(model_cfg, len(runs)).to(device)
        self.optimizer = PackedAdamW(self.pack, train_cfg)
        for slot, run in enumerate(runs):
            try:
                weights, opt_state = _stored(run, model_cfg)
                self.pack.set_member(slot, weights)
                self.optimizer.set_member(slot, opt_state)
            except (KeyError, RuntimeError) as exc:
                raise BookmixError(f"{run.out_dir / CHECKPOINT}: weights or optimizer state do not match the model config ({exc})") from None
        self.runner = torch.compile(self.pack, dynamic=False) if self.compile else self.pack
        self.pack.train()

    def fit_micro_batch(self, micro_batch: int) -> int:
        return fit_micro_batch(self.cfg, micro_batch, self.seq_len, self.dtype, memory_bytes(self.device), models=self.size)

    def step(self, runs: list[Run], lrs: list[float], micro_batch: int) -> tuple[torch.Tensor | None, torch.Tensor | None, list[int]]:
        arrays = [r.batches(r.step)[0].numpy() for r in runs]  # type: ignore[misc]
        batch, counts = stack_windows(arrays, self.seq_len)
        corrupt = None
        if any(f is not None for f in self.faults):
            corrupt = torch.tensor([f.corrupt(torch.ones(()), r.step).item() if f else 1.0
                                    for f, r in zip(self.faults, runs, strict=True)], device=self.device)
        loss, grad_norm = packed_step(self.runner, self.optimizer, batch, counts, micro_batch=micro_batch, lrs=lrs,
                                      grad_clip=runs[0].train_cfg.grad_clip, device=self.device, dtype=self.dtype,
                                      corrupt=corrupt, check_memory=_memory_check(self.faults))
        return loss, grad_norm, [n * self.seq_len for n in counts.tolist()]

    def heldout(self, runs: list[Run], micro_batch: int) -> list[float | None]:
        if all(r.held is None for r in runs):
            return [None] * len(runs)
        empty = np.zeros((0, self.seq_len + 1), dtype=np.int64)
        windows, counts = stack_windows([r.held if r.held is not None else empty for r in runs], self.seq_len)
        losses = packed_heldout_loss(cast(torch.nn.Module, self.runner), windows, counts, micro_batch, self.device, self.dtype).tolist()
        return [loss if r.held is not None else None for r, loss in zip(runs, losses, strict=True)]

    def save(self, slot: int, run: Run, lr: float, state: dict) -> None:
        """Model ``slot``'s checkpoint, in the single trainer's format, through its own writer."""
        weights = {n: t.cpu() for n, t in self.pack.member(slot).items()}
        save_checkpoint(run.out_dir, _Frozen(self.cfg, weights), _Frozen(self.cfg, self.optimizer.member(slot, lr)),  # type: ignore[arg-type]
                        run.config, state)

    def leave(self, slots: list[int]) -> None:
        keep = [s for s in range(len(self.faults)) if s not in slots]
        self.faults = [self.faults[s] for s in keep]
        if keep:
            self.pack.keep(keep)
            self.optimizer.keep(keep)
            if self.compile:
                self.runner = torch.compile(self.pack, dynamic=False)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()


def _stored(run: Run, model_cfg: ModelConfig) -> tuple[dict, dict]:
    """(weights, AdamW state dict) a pack slot starts from: the run's checkpoint, or a fresh model built on the CPU as
    train() builds it (the same weights bit for bit) and an empty optimizer state."""
    if run.checkpoint is None:
        return dict(LM(model_cfg, seed=run.train_cfg.seed).named_parameters()), {}
    from safetensors.torch import load_file

    blob = torch.load(run.checkpoint.path / "optimizer.pt", map_location="cpu", weights_only=True)
    return load_file(run.checkpoint.path / "model.safetensors"), blob["optimizer"]


@dataclass(frozen=True)
class _Frozen:
    """What ``checkpoint.save_checkpoint`` reads of a model (``cfg``, ``state_dict()``) and of an optimizer
    (``state_dict()``): one pack slot's tensors, handed over without building an LM or an AdamW per save."""

    cfg: ModelConfig
    tensors: dict

    def state_dict(self) -> dict:
        return self.tensors


def _tagged(on_log: LogFn | None, index: int) -> LogFn | None:
    if on_log is None:
        return None
    return lambda record: on_log({**record, "pack_index": index})


def _memory_check(faults: list[FaultInjector | None]) -> Callable[[int], None] | None:
    limits = [f for f in faults if f is not None and f.oom_above_micro_batch is not None]
    if not limits:
        return None

    def check(windows: int) -> None:
        for f in limits:
            f.check_memory(windows)

    return check
