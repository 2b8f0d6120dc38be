"""Learning-rate schedules: a pure function of the step, known in full before training starts."""

from __future__ import annotations

import math

from bookmix.training.config import TrainConfig


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based) in a run of ``total_steps`` steps.

    Linear warm-up to the peak, then: cosine decay to ``min_lr_ratio``·peak by the last step; or WSD, flat at the
    peak and a linear decay to the minimum over the last ``decay_fraction`` of the steps (a curriculum's late books
    are read at a low rate, so the decay matters to ordering effects); or constant.
    """
    peak, floor = cfg.lr, cfg.lr * cfg.min_lr_ratio
    warm = min(cfg.warmup_steps(total_steps), total_steps)
    if step < warm:
        return peak * (step + 1) / warm
    if cfg.schedule == "constant":
        return peak
    if cfg.schedule == "cosine":
        span = max(total_steps - warm - 1, 1)
        progress = min((step - warm) / span, 1.0)
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    # wsd
    decay_steps = max(round(cfg.decay_fraction * total_steps), 1)
    decay_start = max(total_steps - decay_steps, warm)
    if step < decay_start:
        return peak
    progress = min((step - decay_start + 1) / max(total_steps - decay_start, 1), 1.0)
    return peak + (floor - peak) * progress
