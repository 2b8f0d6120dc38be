"""The analysis: which books, orders and sparsities make models better, with honest error bars.

    findings = analyze(records, library)          # noise, books, factors, validity, surrogate, proposal
    findings.to_dict() / findings.to_json()       # the JSON of `bookmix analyze --json`
    recipe = propose(findings, library, Constraints(set_size=20)).recipe
    verify_stats(proposal_objectives, baseline_objectives, seed)   # {improvement, ci, p_value}
    recipes = next_round(records_or_table, n=16, seed=1, library=lib)

Objectives are oriented so that **higher is better** everywhere in this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bookmix.analysis.config import AnalysisConfig, Constraints
from bookmix.utils.lazy import lazy_exports

if TYPE_CHECKING:
    from bookmix.analysis.findings import Findings, analyze, next_round, propose
    from bookmix.analysis.proposal import Proposal
    from bookmix.analysis.table import TrialTable, from_records
    from bookmix.analysis.verify import verify_stats

# The fitting machinery (numpy, scipy, scikit-learn) loads on first use, so that the pipeline config can validate
# analysis.options (bookmix.analysis.config) without the analysis extra installed.
__getattr__, __dir__ = lazy_exports(__name__, {
    "Findings": "findings", "analyze": "findings", "next_round": "findings", "propose": "findings",
    "Proposal": "proposal", "TrialTable": "table", "from_records": "table", "verify_stats": "verify",
})  # fmt: skip

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
