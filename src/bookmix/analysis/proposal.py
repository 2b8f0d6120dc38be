"""The proposal: search recipe space for the recipe the fitted predictors rate best, and the next round's recipes.

Candidates are book sets (drawn from the books the campaign has measured) crossed with the reading settings the
campaign has tried (order, grain, sparsity, epochs: never a setting no trial measured, the model cannot know it).
A candidate's score is the mean of the linear datamodel and the boosted-tree surrogate: the trees cannot predict
past the best book score they saw, the linear model can, and each checks the other's blind spot.

Search: start from the top books by effect (under the token budget), then a few rounds of random 1-3 book swaps
scored in one batch, keep the best. Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from bookmix.analysis.config import TOP_LIST, Constraints
from bookmix.analysis.features import BookInfo
from bookmix.analysis.predictors import Predictors
from bookmix.analysis.recipe_fields import canonical_key, recipe_settings, settings_of
from bookmix.analysis.table import CATEGORICAL_SETTINGS, NUMERIC_SETTINGS, TrialTable
from bookmix.errors import BookmixError

# Swap rounds x candidates per round: 6 x 256 scores ~1500 sets per template in well under a second, enough for a
# local optimum around the top-K-by-effect start on campaigns of thousands of books.
ROUNDS = 6
PER_ROUND = 256


def recipe_class():
    """bookmix.recipes.Recipe (imported late: the analysis reads recipes only when it writes one)."""
    try:
        from bookmix.recipes import Recipe
    except ImportError:  # the package may not re-export it yet
        from bookmix.recipes.recipe import Recipe
    return Recipe


@dataclass(frozen=True)
class Proposal:
    recipe: Any  # bookmix.recipes.Recipe
    predicted: float
    predictions: dict[str, float]
    best_observed: float  # mean objective of the best measured recipe, for comparison
    tokens: float | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.to_dict(),
            "predicted": self.predicted,
            "predictions": self.predictions,
            "best_observed": self.best_observed,
            "tokens": self.tokens,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class _Templates:
    dicts: list[dict[str, Any]]  # recipe without books/seed/id/meta
    settings: dict[str, np.ndarray]  # (T,) each, as TrialTable.settings


def _templates(table: TrialTable, max_repeats: int | None) -> _Templates:
    seen: dict[str, dict[str, Any]] = {}
    for r in table.recipes:
        tpl = settings_of(r)
        if tpl.get("phases"):  # a curriculum's phases name their own books; a new book set cannot reuse them
            continue
        if max_repeats is not None and float(tpl.get("epochs", 1)) > max_repeats:
            continue
        seen.setdefault(canonical_key(tpl), tpl)
    if not seen:
        raise BookmixError("proposal: no measured recipe fits the constraints (phases-free, epochs ≤ max_repeats)")
    dicts = list(seen.values())
    rows = [recipe_settings(d | {"books": ["x"]}) for d in dicts]
    settings: dict[str, np.ndarray] = {k: np.array([r[k] for r in rows], dtype=np.float64) for k in NUMERIC_SETTINGS}
    settings |= {k: np.array([r[k] for r in rows], dtype=object).astype(str) for k in CATEGORICAL_SETTINGS}
    return _Templates(dicts, settings)


def _rows(sets: np.ndarray, p: int) -> sp.csr_matrix:
    """Inclusion rows for book-index sets (m, K)."""
    m, k = sets.shape
    indptr = np.arange(0, m * k + 1, k)
    return sp.csr_matrix((np.ones(m * k), sets.ravel(), indptr), shape=(m, p))


def score(pred: Predictors, sets: np.ndarray, p: int, tpl: _Templates, t: np.ndarray) -> np.ndarray:
    """Ensemble score of book sets (m, K) read with templates ``t`` (m,)."""
    inc = _rows(sets, p)
    settings = {k: v[t] for k, v in tpl.settings.items()}
    out = pred.predict(inc, settings)
    parts = [out["datamodel"]] + ([out["surrogate"]] if "surrogate" in out else [])
    return np.mean(parts, axis=0)


def _tokens(info: BookInfo, sets: np.ndarray, tpl: _Templates, t: np.ndarray) -> np.ndarray | None:
    if info.tokens is None:
        return None
    per_book = np.nan_to_num(info.tokens, nan=0.0)
    return per_book[sets].sum(axis=1) * tpl.settings["sparsity_keep"][t] * tpl.settings["epochs"][t]


def _group_means(table: TrialTable) -> np.ndarray:
    k = int(table.groups.max()) + 1
    return np.bincount(table.groups, weights=table.objective, minlength=k) / np.bincount(table.groups, minlength=k)


def _mutate(sets: np.ndarray, pool: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """m copies of random rows of ``sets`` with 1-3 books swapped for pool books not already in the set."""
    base = sets[rng.integers(0, len(sets), m)].copy()  # (m, K)
    k = base.shape[1]
    for _ in range(3):  # up to three swaps; each applies to a random half of the candidates (so 1-3 swaps)
        pos = rng.integers(0, k, m)
        new = pool[rng.integers(0, len(pool), m)]
        clash = (base == new[:, None]).any(axis=1)
        apply = ~clash & (rng.random(m) < 0.5)
        apply[: m // 3] |= ~clash[: m // 3]  # at least one swap for a third of them
        base[np.flatnonzero(apply), pos[apply]] = new[apply]
    return base


def search(
    table: TrialTable, info: BookInfo, pred: Predictors, constraints: Constraints, seed: int = 0
) -> tuple[np.ndarray, int, float, _Templates]:
    """Best (book indices, template index, score) found, and the templates the index refers to."""
    rng = np.random.default_rng(seed)
    tpl = _templates(table, constraints.max_repeats)
    p = len(table.book_ids)
    means = _group_means(table)
    best_group = int(np.argmax(means))
    best_row = int(np.flatnonzero(table.groups == best_group)[0])
    k = constraints.set_size or int(table.inclusion[best_row].nnz)
    if k < 1 or k > p:
        raise BookmixError(f"proposal: set_size must be between 1 and the {p} measured books, got {k}")
    by_effect = np.argsort(-pred.book_model.effect, kind="stable")
    start = [by_effect[:k]]
    observed = table.inclusion[best_row].indices
    if len(observed) == k:
        start.append(np.sort(observed))
    sets = np.array(start)  # (s, K)
    pool = by_effect[: min(p, max(3 * k, 50))]  # swaps draw from the promising end of the ranking
    n_t = len(tpl.dicts)
    budget = constraints.token_budget

    def evaluate(cands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best template and score of each candidate set, honouring the token budget."""
        m = len(cands)
        rep = np.repeat(cands, n_t, axis=0)
        t = np.tile(np.arange(n_t), m)
        s = score(pred, rep, p, tpl, t)
        if budget is not None:
            tok = _tokens(info, rep, tpl, t)
            if tok is not None:
                s = np.where(tok <= budget, s, -np.inf)
        s = s.reshape(m, n_t)
        return s.argmax(axis=1), s.max(axis=1)

    best_t, best_s = evaluate(sets)
    for _ in range(ROUNDS):
        cands = _mutate(sets, pool, PER_ROUND, rng)
        ct, cs = evaluate(cands)
        sets = np.concatenate([sets, cands])
        best_t, best_s = np.concatenate([best_t, ct]), np.concatenate([best_s, cs])
        keep = np.argsort(-best_s, kind="stable")[:8]  # the next round mutates the current leaders
        sets, best_t, best_s = sets[keep], best_t[keep], best_s[keep]
    if not np.isfinite(best_s[0]):
        raise BookmixError(f"proposal: no recipe of {k} books fits token_budget {budget}")
    return np.sort(sets[0]), int(best_t[0]), float(best_s[0]), tpl


def propose(table: TrialTable, info: BookInfo, pred: Predictors, constraints: Constraints | None = None,
            seed: int = 0) -> Proposal:  # fmt: skip
    """The predicted-best recipe as a real :class:`bookmix.recipes.Recipe`."""
    constraints = constraints or Constraints()
    books, t, best, tpl = search(table, info, pred, constraints, seed)
    p = len(table.book_ids)
    one = books[None, :]
    settings = {k: v[[t]] for k, v in tpl.settings.items()}
    preds = {name: float(v[0]) for name, v in pred.predict(_rows(one, p), settings).items()}
    tok = _tokens(info, one, tpl, np.array([t]))
    recipe = recipe_class().from_dict(
        tpl.dicts[t] | {"books": [str(b) for b in table.book_ids[books]], "meta": {"design": "proposal"}},
        where="proposal",
    )
    notes = []
    if "surrogate" not in preds:
        notes.append("too few trials for the surrogate: scored by the datamodel alone")
    return Proposal(
        recipe=recipe, predicted=best, predictions=preds, best_observed=float(_group_means(table).max()),
        tokens=None if tok is None else float(tok[0]), notes=notes,
    )  # fmt: skip


def next_round(
    table: TrialTable, info: BookInfo, pred: Predictors, n: int, seed: int = 0, pool_ids: np.ndarray | None = None
) -> list[Any]:
    """``n`` new recipes: a quarter where the ranking is uncertain, then half of the rest mutations of the best
    measured recipes, and the surrogate's top picks for the remainder.

    Uncertainty picks are random sets drawn towards the books whose place in the reported top list is least settled:
    books ranked near its boundary, weighted down by how many trials already hold them (an effect's error shrinks as
    1/sqrt(trials)). Random sets keep the design balanced, so each such trial informs every book it holds.
    Mutations swap 1-3 books (for books from ``pool_ids`` when given, e.g. the library's unmeasured train books,
    so the campaign keeps exploring) or move a recipe to another measured reading setting. Recipes already in
    the table are never returned.
    """
    if n < 1:
        return []
    rng = np.random.default_rng(seed)
    Recipe = recipe_class()
    tpl = _templates(table, None)
    p = len(table.book_ids)
    means = _group_means(table)
    top_groups = np.argsort(-means, kind="stable")[: max(1, min(5, len(means)))]
    taken = set(table.group_keys)
    out: list[Any] = []

    def add(books: list[str], t: int, design: str) -> None:
        if len(out) >= n:
            return
        r = Recipe.from_dict(tpl.dicts[t] | {"books": books, "meta": {"design": design}}, where="next_round")
        if r.id not in taken:
            taken.add(r.id)
            out.append(r)

    # A quarter: random sets drawn towards the books whose rank near the top list's boundary is least settled.
    n_unc = n // 4
    best_row = int(np.flatnonzero(table.groups == int(top_groups[0]))[0])
    size = int(round(float(np.median(table.set_size))))
    if n_unc and 0 < size < p:
        w = uncertainty_weights(pred.book_model.effect, pred.book_model.trials)
        for _ in range(n_unc * 4):
            if len(out) >= n_unc:
                break
            drawn = np.sort(rng.choice(p, size, replace=False, p=w))
            add([str(b) for b in table.book_ids[drawn]], _template_of(table, best_row, tpl), "uncertain")

    # Half of the rest: mutations of the best, cycling through the top recipes.
    extra_pool = np.asarray(pool_ids if pool_ids is not None else table.book_ids).astype(str)
    n_mut = len(out) + (n - len(out) + 1) // 2
    for i in range(n_mut * 4):  # a few spare tries: a mutation may land on a measured recipe
        if len(out) >= n_mut:
            break
        g = int(top_groups[i % len(top_groups)])
        row = int(np.flatnonzero(table.groups == g)[0])
        books = [str(b) for b in table.book_ids[table.inclusion[row].indices]]
        t = _template_of(table, row, tpl)
        if rng.random() < 0.25 and len(tpl.dicts) > 1:
            t = int(rng.integers(0, len(tpl.dicts)))
        for _ in range(int(rng.integers(1, 4))):
            new = str(extra_pool[rng.integers(0, len(extra_pool))])
            if new not in books:
                books[int(rng.integers(0, len(books)))] = new
        add(books, t, "mutation")

    # Rest: surrogate-guided picks among many mutations of the top recipes, best score first.
    top_sets = [np.sort(table.inclusion[int(np.flatnonzero(table.groups == g)[0])].indices) for g in top_groups]
    starts = np.array([b for b in top_sets if len(b) == len(top_sets[0])])  # (s, K): one set size per batch
    cands = _mutate(starts, np.arange(p), max(64, 16 * n), rng)
    cand_tpl = rng.integers(0, len(tpl.dicts), len(cands))
    s = score(pred, cands, p, tpl, cand_tpl)
    for i in np.argsort(-s, kind="stable"):
        if len(out) >= n:
            break
        if len(set(cands[i].tolist())) == cands.shape[1]:
            add([str(b) for b in table.book_ids[np.sort(cands[i])]], int(cand_tpl[i]), "surrogate")
    return out


def uncertainty_weights(effect: np.ndarray, trials: np.ndarray, top: int = TOP_LIST) -> np.ndarray:
    """Sampling weights over books, (p,) summing to 1: high near rank ``top`` of the effects and for rarely-read books."""
    p = len(effect)
    top = max(1, min(top, p // 4 or 1))
    rank = np.empty(p)
    rank[np.argsort(-effect, kind="stable")] = np.arange(p)
    w = np.exp(-np.abs(rank - top) / top) / np.sqrt(np.asarray(trials, dtype=np.float64) + 1.0)
    return w / w.sum()


def _template_of(table: TrialTable, row: int, tpl: _Templates) -> int:
    key = canonical_key(settings_of(table.recipes[row]))
    for i, d in enumerate(tpl.dicts):
        if canonical_key(d) == key:
            return i
    return 0
