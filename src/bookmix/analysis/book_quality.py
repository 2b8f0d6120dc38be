"""Which per-book quality signals predict a better model: a weighting learned from trials, usable by `select --by`.

Each trial's recipe is summarised by the token-weighted mean of its books' signals (``q_bpb``, ``q_ocr``, ... and
any numeric catalog column), standardised over the trials; a ridge regression of the trials' objective (oriented
higher-is-better) on those means gives one weight per signal (per standard deviation of the recipe-level signal),
with bootstrap standard errors over trials and the leave-one-out R² as the honest measure of whether the signals
predict anything at all. :meth:`SignalWeights.expression` turns the weights into the SQL score expression that
``bookmix library select --by`` and designs' ``order_by`` take, so "best" becomes a measured thing.

Standalone: plain arrays in, a record out; it neither reads the campaign store nor writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bookmix.errors import BookmixError

ALPHAS = np.logspace(-3, 3, 25)  # ridge penalties tried (relative to n), chosen by exact leave-one-out error


@dataclass(frozen=True)
class SignalWeights:
    signals: list[str]
    weights: list[float]  # objective change per standard deviation of the recipe-mean signal
    stderr: list[float]  # bootstrap over trials
    means: list[float]  # per-book means and standard deviations, for the expression over book columns
    stds: list[float]
    alpha: float
    loo_r2: float  # leave-one-out R² of the recipe-level fit: ≤ 0 means the signals predict nothing here
    n_trials: int

    def expression(self, min_z: float = 0.0) -> str:
        """``SUM w_k * (col_k - mean_k) / std_k`` over the signals whose |weight| / stderr ≥ ``min_z``."""
        terms = [
            f"{w / s:+.6g} * ({c} - {m:.6g})"
            for c, w, e, m, s in zip(self.signals, self.weights, self.stderr, self.means, self.stds, strict=True)
            if s > 0 and (e == 0 or abs(w) / e >= min_z)
        ]
        return " ".join(terms).lstrip("+ ") if terms else "0"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def learn_signal_weights(
    records: Sequence[Mapping[str, Any]],
    book_ids: Sequence[str],
    signals: Mapping[str, np.ndarray],
    tokens: np.ndarray | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> SignalWeights:
    """Fit the weighting. ``records``: trials with ``recipe['books']`` and an ``objective`` (higher = better);
    ``signals``: per-book columns aligned with ``book_ids`` (NaN = unscored, left out of that recipe's mean);
    ``tokens``: per-book weights (a recipe's text is mostly its long books), uniform when None."""
    names = list(signals)
    if not names:
        raise BookmixError("signals: give at least one per-book column")
    row = {str(b): i for i, b in enumerate(book_ids)}
    x_book = np.column_stack([np.asarray(signals[c], dtype=np.float64) for c in names])  # (B, S)
    w_book = np.ones(len(book_ids)) if tokens is None else np.asarray(tokens, dtype=np.float64)
    xs, ys = [], []
    for i, r in enumerate(records):
        obj = r.get("objective")
        books = (r.get("recipe") or {}).get("books") or []
        if obj is None or not np.isfinite(obj) or not books:
            continue
        missing = [b for b in books if b not in row]
        if missing:
            raise BookmixError(f"records[{i}]: book {missing[0]!r} is not among the given books")
        idx = np.array([row[b] for b in books])
        v, w = x_book[idx], w_book[idx][:, None] * np.isfinite(x_book[idx])
        xs.append(np.where(w.sum(0) > 0, np.nansum(v * w, 0) / np.maximum(w.sum(0), 1e-12), np.nan))
        ys.append(float(obj))
    if len(ys) < len(names) + 3:
        raise BookmixError(
            f"records: {len(ys)} usable trials; learning {len(names)} weights needs at least {len(names) + 3}"
        )
    x, y = np.array(xs), np.array(ys)
    col_mean = np.nanmean(x, 0)
    x = np.where(np.isnan(x), col_mean, x)  # a recipe with no scored book: the average recipe
    mu, sd = x.mean(0), x.std(0)
    z = (x - mu) / np.where(sd > 0, sd, 1.0)
    alpha, beta, loo = _ridge(z, y)
    rng = np.random.default_rng(seed)
    boots = np.array([_ridge(z[k], y[k], alpha)[1] for k in (rng.integers(0, len(y), len(y)) for _ in range(n_boot))])
    # weights per standard deviation of the recipe-level mean, carried to the book columns' own scale
    book_mu = np.nanmean(x_book, 0)
    book_sd = np.nanstd(x_book, 0)
    scale = np.where(sd > 0, book_sd / np.where(sd > 0, sd, 1.0), 0.0)
    return SignalWeights(
        signals=names,
        weights=[float(v) for v in beta * scale],
        stderr=[float(v) for v in boots.std(0) * scale],
        means=[float(v) for v in book_mu],
        stds=[float(v) for v in book_sd],
        alpha=float(alpha),
        loo_r2=float(1 - loo / max(np.var(y), 1e-300)),
        n_trials=len(y),
    )


def _ridge(z: np.ndarray, y: np.ndarray, alpha: float | None = None) -> tuple[float, np.ndarray, float]:
    """(penalty, coefficients, leave-one-out mean squared error) with an unpenalised intercept."""
    zc, yc = z - z.mean(0), y - y.mean()
    n, p = zc.shape
    best = None
    for a in [alpha] if alpha is not None else ALPHAS * n:
        inv = np.linalg.inv(zc.T @ zc + a * np.eye(p))
        beta = inv @ zc.T @ yc
        hat = np.einsum("ij,jk,ik->i", zc, inv, zc) + 1.0 / n
        loo = float(np.mean(((yc - zc @ beta) / np.maximum(1 - hat, 1e-9)) ** 2))
        if best is None or loo < best[2]:
            best = (float(a), beta, loo)
    assert best is not None  # ALPHAS is not empty
    return best


def weights_from_records(
    records: Sequence[Mapping[str, Any]], library: Any, signals: Sequence[str] | None = None
) -> SignalWeights:
    """:func:`learn_signal_weights` over trial records (oriented higher-is-better) and an open library's signal
    columns (``signals``; default every ``q_*`` column)."""
    names = list(signals) if signals else [c for c in library.columns() if c.startswith("q_")]
    if not names:
        raise BookmixError(f"{library.path}: no q_* signal columns (run `bookmix library score` first)")
    table = library.table(["id", "tokens", *names])
    cols = {c: np.array([np.nan if v is None else v for v in table[c]], dtype=np.float64) for c in names}
    return learn_signal_weights(records, table["id"].astype(str).tolist(), cols, tokens=table["tokens"])
