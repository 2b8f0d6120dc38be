"""analyze(): trial records in, Findings out — noise floor, book effects, factor effects, surrogate, validity,
proposal. Every pattern is reported next to the cross-validated validity of the model that found it. propose() and
next_round() reuse the fitted state (or fit afresh from records).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from bookmix.analysis.config import AnalysisConfig, Constraints
from bookmix.analysis.features import BookInfo, book_info
from bookmix.analysis.noise import noise_report, without_seed_effects
from bookmix.analysis.predictors import Predictors, fit_predictors
from bookmix.analysis.proposal import Proposal
from bookmix.analysis.proposal import next_round as _next_round
from bookmix.analysis.proposal import propose as _propose
from bookmix.analysis.reliability import choose_level, group_effects, out_of_sample, placebo_validity
from bookmix.analysis.table import TrialTable, from_records
from bookmix.analysis.terms import metric_snr, terms_sentence
from bookmix.analysis.validity import cross_validate

# A predictor whose held-out Spearman is below this ranks recipes little better than chance; its patterns are
# flagged, not hidden. 0.3 is a weak-but-real rank correlation at the tens of trials a nano campaign has.
WEAK_VALIDITY = 0.3


@dataclass
class Findings:
    """What the analysis found; ``to_dict()`` is the JSON of ``bookmix analyze --json``."""

    n_trials: int
    n_recipes: int
    n_books: int
    set_size: float  # median books per trial: with n_trials and n_books, how often each book was read
    noise: dict[str, dict[str, Any]]
    books: list[dict[str, Any]]  # {book, title, effect, ci, trials}, best first
    top_books: list[dict[str, Any]]
    bottom_books: list[dict[str, Any]]
    factors: list[dict[str, Any]]
    validity: dict[str, dict[str, Any]]
    surrogate: dict[str, Any]
    proposal: dict[str, Any] | None
    summary: list[str]
    reliability: dict[str, Any]  # split-half agreement per level, the level chosen, the placebo
    groups: list[dict[str, Any]]  # effects of kinds of book at the chosen level (empty when it is 'books')
    out_of_sample: dict[str, Any] | None  # predicted vs measured on recipes no fit saw (the campaign's oos stage)
    model: dict[str, Any]  # penalties and degrees of freedom, for the curious
    terms: list[dict[str, Any]] = field(default_factory=list)  # recipe spread ÷ seed spread per metric (terms.py)
    # Fitted state for propose()/next_round(); not part of the JSON.
    table: TrialTable | None = field(default=None, repr=False)
    info: BookInfo | None = field(default=None, repr=False)
    predictors: Predictors | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        keys = ("n_trials", "n_recipes", "n_books", "set_size", "noise", "books", "top_books", "bottom_books", "factors",
                "validity", "surrogate", "proposal", "summary", "reliability", "groups", "out_of_sample", "model", "terms")  # fmt: skip
        return _plain({k: getattr(self, k) for k in keys})

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _plain(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_plain(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _book_rows(table: TrialTable, info: BookInfo, pred: Predictors) -> list[dict[str, Any]]:
    bm = pred.book_model
    order = np.argsort(-bm.effect, kind="stable")
    return [
        {
            "book": str(table.book_ids[j]),
            "title": str(info.titles[j]),
            "effect": float(bm.effect[j]),
            "ci": [float(bm.ci_low[j]), float(bm.ci_high[j])],
            "trials": int(bm.trials[j]),
        }
        for j in order
    ]


def _reliability(table: TrialTable, info: BookInfo, config: AnalysisConfig):
    """Split-half agreement per level, the level the effects are read at, and the placebo."""
    if config.splits <= 0:
        return {}, None
    choice = choose_level(table, info, config.splits, config.seed)
    rel = {
        **choice.to_dict(),
        "placebo_validity": placebo_validity(table, config.folds, config.seed),
        "sentences": [c.sentence() for c in choice.candidates.values()],
    }
    return rel, choice


def _summary(noise: dict[str, Any], validity: dict[str, Any], books: list[dict], factors: list[dict],
             reliability: dict[str, Any] | None = None) -> list[str]:  # fmt: skip
    out = [noise["objective"]["sentence"]]
    if reliability:
        chosen = reliability["level"]
        out.append(f"Effects are read at the level of {chosen}: {reliability['reason']}.")
        books_rel = reliability["candidates"]["books"]
        if books_rel["rerun_agreement"] is not None:
            need = books_rel["trials_for"].get("0.8")
            out.append(
                f"An independent rerun would agree on book effects at about ρ = {books_rel['rerun_agreement']:.2f}"
                + (f"; about {need} trials for 0.8." if need else "; no number of trials like these reaches 0.8.")
            )
        level = reliability["candidates"][chosen]
        if chosen != "books" and level["rerun_agreement"] is not None:
            out.append(f"On effects by {chosen}: about ρ = {level['rerun_agreement']:.2f}.")
        pv = reliability.get("placebo_validity")
        if pv is not None and pv > 0.2:
            out.append(f"Warning: with outcomes shuffled between recipes the datamodel still ranks held-out trials at "
                       f"Spearman {pv:.2f}; its patterns may be artefacts.")  # fmt: skip
    for name, v in validity.items():
        rho = v["spearman"]
        if rho is None or rho < WEAK_VALIDITY:
            shown = "n/a" if rho is None else f"{rho:.2f}"
            out.append(f"The {name} predictor ranks held-out trials poorly (Spearman {shown}): treat its patterns as weak.")
    clear_books = [b for b in books if b["ci"][0] is not None and (b["ci"][0] > 0 or b["ci"][1] < 0)]
    out.append(f"{len(clear_books)} of {len(books)} books have an effect whose interval excludes zero.")
    clear = [f["factor"] for f in factors if f["clear"]]
    if clear:
        out.append("Factors with a clear effect (adjusted for the others): " + ", ".join(clear) + ".")
    else:
        out.append("No recipe factor has an effect clearly different from zero.")
    return out


def predict_records(table: TrialTable, pred: Predictors, records: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Every predictor's objective for new recipes (records as for :func:`analyze`; their objectives are not read for
    the prediction). Books no fitted trial held have no estimated effect and count as an average book (0)."""
    new = from_records(records, source="out_of_sample")
    col = {b: j for j, b in enumerate(table.book_ids)}
    rows, cols = [], []
    for i in range(new.n):
        for j in new.inclusion.indices[new.inclusion.indptr[i] : new.inclusion.indptr[i + 1]]:
            if (c := col.get(str(new.book_ids[j]))) is not None:
                rows.append(i)
                cols.append(c)
    inclusion = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(new.n, len(table.book_ids)))
    return pred.predict(inclusion, new.settings)


def _out_of_sample(table: TrialTable, pred: Predictors, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    measured = from_records(records, source="out_of_sample")
    out: dict[str, Any] = {"n": measured.n, "predictors": {}}
    for name, p in predict_records(table, pred, records).items():
        out["predictors"][name] = out_of_sample(p, measured.objective, measured.groups)
    return out


def analyze(
    records: Sequence[Mapping[str, Any]],
    library: Any = None,
    config: AnalysisConfig | None = None,
    holdout: Sequence[Mapping[str, Any]] | None = None,
) -> Findings:
    """Analyse finished trials.

    ``records``: dicts ``{trial_id, recipe (Recipe.to_dict()), seed, stage, objective, objective_stderr,
    metrics}``. **The objective must be oriented so that higher is better** (the campaign negates losses).
    ``library``: an open :class:`bookmix.library.Library` (titles, year, language, subjects, clusters...), a
    columnar catalog mapping like ``lib.table()``, or None (books known by id only).
    ``holdout``: records of trials on fresh recipes that must not be fitted (the out-of-sample check): each
    predictor's predictions for them are compared with their measured objectives.
    """
    config = config or AnalysisConfig()
    table = from_records(records)
    noise = noise_report(table)
    # Every effect below is fitted with each seed's common effect removed (it moves all recipes of a seed alike).
    table = replace(table, objective=without_seed_effects(table.objective, table.groups, table.seeds))
    info = book_info(library, table.book_ids)
    pred = fit_predictors(table, info, n_boot=config.n_boot, level=config.level, seed=config.seed,
                          lasso=config.lasso)  # fmt: skip
    validity = {k: v.to_dict() for k, v in cross_validate(table, info, config.folds, config.seed).items()}
    books = _book_rows(table, info, pred)
    for row in books:
        row["validity"] = validity.get("datamodel", {}).get("spearman")
    factors = [e.to_dict() for e in pred.factor_model.effects]
    for row in factors:
        row["validity"] = validity.get("factors", {}).get("spearman")
    surrogate: dict[str, Any] = {"kind": None, "importance": {}, "validity": validity.get("surrogate")}
    if pred.surrogate is not None:
        imp = pred.surrogate.importance()
        surrogate = {
            "kind": pred.surrogate.kind,
            "features": pred.featurizer.names + ["book_score"],
            "importance": dict(sorted(imp.items(), key=lambda kv: -kv[1])[:15]),
            "validity": validity.get("surrogate"),
        }
    rel, choice = _reliability(table, info, config)
    terms = metric_snr(noise, config.objective_weights)
    groups = [] if choice is None else group_effects(table, choice, config.n_boot, config.level, config.seed)
    findings = Findings(
        n_trials=table.n,
        n_recipes=len(table.group_keys),
        n_books=len(table.book_ids),
        set_size=float(np.median(table.set_size)),
        noise=noise,
        books=books,
        top_books=books[: config.top],
        bottom_books=books[::-1][: config.top],
        factors=factors,
        validity=validity,
        surrogate=surrogate,
        proposal=None,
        summary=_summary(noise, validity, books, factors, rel),
        reliability=rel,
        groups=groups,
        out_of_sample=_out_of_sample(table, pred, holdout) if holdout else None,
        model={
            "book_alpha": pred.book_model.alpha,
            "book_df": pred.book_model.df,
            "book_loo_rmse": float(np.sqrt(pred.book_model.loo_mse)),
            "factor_alpha": pred.factor_model.alpha,
            "aliased_factors": pred.featurizer.aliases,
            "level": config.level,
            "n_boot": config.n_boot,
            "lasso_nonzero": None if pred.lasso is None else int(np.count_nonzero(pred.lasso.coef_)),
        },
        terms=terms,
        table=table,
        info=info,
        predictors=pred,
    )
    if (line := terms_sentence(terms)) is not None:
        findings.summary.insert(1, line)
    oos = (findings.out_of_sample or {}).get("predictors", {}).get("datamodel")
    if oos is not None:
        rho, acc = oos["spearman"], oos["pairwise_accuracy"]
        findings.summary.append(
            f"Out of sample: on {oos['n']} fresh recipes no fit saw, the datamodel's predictions rank the measured "
            f"outcomes at Spearman {'n/a' if rho is None else f'{rho:.2f}'} (pairwise accuracy "
            f"{'n/a' if acc is None else f'{acc:.2f}'})."
        )
    if config.propose:
        findings.proposal = _propose(table, info, pred, config.constraints, seed=config.seed).to_dict()
    return findings


def propose_from(findings: Findings, constraints: Constraints | None = None, seed: int = 0) -> Proposal:
    """A proposal under other constraints, reusing the fitted findings."""
    if findings.table is None or findings.predictors is None or findings.info is None:
        raise ValueError("these Findings carry no fitted state (loaded from JSON?); run analyze() again")
    return _propose(findings.table, findings.info, findings.predictors, constraints, seed)


def _as_table(source: TrialTable | Findings | Sequence[Mapping[str, Any]]) -> TrialTable:
    if isinstance(source, TrialTable):
        return source
    if isinstance(source, Findings):
        if source.table is None:
            raise ValueError("these Findings carry no fitted state; pass the records instead")
        return source.table
    return from_records(source)


def propose(
    source: TrialTable | Findings | Sequence[Mapping[str, Any]],
    library: Any = None,
    constraints: Constraints | None = None,
    seed: int = 0,
) -> Proposal:
    """The predicted-best recipe under ``constraints`` (set size, token budget, max repeats).

    ``source`` is the Findings of :func:`analyze` (its fitted models are reused), a TrialTable or the records.
    """
    if isinstance(source, Findings) and source.predictors is not None:
        return propose_from(source, constraints, seed)
    table = _as_table(source)
    info = book_info(library, table.book_ids)
    pred = fit_predictors(table, info, n_boot=0, seed=seed, lasso=False)
    return _propose(table, info, pred, constraints, seed)


def next_round(
    table: TrialTable | Findings | Sequence[Mapping[str, Any]], n: int, seed: int = 0, library: Any = None
) -> list[Any]:
    """``n`` new Recipes for the next search round: mutations of the best and surrogate-guided picks.

    With an open Library, mutations may bring in train books no trial has read yet (exploration).
    """
    t = _as_table(table)
    info = book_info(library, t.book_ids)
    pred = fit_predictors(t, info, n_boot=0, seed=seed, lasso=False)
    pool = None
    if library is not None and hasattr(library, "table"):
        pool = np.asarray(library.table(columns=["id"], split="train")["id"]).astype(str)
    return _next_round(t, info, pred, n, seed=seed, pool_ids=pool)
