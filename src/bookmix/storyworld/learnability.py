"""Is the planted signal learnable? Train a scorer with and without the books an item group names, compare.

The check is model-agnostic: ``fit(data) -> ContinuationScorer``. The default fit is the word n-gram
(:class:`~bookmix.storyworld.ngram.NGramScorer`), which reads the books' texts; a fit whose ``reads`` attribute is
``"books"`` gets the books' file names instead — :class:`~bookmix.storyworld.nano.NanoFit`, which trains a real
nano LM on a Recipe of those books and scores with the eval suite's batched Scorer. Effects are paired over items
(the same items, scored by both models), with the standard error of the paired difference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from bookmix.errors import BookmixError
from bookmix.storyworld.items import Item
from bookmix.storyworld.manifest import Manifest
from bookmix.storyworld.ngram import ContinuationScorer, NGramScorer

Fit = Callable[[list[str]], ContinuationScorer]
"""Texts (or, when the fit has ``reads = "books"``, book file names) → a trained scorer."""


@dataclass(frozen=True)
class Effect:
    """Score with the books minus score without them, on the items those books should affect."""

    task: str
    books: str
    """'helps' (removing the helpful books) or 'hurts' (removing the harmful ones)."""
    removed: list[str]
    n_items: int
    acc_with: float
    acc_without: float
    diff: float
    """acc_with - acc_without, averaged over items (paired)."""
    se: float
    """Standard error of the paired difference: sd(per-item difference) / sqrt(n)."""
    logprob_diff: float
    """Mean gain in log p(true answer) from having the books, in nats."""
    logprob_se: float

    @property
    def z(self) -> float:
        return (
            self.diff / self.se
            if self.se > 0
            else (float("inf") if self.diff > 0 else float("-inf") if self.diff < 0 else 0.0)
        )

    def to_dict(self) -> dict:
        """Plain JSON: an infinite z (every item moved the same way, so se = 0) becomes null, as does a nan se."""
        d = {**asdict(self), "z": self.z}
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()}


def choice_logprobs(scorer: ContinuationScorer, items: Sequence[Item]) -> list[np.ndarray]:
    """Per item, log p(choice | context) for every choice, from one batched call."""
    contexts = [it.context for it in items for _ in it.choices]
    conts = [c for it in items for c in it.choices]
    flat = np.asarray(scorer.logprobs(contexts, conts), dtype=np.float64)
    bounds = np.cumsum([len(it.choices) for it in items])[:-1]
    return np.split(flat, bounds)


def accuracy(scorer: ContinuationScorer, items: Sequence[Item]) -> tuple[np.ndarray, np.ndarray]:
    """(score per item, log p of the true answer per item). The score is 1 when the true choice alone scores best,
    1/m when it ties with m-1 others (the expected score of a random tie-break), else 0: so chance is 1/k."""
    per_item = choice_logprobs(scorer, items)
    score = np.array(
        [(lp[it.answer] == lp.max()) / np.sum(lp == lp.max()) for lp, it in zip(per_item, items, strict=True)]
    )
    true_lp = np.array([lp[it.answer] for lp, it in zip(per_item, items, strict=True)])
    return score, true_lp


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of a - b and its standard error."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) < 2:
        return float(d.mean()) if len(d) else 0.0, float("nan")
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def train_books(manifest: Manifest, exclude: set[str] = frozenset()) -> list[str]:
    """File names of every non-held-out book except ``exclude``, in manifest order."""
    return [n for n in manifest.book_names(holdout=False) if n not in exclude]


def train_texts(manifest: Manifest, exclude: set[str] = frozenset()) -> list[str]:
    """Texts of every non-held-out book except ``exclude`` (file names), in manifest order."""
    return [manifest.book_path(n).read_text(encoding="utf-8") for n in train_books(manifest, exclude)]


def fit_on(manifest: Manifest, fit: Fit, exclude: set[str] = frozenset()) -> ContinuationScorer:
    """Train ``fit`` on the training books but ``exclude``: book names for a fit that reads books, else texts."""
    if getattr(fit, "reads", "texts") == "books":
        return fit(train_books(manifest, exclude))
    return fit(train_texts(manifest, exclude))


def ablation(manifest: Manifest, task: str, books: str = "helps", fit: Fit = NGramScorer) -> Effect:
    """Train on all training books and on all but the ``books`` ('helps' or 'hurts') of the task's items; compare
    on the items those books affect."""
    if books not in ("helps", "hurts"):
        raise BookmixError(f"books: must be 'helps' or 'hurts', got {books!r}")
    items = [it for it in manifest.items(task) if getattr(it, books)]
    if not items:
        raise BookmixError(f"{task}: no items with {books} books in this storyworld")
    removed = sorted({b for it in items for b in getattr(it, books)})
    full = fit_on(manifest, fit)
    ablated = fit_on(manifest, fit, set(removed))
    ok_full, lp_full = accuracy(full, items)
    ok_ablated, lp_ablated = accuracy(ablated, items)
    diff, se = paired(ok_full, ok_ablated)
    lp_diff, lp_se = paired(lp_full, lp_ablated)
    return Effect(
        task, books, removed, len(items), float(ok_full.mean()), float(ok_ablated.mean()), diff, se, lp_diff, lp_se
    )
