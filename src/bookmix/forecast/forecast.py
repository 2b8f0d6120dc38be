"""The forecast: how long, how much memory and how many FLOPs a training run (or a whole campaign) takes on a device.

    FLOPs   = tokens × flops_per_token(T)             (6 × every matmul weight incl. the output head + 12·L·d·T)
    compute = FLOPs ÷ (peak × MFU)                    (MFU measured by `bookmix bench`, else a default by size)
    trial   = start-up + compile + compute + evaluation + checkpoints
    campaign= waves of packs over the GPUs × pack time + analysis + verification

A pure function of its inputs (the calibration record is passed in, not read here), so the CLI, the campaign's ETA
and the dashboard all get the same answer. The only side effect: with no peak given and no calibration, a CPU's
peak is measured once per process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

from bookmix.errors import BookmixError
from bookmix.forecast import defaults
from bookmix.forecast.defaults import Overheads
from bookmix.forecast.hardware import GPUSpec, cpu_memory_bytes, get_gpu
from bookmix.forecast.hardware import peak_flops as device_peak_flops
from bookmix.forecast.memory import CONTEXT_BYTES, MemoryEstimate, estimate_memory, max_micro_batch
from bookmix.models.config import PRESETS, ModelConfig

FLOPS_FORMULA = (
    "6 × matmul weights per token (q, k, v, o, gate, up, down of every layer and the vocab × d output head, "
    "counted even when tied to the embedding) + 12 · n_layer · d_model · seq_len for attention"
)
DEFAULT_MICRO_BATCH_TOKENS = 1 << 14
"""Without --micro-batch: 16k tokens a step (64 × 256, 16 × 1024), capped by what fits. Big enough to feed a
GPU's matmuls, small enough for every preset up to medium on a 24 GB card."""


@dataclass(frozen=True)
class Throughput:
    """Training FLOP/s one model achieves on one device, and where that figure comes from."""

    flops_per_s: float
    mfu: float
    peak_flops: float
    calibrated: bool
    source: str


@dataclass(frozen=True)
class ForecastRow:
    books: int | None
    tokens: int
    """Training tokens of one run, every epoch included."""
    flops: float
    compute_s: float
    startup_s: float
    compile_s: float
    eval_s: float
    checkpoint_s: float
    seconds: float
    """Wall time of one trial: compute plus the fixed overheads."""
    memory_bytes: int
    fits: bool
    energy_kwh: float | None
    trials: int | None = None
    campaign_seconds: float | None = None
    """All trials, packed and spread over the GPUs, plus analysis and verification (with --trials)."""
    campaign_flops: float | None = None
    campaign_energy_kwh: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Forecast:
    rows: list[ForecastRow]
    memory: MemoryEstimate
    max_micro_batch: int
    throughput: Throughput
    assumptions: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "memory": {**self.memory.to_dict(), "max_micro_batch": self.max_micro_batch},
            "throughput": asdict(self.throughput),
            "assumptions": self.assumptions,
        }


# ---- pieces ------------------------------------------------------------------------------------------------------
def tokens_per_book(tokens_per_book: int | None = None, pages: int | None = None, tokens_per_page: int | None = None) -> int:
    """A book's tokens: given directly, or pages × tokens per page (500 by default: a 500-page book ≈ 250k tokens)."""
    if tokens_per_book is not None and pages is not None:
        raise BookmixError("--tokens-per-book and --pages: give one of them, not both")
    if tokens_per_book is not None:
        _positive("--tokens-per-book", tokens_per_book)
        return int(tokens_per_book)
    if pages is None:
        raise BookmixError("--tokens-per-book or --pages: one of them is needed to count a book's tokens")
    _positive("--pages", pages)
    per_page = defaults.TOKENS_PER_PAGE if tokens_per_page is None else tokens_per_page
    _positive("--tokens-per-page", per_page)
    return int(pages) * int(per_page)


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 1:
        raise BookmixError(f"{name}: must be ≥ 1, got {value!r}")


def throughput(
    cfg: ModelConfig,
    spec: GPUSpec,
    seq_len: int,
    calibration: dict | None = None,
    peak_flops: float | None = None,
) -> Throughput:
    """Measured FLOP/s when a calibration for this device is given, else peak × the default MFU for this size."""
    fpt = cfg.flops_per_token(seq_len)
    if calibration:
        measured = calibration.get("flops_per_s")
        if not measured and calibration.get("tokens_per_s"):
            cal_t = int(calibration.get("seq_len") or seq_len)
            cal_cfg = PRESETS.get(calibration.get("preset"), cfg).with_vocab(cfg.vocab_size)
            measured = calibration["tokens_per_s"] * cal_cfg.flops_per_token(cal_t)
        if measured:
            peak = calibration.get("peak_flops") or peak_flops or spec.peak_flops or measured
            what = f"calibration of {calibration.get('preset', '?')} on {calibration.get('device', spec.key)}"
            other = calibration.get("preset") not in (None, cfg.name)
            if other and calibration.get("tokens_per_s"):
                # another preset's measurement: keep its device efficiency, rescale by how MFU changes with size
                cal_fpt = measured / calibration["tokens_per_s"]
                scale = defaults.default_mfu(fpt, spec.key) / defaults.default_mfu(cal_fpt, spec.key)
                measured *= scale
                what += f", scaled ×{scale:.2f} by the default MFU ratio of the two sizes"
            detail = ", ".join(
                f"{k} {calibration[k]}" for k in ("micro_batch", "seq_len", "dtype", "compile", "measured_at") if k in calibration
            )
            return Throughput(float(measured), float(measured) / peak, float(peak), True, f"{what} ({detail})")
    peak = peak_flops if peak_flops is not None else device_peak_flops(spec)
    mfu = defaults.default_mfu(fpt, spec.key)
    n = defaults.matmul_params(fpt)
    return Throughput(peak * mfu, mfu, float(peak), False, f"default MFU {mfu:.1%} for {n / 1e6:.1f}M matmul parameters")


def _pack_speedup(pack: int, tp: Throughput, calibration: dict | None) -> tuple[float, str]:
    if pack <= 1:
        return 1.0, "no packing"
    cal = (calibration or {}).get("pack_speedup")
    cal_pack = (calibration or {}).get("pack")
    if cal and (cal_pack is None or int(cal_pack) == pack):
        return float(cal), f"measured pack_speedup at pack {cal_pack or pack}"
    s = defaults.default_pack_speedup(pack, tp.mfu)
    return s, (
        f"default: min(pack × {defaults.PACK_EFFICIENCY}, MFU cap {defaults.PACK_MFU_CAP:.0%} ÷ single MFU {tp.mfu:.1%})"
    )


def campaign_seconds(
    trials: int, verify: int, pack: int, gpus: int, speedup: float, startup_s: float, compile_s: float,
    model_s: float, compute_s: float,
) -> tuple[float, float]:
    """(wall seconds, busy GPU-seconds) of ``trials`` then ``verify`` trials, ``pack`` to a process, over ``gpus``.

    One pack starts once and compiles once (a warm cache after each GPU's first pack), then its models train
    together at ``speedup`` × one model's rate; each model still evaluates and checkpoints (``model_s`` is one
    model's compute + evaluation + checkpoints, ``compute_s`` the compute part). Packs run in waves over the GPUs.
    """
    pack_s = startup_s + compile_s * defaults.WARM_COMPILE_FACTOR + pack * (model_s - compute_s + compute_s / speedup)
    cold_extra = compile_s * (1 - defaults.WARM_COMPILE_FACTOR)
    packs, verify_packs = math.ceil(trials / pack), math.ceil(verify / pack)
    waves = math.ceil(packs / gpus) + math.ceil(verify_packs / gpus)
    busy = (packs + verify_packs) * pack_s + min(gpus, packs) * cold_extra
    return waves * pack_s + cold_extra, busy


# ---- the forecast --------------------------------------------------------------------------------------------------
def estimate(
    cfg: ModelConfig,
    books: Sequence[int] = (1,),
    tokens_per_book: int = 250_000,
    epochs: int = 1,
    *,
    tokens: Sequence[int] | None = None,
    device: str | GPUSpec = "rtx-pro-6000",
    gpus: int = 1,
    pack: int = 1,
    trials: int | None = None,
    verify_trials: int | None = None,
    calibration: dict | None = None,
    micro_batch: int | None = None,
    seq_len: int | None = None,
    dtype: str = "bf16",
    optimizer: str = "adamw",
    peak_flops: float | None = None,
    overheads: Overheads | None = None,
) -> Forecast:
    """Forecast one row per entry of ``books`` (each ``tokens_per_book`` × ``epochs`` tokens), or per entry of
    ``tokens`` (explicit tokens of one epoch, e.g. a recipe's stream). With ``trials``, each row also gets the
    whole campaign: that many trials of that size, packed ``pack`` to a process, over ``gpus`` GPUs."""
    spec = device if isinstance(device, GPUSpec) else get_gpu(device)
    for name, value in (("--epochs", epochs), ("--gpus", gpus), ("--pack", pack), ("--tokens-per-book", tokens_per_book)):
        _positive(name, value)
    if trials is not None:
        _positive("--trials", trials)
    if tokens is not None:
        for t in tokens:
            _positive("tokens", t)
        labels: list[int | None] = list(books) if len(books) == len(tokens) else [None] * len(tokens)
        per_epoch = [int(t) for t in tokens]
    else:
        if not books:
            raise BookmixError("--books: give at least one book count")
        for b in books:
            _positive("--books", b)
        labels = [int(b) for b in books]
        per_epoch = [int(b) * int(tokens_per_book) for b in books]
    o = overheads or Overheads()
    if o.compile is None and calibration and isinstance(calibration.get("compile"), bool):
        o = replace(o, compile=calibration["compile"])  # the measured rate is for that setting: keep its costs too
    t = cfg.block_size if seq_len is None else seq_len
    _positive("--seq-len", t)

    # memory: the largest micro-batch that fits decides the default and the "fits" column
    mem_total = cpu_memory_bytes() if spec.key == "cpu" else spec.memory_bytes
    biggest = max_micro_batch(cfg, mem_total, t, dtype, optimizer) if mem_total else 0
    if micro_batch is None:
        micro_batch = max(1, min(max(1, DEFAULT_MICRO_BATCH_TOKENS // t), biggest or 1))
    _positive("--micro-batch", micro_batch)
    mem = estimate_memory(cfg, micro_batch, t, dtype, optimizer)
    k = min(pack, trials) if trials else pack
    pack_bytes = k * (mem.total_bytes - CONTEXT_BYTES) + CONTEXT_BYTES  # K models' tensors, one CUDA context
    fits = bool(mem_total) and pack_bytes <= mem_total

    tp = throughput(cfg, spec, t, calibration, peak_flops)
    speedup, speedup_source = _pack_speedup(k, tp, calibration)
    startup_s, compile_on, compile_s = defaults.resolve_overheads(o, spec.key, cfg.n_layer)
    fpt = cfg.flops_per_token(t)
    forward_s_per_token = (fpt / 3) / tp.flops_per_s  # evaluation: forward only, a third of the training FLOPs
    eval_s = (o.evals * o.eval_tokens + o.suite_tokens) * forward_s_per_token + o.suite_tasks * defaults.SUITE_TASK_S
    ckpt_bytes = 12 * cfg.total_params  # FP32 weights + AdamW moments (gradients are not saved)
    one_checkpoint_s = ckpt_bytes / (o.disk_gbs * 1e9) + o.checkpoint_fixed_s
    watts = spec.tdp_w

    n_verify = (defaults.VERIFY_TRIALS if verify_trials is None else verify_trials) if trials else 0
    analysis_s = defaults.ANALYSIS_FIXED_S + defaults.ANALYSIS_PER_TRIAL_S * trials if trials else 0.0

    rows = []
    for label, n_tokens in zip(labels, per_epoch, strict=True):
        run_tokens = n_tokens * int(epochs)
        flops = float(run_tokens) * fpt
        compute_s = flops / tp.flops_per_s
        checkpoints = o.checkpoints if o.checkpoints is not None else 1 + int(compute_s // o.checkpoint_every_s)
        checkpoint_s = checkpoints * one_checkpoint_s
        seconds = startup_s + compile_s + compute_s + eval_s + checkpoint_s
        row = dict(
            books=label,
            tokens=run_tokens,
            flops=flops,
            compute_s=compute_s,
            startup_s=startup_s,
            compile_s=compile_s,
            eval_s=eval_s,
            checkpoint_s=checkpoint_s,
            seconds=seconds,
            memory_bytes=pack_bytes,
            fits=fits,
            energy_kwh=None if watts is None else watts * seconds / 3.6e6,
        )
        if trials:
            campaign_s, busy_gpu_s = campaign_seconds(
                trials, n_verify, k, gpus, speedup, startup_s, compile_s, compute_s + eval_s + checkpoint_s, compute_s
            )
            row.update(
                trials=trials,
                campaign_seconds=campaign_s + analysis_s,
                campaign_flops=flops * (trials + n_verify),
                campaign_energy_kwh=None if watts is None else watts * busy_gpu_s / 3.6e6,
            )
        rows.append(ForecastRow(**row))

    assumptions = {
        "model": {
            "name": cfg.name,
            "params": cfg.total_params,
            "non_embedding_params": cfg.non_embedding_params,
            "vocab_size": cfg.vocab_size,
            "seq_len": t,
        },
        "flops_per_token": fpt,
        "flops_formula": FLOPS_FORMULA,
        "tokens_per_book": None if tokens is not None else int(tokens_per_book),
        "epochs": int(epochs),
        "device": {
            "key": spec.key,
            "name": spec.name,
            "peak_flops": tp.peak_flops,
            "memory_bytes": mem_total,
            "tdp_w": watts,
            "source": spec.source,
        },
        "mfu": tp.mfu,
        "mfu_source": "calibration" if tp.calibrated else "default",
        "throughput_source": tp.source,
        "flops_per_s": tp.flops_per_s,
        "tokens_per_s": tp.flops_per_s / fpt,
        "dtype": dtype,
        "optimizer": optimizer,
        "micro_batch": micro_batch,
        "max_micro_batch": biggest,
        "overheads": {
            "startup_s": startup_s,
            "compile": compile_on,
            "compile_s": compile_s,
            "evals": o.evals,
            "eval_tokens": o.eval_tokens,
            "suite_tokens": o.suite_tokens,
            "eval_s": eval_s,
            "checkpoints": "final + one per 10 min of training" if o.checkpoints is None else o.checkpoints,
            "checkpoint_bytes": ckpt_bytes,
            "checkpoint_s_each": one_checkpoint_s,
            "disk_gbs": o.disk_gbs,
        },
        "pack": k,
        "pack_speedup": speedup,
        "pack_speedup_source": speedup_source,
        "gpus": gpus,
        "trials": trials,
        "verify_trials": n_verify,
        "analysis_s": analysis_s,
        "energy": "board power (TDP) × wall time: an upper bound" if watts else "unknown board power",
    }
    return Forecast(rows, mem, biggest, tp, assumptions)
