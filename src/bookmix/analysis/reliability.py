"""Would an independent rerun agree? Reliability of effects, the level they can be read at, and checks against
false findings.

A campaign's book effects are worth reading only if a second campaign with other seeds and other random recipes
would find the same ones. This module measures that from the campaign itself, and plans for it:

- **Split-half agreement.** The recipes are split at random into two halves (replicate groups kept together), the
  effects are fitted on each half alone, and the halves' effects are rank-correlated over the units seen in both.
  Averaged over many splits, and projected to the whole campaign with the Spearman–Brown formula
  ``r_full = 2 r / (1 + r)`` (a half campaign has half the trials per unit), ``r_full`` is the expected rank agreement
  of the campaign's effects with those of an independent campaign of the same size. Projected the same way to other
  sizes (``r(m·n) = m r / (1 + (m − 1) r)``) it says how many trials a target agreement needs.
- **The level effects can be read at.** Per book when the library is small and every book sits in many trials; per
  *kind of book* (cluster, author, genre, language, era) when single books are too rare in the trials to estimate.
  A kind's effect is the datamodel of "how many books of this kind the recipe has" — the same ridge as the book
  effects, over a narrower matrix. The analysis reports the level whose split-half reliability is highest (books win
  ties: they are the finer answer), and says why.
- **Placebo.** The recipes are shuffled between replicate groups (a trial keeps its objective but gets another
  recipe's books) and the datamodel's cross-validated validity and split-half agreement are computed again: with the
  link between books and outcome cut, both must collapse to about zero; when they do not, the pipeline finds patterns
  in noise.
- **Out of sample.** Fresh random recipes that no fit ever saw (the campaign's ``out_of_sample`` stage): predicted vs
  measured, as RegMix validates its regression.
- **The power planner** (:func:`plan_from_pilot`): before a campaign trains, a pilot's measured split-half agreement
  projected onto the planned campaign of the same set size, scaled by how often each book is read (trials ÷ books). An
  analytic planner from the noise floor alone (reliability n S² / (n S² + p σ²), assuming effects add up) was tried
  and dropped: on storyworld 5-gram campaigns of 32–128 trials it predicted 0.87–0.99 where pairs of independent
  campaigns agreed at 0.30–0.81; the split halves see the non-additive part of the signal, the noise floor does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from bookmix.analysis.config import SPLITS
from bookmix.analysis.datamodel import fit_book_model
from bookmix.analysis.features import BookInfo
from bookmix.analysis.table import TrialTable
from bookmix.analysis.validity import fold_ids, spearman

# Targets the planner states trials for: 0.5 is "the top and bottom agree", 0.8 is "the ranking is usable".
TARGETS = (0.5, 0.7, 0.8, 0.9)
# A kind of book needs at least this many distinct groups to rank, and each must be in trials of both halves.
MIN_GROUPS = 3
# Years binned into eras of this many years for the 'era' kind: a half-century separates styles and spellings.
ERA_YEARS = 50


def spearman_brown(r: float | None, m: float) -> float | None:
    """Reliability of a campaign ``m`` times as large as one whose reliability is ``r`` (r <= 0 stays 0)."""
    if r is None:
        return None
    r = max(float(r), 0.0)
    return float(m * r / (1.0 + (m - 1.0) * r)) if r > 0 else 0.0


def trials_for(r_full: float | None, n: int, targets: Sequence[float] = TARGETS) -> dict[str, int | None]:
    """Trials a campaign like this one needs for each target agreement (None: the current reliability is ~0)."""
    out: dict[str, int | None] = {}
    for t in targets:
        if r_full is None or r_full <= 0.01:
            out[f"{t:g}"] = None
        elif r_full >= 0.999:
            out[f"{t:g}"] = n
        else:
            m = t * (1.0 - r_full) / (r_full * (1.0 - t))
            out[f"{t:g}"] = int(math.ceil(m * n))
    return out


@dataclass(frozen=True)
class Reliability:
    """Split-half agreement of one level of effects (books, or one kind of book)."""

    level: str  # 'books' | 'cluster' | 'author' | 'genre' | 'lang' | 'era'
    units: int  # effects estimated at this level (books or groups seen in some trial)
    split_half: float | None  # mean Spearman between the two halves' effects
    split_half_sd: float | None  # its spread over the random halvings
    rerun_agreement: float | None  # Spearman–Brown: expected agreement of the whole campaign with a rerun
    trials: int
    trials_for: dict[str, int | None]  # target agreement -> trials needed (same design, same noise)
    splits: int
    placebo: float | None = None  # split-half agreement with the recipes shuffled: must be ~0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        if self.rerun_agreement is None:
            return f"{self.level}: too few trials to tell how well an independent rerun would agree."
        need = self.trials_for.get("0.8")
        tail = (
            f"about {need} trials for 0.8" if need and need > self.trials
            else ("already above 0.8" if need else "more trials alone will not get there (no agreement yet)")
        )  # fmt: skip
        return (
            f"Effects of {_level_name(self.level)}: an independent rerun of this campaign would agree at about "
            f"ρ = {self.rerun_agreement:.2f} (split-half {self.split_half:.2f} ± {self.split_half_sd or 0:.2f}, "
            f"{self.units} {_unit_name(self.level)}, {self.trials} trials); {tail}."
        )


def _level_name(level: str) -> str:
    return "books" if level == "books" else f"kinds of book by {level}"


def _unit_name(level: str) -> str:
    return "books" if level == "books" else f"{level} groups"


# ---- kinds of book --------------------------------------------------------------------------------------------------
def group_labels(info: BookInfo) -> dict[str, np.ndarray]:
    """Candidate groupings of the table's books: label per book ('' = unknown), for every kind the catalog has."""
    out: dict[str, np.ndarray] = {}
    for name in ("cluster", "genre", "lang"):
        if name in info.categorical:
            out[name] = np.asarray(info.categorical[name], dtype=object)
    if "author" in info.extra:
        out["author"] = np.asarray(info.extra["author"], dtype=object)
    if "year" in info.numeric:
        y = info.numeric["year"]
        out["era"] = np.array(["" if not np.isfinite(v) else str(int(v // ERA_YEARS * ERA_YEARS)) for v in y],
                              dtype=object)  # fmt: skip
    return out


def group_matrix(labels: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """(p books x G groups) 0/1 membership and the group names; books with no label belong to none."""
    labels = np.asarray(labels).astype(str)
    known = labels != ""
    names, codes = np.unique(labels[known], return_inverse=True)
    rows = np.flatnonzero(known)
    m = sp.csr_matrix((np.ones(len(rows)), (rows, codes)), shape=(len(labels), len(names)))
    return m, names


def unit_inclusion(table: TrialTable, members: sp.csr_matrix | None) -> sp.csr_matrix:
    """Trials x units: the book inclusion itself, or per group the number of the recipe's books in it."""
    return table.inclusion if members is None else (table.inclusion @ members).tocsr()


def _fit_effects(x: sp.csr_matrix, table: TrialTable, rows: np.ndarray) -> np.ndarray:
    """Unit effects fitted on the trials at ``rows`` (no intervals): the datamodel ridge over ``x``'s columns."""
    sub = x[rows]
    zs = np.zeros((len(rows), 0))  # settings are not what varies between halves; effects of the units alone
    _, groups = np.unique(table.groups[rows], return_inverse=True)
    return fit_book_model(sub, zs, table.objective[rows], groups, n_boot=0).effect


def split_half(
    table: TrialTable, x: sp.csr_matrix, splits: int = SPLITS, seed: int = 0, objective: np.ndarray | None = None
) -> list[float]:
    """Spearman between the unit effects of two random halves of the recipes, once per split (units in both)."""
    y = table.objective if objective is None else objective
    t = table if objective is None else _with_objective(table, y)
    k = int(table.groups.max()) + 1
    if k < 6:
        return []
    rng = np.random.default_rng(seed)
    out: list[float] = []
    for _ in range(splits):
        half = rng.permutation(k) < k // 2
        a, b = np.flatnonzero(half[table.groups]), np.flatnonzero(~half[table.groups])
        seen = (np.asarray((x[a] != 0).sum(axis=0)).ravel() > 0) & (np.asarray((x[b] != 0).sum(axis=0)).ravel() > 0)
        if seen.sum() < MIN_GROUPS:
            continue
        ea, eb = _fit_effects(x, t, a), _fit_effects(x, t, b)
        r = spearman(ea[seen], eb[seen])
        if r is not None:
            out.append(r)
    return out


def _with_objective(table: TrialTable, y: np.ndarray) -> TrialTable:
    from dataclasses import replace

    return replace(table, objective=np.asarray(y, dtype=np.float64))


def reliability(
    table: TrialTable, x: sp.csr_matrix, level: str, splits: int = SPLITS, seed: int = 0, placebo: bool = True
) -> Reliability:
    rs = split_half(table, x, splits, seed)
    units = int(np.count_nonzero(np.asarray((x != 0).sum(axis=0)).ravel()))
    mean = float(np.mean(rs)) if rs else None
    full = spearman_brown(mean, 2.0) if mean is not None else None
    plac = None
    if placebo and rs:
        shuffled = shuffled_objective(table, seed + 1)
        pr = split_half(table, x, max(splits // 2, 5), seed + 2, objective=shuffled)
        plac = float(np.mean(pr)) if pr else None
    return Reliability(
        level=level,
        units=units,
        split_half=mean,
        split_half_sd=float(np.std(rs, ddof=1)) if len(rs) > 1 else None,
        rerun_agreement=full,
        trials=table.n,
        trials_for=trials_for(full, table.n),
        splits=len(rs),
        placebo=plac,
    )


def shuffled_objective(table: TrialTable, seed: int) -> np.ndarray:
    """The placebo's objective: whole replicate groups' outcomes handed to other recipes.

    Group sizes differ, so the groups' *deviations from their own mean* stay with the trials (keeping the seed-noise
    structure) while the group means are permuted among groups; every recipe then carries another recipe's outcome.
    """
    y = table.objective
    k = int(table.groups.max()) + 1
    counts = np.bincount(table.groups, minlength=k)
    means = np.bincount(table.groups, weights=y, minlength=k) / np.maximum(counts, 1)
    perm = np.random.default_rng(seed).permutation(k)
    return y - means[table.groups] + means[perm][table.groups]


def placebo_validity(table: TrialTable, folds: int = 5, seed: int = 0, repeats: int = 3) -> float | None:
    """Out-of-fold Spearman of the book datamodel on shuffled objectives (mean of ``repeats``): must be ~0."""
    k = int(table.groups.max()) + 1
    folds = min(folds, k)
    if folds < 2 or table.n < 6:
        return None
    vals = []
    for r in range(repeats):
        y = shuffled_objective(table, seed + 100 + r)
        fold = fold_ids(table.groups, folds, seed + r)
        pred = np.full(table.n, np.nan)
        zs = np.zeros((table.n, 0))
        for f in range(folds):
            tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            _, g = np.unique(table.groups[tr], return_inverse=True)
            model = fit_book_model(table.inclusion[tr], zs[tr], y[tr], g, n_boot=0)
            pred[te] = model.predict(table.inclusion[te], zs[te])
        s = spearman(pred, y)
        if s is not None:
            vals.append(s)
    return float(np.mean(vals)) if vals else None


# ---- the level effects are read at ------------------------------------------------------------------------------------
@dataclass
class LevelChoice:
    level: str
    reason: str
    candidates: dict[str, Reliability] = field(default_factory=dict)
    members: sp.csr_matrix | None = None
    group_names: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "reason": self.reason,
                "candidates": {k: v.to_dict() for k, v in self.candidates.items()}}  # fmt: skip


def choose_level(table: TrialTable, info: BookInfo, splits: int = SPLITS, seed: int = 0) -> LevelChoice:
    """Books, or the kind of book whose effects an independent rerun would reproduce best."""
    cands: dict[str, Reliability] = {"books": reliability(table, table.inclusion, "books", splits, seed)}
    members: dict[str, tuple[sp.csr_matrix, np.ndarray]] = {}
    used = np.asarray(table.inclusion.sum(axis=0)).ravel() > 0
    for name, labels in group_labels(info).items():
        m, names = group_matrix(labels)
        n_used = int(np.count_nonzero(np.asarray(m[used].sum(axis=0)).ravel()))
        # A grouping with as many groups as books is the book level again; one with fewer than 3 cannot rank.
        if n_used < MIN_GROUPS or n_used >= used.sum():
            continue
        members[name] = (m, names)
        cands[name] = reliability(table, unit_inclusion(table, m), name, splits, seed)
    scored = {k: v.rerun_agreement for k, v in cands.items() if v.rerun_agreement is not None}
    if not scored:
        return LevelChoice("books", "too few recipes to measure agreement at any level; book effects shown", cands)
    best = max(scored, key=lambda k: (round(scored[k], 2), k == "books"))
    b = cands["books"].rerun_agreement
    if best == "books":
        reason = f"book effects are the most reproducible level (expected rerun agreement {scored['books']:.2f})"
    else:
        reason = (
            f"single books are too rare in the trials to estimate reproducibly (expected rerun agreement "
            f"{0.0 if b is None else b:.2f}); books grouped by {best} agree at {scored[best]:.2f}"
        )
    chosen = members.get(best)
    return LevelChoice(best, reason, cands, chosen[0] if chosen else None, chosen[1] if chosen else None)


def group_effects(
    table: TrialTable, choice: LevelChoice, n_boot: int = 200, level: float = 0.95, seed: int = 0
) -> list[dict[str, Any]]:
    """Effects of one more book of each group (adjusted for the other groups), with intervals, best first."""
    if choice.members is None or choice.group_names is None:
        return []
    x = unit_inclusion(table, choice.members)
    model = fit_book_model(x, np.zeros((table.n, 0)), table.objective, table.groups, n_boot=n_boot, level=level,
                           seed=seed)  # fmt: skip
    books_in = np.asarray(choice.members.sum(axis=0)).ravel()
    order = np.argsort(-model.effect, kind="stable")
    return [
        {"group": str(choice.group_names[j]), "kind": choice.level, "effect": float(model.effect[j]),
         "ci": [float(model.ci_low[j]), float(model.ci_high[j])], "trials": int(model.trials[j]),
         "books": int(books_in[j])}
        for j in order if model.trials[j] > 0
    ]  # fmt: skip


# ---- out of sample --------------------------------------------------------------------------------------------------
def out_of_sample(predicted: np.ndarray, measured: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Predicted vs measured objective of trials no fit saw: Spearman, pairwise accuracy, calibration slope."""
    from bookmix.analysis.validity import pairwise_accuracy

    p, y = np.asarray(predicted, float), np.asarray(measured, float)
    slope = None
    if len(y) >= 3 and np.ptp(p) > 0:
        slope = float(np.polyfit(p, y, 1)[0])
    return {
        "n": int(len(y)),
        "spearman": spearman(p, y),
        "pairwise_accuracy": pairwise_accuracy(p, y, np.asarray(groups)),
        "slope": slope,  # 1 = calibrated; < 1 = the fit over-states differences
        "predicted": [float(v) for v in p],
        "measured": [float(v) for v in y],
    }


# ---- the power planner ------------------------------------------------------------------------------------------------
def plan_from_pilot(
    findings: Mapping[str, Any], trials: int, per_set: float | None = None, library_books: int | None = None,
    targets: Sequence[float] = TARGETS,
) -> dict[str, Any]:  # fmt: skip
    """Project a pilot campaign's measured split-half reliability onto a planned campaign of ``trials`` trials.

    Within one set size, a book's effect is estimated from the n·k/p trials that read it (trials × books per set ÷
    books in the library), so the pilot's reliability is scaled by the ratio of n/p between the planned campaign and
    the pilot (Spearman–Brown); for kinds of book the number of groups stays what it was, so only n scales.
    ``library_books`` defaults to the pilot's. Across set sizes nothing is projected: on real books (24 English books +
    5 controls, 48 recipes) scaling by reads predicted that sets of 2 would agree at 0.35 from the 0.62 that the split
    halves of sets of 6 measured, and scaling by what each book adds to a trial (a book is 1/k of it) predicted 0.85;
    the split halves of sets of 2 measured 0.70.
    When ``per_set`` differs from the pilot's, the plan says so and asks for a pilot at the planned size.
    """
    rel = findings.get("reliability") or {}
    cands = rel.get("candidates") or {}
    if not cands:
        raise ValueError("the pilot's findings carry no reliability (analysed before bookmix measured it, or with "
                         "analysis.options.splits: 0); run `bookmix analyze` on it again")  # fmt: skip
    n0 = int(findings.get("n_trials") or 0)
    k0 = float(findings.get("set_size") or 0) or None
    p0 = int(findings.get("n_books") or 0)
    out: dict[str, Any] = {"pilot_trials": n0, "trials": int(trials), "level": rel.get("level"), "levels": {}}
    if per_set and k0 and abs(per_set - k0) > 0.1 * k0:
        out["set_size_note"] = (
            f"the pilot's sets held {k0:g} books and these {per_set:g}: agreement does not carry across set sizes by "
            "any rule bookmix could verify; run the pilot at the planned set size"
        )
    for name, c in cands.items():
        r0 = c.get("rerun_agreement")
        m = trials / n0 if n0 else float("nan")
        if name == "books" and library_books and p0:
            m *= p0 / library_books
        r = spearman_brown(r0, m) if r0 is not None and np.isfinite(m) else None
        need = trials_for(r, int(trials), targets) if r is not None else {f"{t:g}": None for t in targets}
        out["levels"][name] = {"pilot_agreement": r0, "agreement": r, "trials_for": need, "scale": m}
    return out


def pilot_sentence(plan: Mapping[str, Any]) -> str:
    level = plan.get("level") or "books"
    lv = plan["levels"].get(level) or {}
    r = lv.get("agreement")
    if r is None:
        return f"The pilot ({plan['pilot_trials']} trials) measured no usable agreement: no projection."
    need = lv["trials_for"].get("0.8")
    note = f" Caution: {plan['set_size_note']}." if plan.get("set_size_note") else ""
    return (
        f"From the pilot ({plan['pilot_trials']} trials, agreement {lv['pilot_agreement']:.2f} on {level}): a campaign "
        f"of {plan['trials']} trials would agree with an independent rerun at about ρ = {r:.2f} on {level}"
        + (f"; about {need} trials for 0.8." if need and need > plan["trials"] else
           ("." if need else "; no number of trials like these reaches 0.8."))
        + note
    )  # fmt: skip


def pilot_plan_for(
    pilot: str | Path, trials: int | None, books_per_set: Sequence[int], library: str | Path | None,
    where: str = "--pilot",
) -> dict[str, Any]:  # fmt: skip
    """The power plan of ``bookmix estimate --pilot`` and ``analysis.pilot``: ``pilot`` is a campaign folder or its
    findings.json; errors name ``where``."""
    import json

    from bookmix.errors import BookmixError

    path = Path(pilot)
    path = path / "findings.json" if path.is_dir() else path
    if not path.is_file():
        raise BookmixError(f"{where}: {path}: no findings.json (run the pilot campaign with the analysis on)")
    if not trials:
        raise BookmixError(f"{where}: give --trials, the size of the campaign to plan")
    try:
        findings = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BookmixError(f"{where}: {path}: not JSON ({exc})") from None
    n_books = None
    if library is not None:
        from bookmix.library import Library

        n_books = len(Library.open(library).table(columns=["id"], split="train")["id"])
    per_set = float(books_per_set[0]) if len(books_per_set) == 1 else None
    try:
        plan = plan_from_pilot(findings, trials, per_set=per_set, library_books=n_books)
    except ValueError as exc:
        raise BookmixError(f"{where}: {path}: {exc}") from None
    plan["sentence"] = pilot_sentence(plan)
    return plan
