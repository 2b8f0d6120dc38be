"""The cost of the library's reference-model signal (``bookmix library score --model``): forward passes only.

    FLOPs   = books × windows × seq_len × flops_per_token(seq_len) / 3     (a forward pass: 2 of the 6 FLOPs per
                                                                         weight and per token of training)
    seconds = FLOPs ÷ the device's training FLOP/s (``forecast.throughput``: calibrated, else peak × default MFU)

The text signals and the MinHash signatures cost CPU time per book, not accelerator time: bench/dedup_score.py
measures them (a few tens of milliseconds per book and core).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bookmix.errors import BookmixError
from bookmix.forecast.forecast import Throughput, throughput
from bookmix.forecast.hardware import get_gpu
from bookmix.models.config import ModelConfig

WINDOWS = 16  # the score pass's default windows per book (bookmix.library.score.WINDOWS)


@dataclass(frozen=True)
class ScoringForecast:
    books: int
    tokens: int  # tokens the reference model reads: books × windows × seq_len
    flops: float
    seconds: float
    throughput: Throughput

    def to_dict(self) -> dict:
        return asdict(self)


def scoring_forecast(
    cfg: ModelConfig,
    gpu: str,
    books: int,
    windows: int = WINDOWS,
    seq_len: int | None = None,
    calibration: dict | None = None,
    peak_flops: float | None = None,
) -> ScoringForecast:
    """Time and FLOPs of scoring ``books`` books with reference model ``cfg`` on device ``gpu``."""
    if books < 1 or windows < 1:
        raise BookmixError(f"books and windows: must be ≥ 1, got {books} and {windows}")
    t = seq_len or cfg.block_size
    tokens = int(books) * int(windows) * int(t)
    flops = tokens * cfg.flops_per_token(t) / 3
    tp = throughput(cfg, get_gpu(gpu), t, calibration, peak_flops)
    return ScoringForecast(int(books), tokens, float(flops), flops / tp.flops_per_s, tp)
