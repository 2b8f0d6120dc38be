"""The analysis: which books, orders and sparsities make models better, with honest error bars.

    findings = analyze(records, library)          # noise, books, factors, validity, surrogate, proposal
    findings.to_dict() / findings.to_json()       # the JSON of `bookmix analyze --json`
    recipe = propose(findings, library, Constraints(set_size=20)).recipe
    verify_stats(proposal_objectives, baseline_objectives, seed)   # {improvement, ci, p_value}
    recipes = next_round(records_or_table, n=16, seed=1, library=lib)

Objectives are oriented so that **higher is better** everywhere in this package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bookmix.analysis import proposal as _proposal
from bookmix.analysis.features import book_info
from bookmix.analysis.findings import AnalysisConfig, Findings, analyze, propose_from
from bookmix.analysis.predictors import fit_predictors
from bookmix.analysis.proposal import Constraints, Proposal
from bookmix.analysis.table import TrialTable, from_records
from bookmix.analysis.verify import verify_stats


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
    return _proposal.propose(table, info, pred, constraints, seed)


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
    return _proposal.next_round(t, info, pred, n, seed=seed, pool_ids=pool)


__all__ = [
    "AnalysisConfig",
    "Constraints",
    "Findings",
    "Proposal",
    "TrialTable",
    "analyze",
    "from_records",
    "next_round",
    "propose",
    "verify_stats",
]
