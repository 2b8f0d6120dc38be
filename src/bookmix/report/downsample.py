"""Thinning a training curve for the dashboard: a fixed number of points per curve, whatever the run's length.

A 1000-trial campaign logs hundreds of points per curve; drawn on a 600-pixel chart, more than ~100 points per curve
add bytes, not information. The first and last points are always kept (where a run starts and ends matters most),
and the rest are picked evenly in x, so a log with irregular steps still reads right. Pure numpy, no loop per point.
"""

from __future__ import annotations

import numpy as np

MAX_POINTS = 60
"""60 points per curve: smooth at dashboard size (a loss curve bends in a few places), and 1000 trials × 2 curves
stay near 1.5 MB of JSON."""


def keep_indices(x: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Sorted indices of at most ``max_points`` points of ``x`` (ascending), spread evenly over its range."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if max_points < 2:
        raise ValueError(f"max_points: must be ≥ 2, got {max_points}")
    if n <= max_points:
        return np.arange(n)
    # The point nearest to each of max_points evenly spaced targets in x; duplicates collapse.
    targets = np.linspace(x[0], x[-1], max_points)
    right = np.clip(np.searchsorted(x, targets), 1, n - 1)
    left = right - 1
    nearest = np.where(np.abs(x[left] - targets) <= np.abs(x[right] - targets), left, right)
    return np.unique(np.concatenate([[0], nearest, [n - 1]]))


def round_sig(values: np.ndarray, digits: int = 5) -> list[float | None]:
    """Values rounded to ``digits`` significant digits as JSON-ready floats; NaN and inf become None."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    mag = np.zeros_like(v)
    nz = finite & (v != 0)
    mag[nz] = np.floor(np.log10(np.abs(v[nz])))
    scale = 10.0 ** (digits - 1 - mag)
    out = np.where(finite, np.round(v * scale) / scale, np.nan)
    return [None if not f else float(x) for x, f in zip(out.tolist(), finite.tolist(), strict=True)]


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[list[float], list[float | None]]:
    """(x, y) of a curve sorted by x and thinned to at most ``max_points`` points, y rounded to 5 digits."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.shape} vs {y.shape}")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    keep = keep_indices(x, max_points)
    xs = x[keep]
    return [int(v) if float(v).is_integer() else float(v) for v in xs.tolist()], round_sig(y[keep])
