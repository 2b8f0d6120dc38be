"""The numbers the forecast assumes when nothing has been measured: MFU by model size, packing, fixed overheads.

Every default here is replaced by a measurement when one exists (`bookmix bench` writes them); the forecast says
which one it used. The reasons for each figure sit beside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# ---- model FLOPs utilisation, single model, no packing ---------------------------------------------------------
# MFU = achieved training FLOP/s ÷ the device's dense BF16 peak. It grows with the model: a 1M-parameter model
# launches the same number of kernels per step as a 100M one but gives each a thousandth of the work, so a big GPU
# sits idle between launches and on memory traffic. Anchors, by matmul parameters (6N = FLOPs per token):
#   ~40% for GPT-2 124M on one H100 (llm.c / modded-nanogpt reports), 43–45% for 125M on A100 (MosaicML);
#   we take 35% at that size for a plain PyTorch loop with torch.compile on a workstation card;
#   a few percent for 1M–10M models, which is what one such model gets from a GPU unless packed (see PACK_*).
GPU_MFU_ANCHORS: tuple[tuple[float, float], ...] = (
    (1e6, 0.01),
    (3e6, 0.03),
    (1e7, 0.07),
    (3e7, 0.15),
    (1.2e8, 0.35),
    (3.5e8, 0.40),
    (1e9, 0.45),
)
# On a CPU the "peak" is our own measured FP32 matmul rate. A training step has no launch latency to hide, so
# small models fare better than on a GPU, but the element-wise work (norms, softmax, AdamW) is a larger share.
# Measured on a 2-core EPYC with torch 2.13: ~17% for nano (2.7M matmul parameters), ~19% for micro (13M).
# Calibrate before trusting a CPU forecast.
CPU_MFU_ANCHORS: tuple[tuple[float, float], ...] = (
    (1e6, 0.12),
    (1e7, 0.19),
    (1e8, 0.30),
    (1e9, 0.35),
)


def matmul_params(flops_per_token: float) -> float:
    """The N with 6·N = training FLOPs per token (matmul weights incl. the output head, plus attention)."""
    return flops_per_token / 6


def default_mfu(flops_per_token: float, device: str) -> float:
    """Interpolate the anchors in log-parameters; clamp outside them."""
    anchors = CPU_MFU_ANCHORS if device == "cpu" else GPU_MFU_ANCHORS
    x = math.log10(max(matmul_params(flops_per_token), 1.0))
    xs = [math.log10(n) for n, _ in anchors]
    ys = [m for _, m in anchors]
    if x <= xs[0]:
        return ys[0]
    for i in range(1, len(xs)):
        if x <= xs[i]:
            return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1])
    return ys[-1]


# ---- packing: K small models trained together in one process --------------------------------------------------
PACK_EFFICIENCY = 0.8
"""Each extra model in a pack adds 80% of a lone model's throughput (batched kernels, one data loader) until the GPU
is saturated. A guess until the packed-training bench measures it and writes ``pack_speedup``."""

PACK_MFU_CAP = 0.40
"""A pack cannot beat a well-fed GPU: its combined MFU stops at what a single GPT-2-small-sized model reaches."""


def default_pack_speedup(pack: int, single_mfu: float) -> float:
    """Throughput of a pack of ``pack`` models relative to one model alone (1 for no packing)."""
    if pack <= 1:
        return 1.0
    return max(1.0, min(pack * PACK_EFFICIENCY, PACK_MFU_CAP / single_mfu))


# ---- fixed costs of one trial -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Overheads:
    """Time a trial spends outside its training steps. Explicit so a user can set them to what they observe."""

    startup_s: float | None = None
    """Process start, imports, CUDA context, model build. None: 15 s on a GPU (torch import ~3 s, CUDA init
    2–5 s, library open and model init the rest), 3 s on a CPU."""
    compile: bool | None = None
    """torch.compile the model. None: on for GPUs (it is what the MFU defaults assume), off on the CPU."""
    compile_s: float | None = None
    """torch.compile time with a cold cache. None: 20 s + 3 s per layer (Inductor traces and tunes each block;
    GPT-2-small-sized models take about a minute). A warm cache cuts it roughly threefold."""
    evals: int = 10
    """Held-out evaluations during one run (the trainer's periodic eval, the final one included)."""
    eval_tokens: int = 1 << 17
    """Tokens per held-out evaluation. Forward only: a third of a training token's FLOPs, at the same MFU."""
    suite_tokens: int = 0
    """Tokens the campaign's eval suite reads per trial after training (forward only); 0 outside a campaign."""
    suite_tasks: int = 0
    """Tasks of that suite: each costs ``SUITE_TASK_S`` beyond its FLOPs (items, batching, bootstrap); 0 outside a
    campaign."""
    checkpoints: int | None = None
    """Checkpoints written per run. None: the trainer's default, the final one plus one every 10 minutes of
    training (``TrainConfig.checkpoint_seconds`` = 600)."""
    checkpoint_every_s: float = 600.0
    """With ``checkpoints`` None: seconds of training between resume checkpoints."""
    disk_gbs: float = 1.0
    """Sustained checkpoint write speed in GB/s (a workstation NVMe; network disks are slower)."""
    checkpoint_fixed_s: float = 0.5
    """Per checkpoint: fsync, rename, metadata."""

    def to_dict(self) -> dict:
        return asdict(self)


WARM_COMPILE_FACTOR = 1 / 3
"""In a campaign only a GPU's first pack compiles with a cold cache; later ones reuse Inductor's cached kernels."""

STARTUP_GPU_S = 15.0
STARTUP_CPU_S = 3.0


def resolve_overheads(o: Overheads, device: str, n_layer: int) -> tuple[float, bool, float]:
    """(start-up seconds, compile on, compile seconds) for this device and model depth."""
    on_cpu = device == "cpu"
    startup = o.startup_s if o.startup_s is not None else (STARTUP_CPU_S if on_cpu else STARTUP_GPU_S)
    compile_on = o.compile if o.compile is not None else not on_cpu
    compile_s = (o.compile_s if o.compile_s is not None else 20.0 + 3.0 * n_layer) if compile_on else 0.0
    return startup, compile_on, compile_s


# ---- campaign-level costs ---------------------------------------------------------------------------------------
ANALYSIS_FIXED_S = 2.0
"""Loading results, the noise floor, datamodel regression and the surrogate. Measured: 1.5 s for the demo's 26 trials
on a loaded 2-core CPU (bench/forecast_accuracy.py --campaign examples/demo.yaml); it was 60 s until then, which
made a small campaign's analysis forecast 40× too long."""
ANALYSIS_PER_TRIAL_S = 0.05
"""Regression and surrogate fits grow with the trials: 1000 trials over a 1M-book pool fit in under a minute
(bench/analysis_scale.py's target)."""
REPORT_FIXED_S = 0.5
REPORT_PER_TRIAL_S = 0.005
"""report.html: 0.14 s for the demo's 26 trials; a 1000-trial report (bench/report_scale.py) a few seconds."""
SUITE_TASK_S = 0.5
"""Per eval task and trial beyond its FLOPs: reading cached items, padding batches, 1000 bootstrap resamples. The
demo's 3-task suite took 3.1 s a trial on a 2-core CPU shared with others (load 6–9), most of it outside the FLOPs."""
VERIFY_TRIALS = 10
"""Verification: the proposal and random baselines of the same size, 5 seeds each."""

TOKENS_PER_PAGE = 500
"""A printed page holds ~300–400 English words ≈ 400–550 tokens with a 16k–50k BPE vocabulary; 500 makes a
500-page book 250k tokens."""
