"""The analysis' settings: typed and validated when the pipeline loads, before any trial trains.

Light on purpose (pydantic only): ``bookmix.config`` embeds :class:`AnalysisConfig` as ``analysis.options``, so a bad
option fails with ``analysis.options.field: reason`` at load, not after every search trial has trained.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

TOP_LIST = 10
"""Books listed in top_books / bottom_books; later rounds spend their uncertainty where a book could enter or leave
this list (``proposal.uncertainty_weights``)."""

SPLITS = 20
"""Random halvings for the split-half agreement: 20 put the Monte-Carlo error of the mean split-half correlation near
0.02 at a few dozen trials (its split-to-split std is ~0.1); each is two ridge fits of an n/2 x n/2 kernel."""


class Constraints(BaseModel):
    """Limits on a proposed recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    set_size: int | None = Field(None, ge=1)
    """Books in the recipe; None takes the size of the best measured recipe."""
    token_budget: int | None = Field(None, ge=1)
    """Most training tokens (sum of book tokens x sparsity keep x epochs); None: no limit. Needs a library."""
    max_repeats: int | None = None
    """Most reads of any book (epochs); None: the recipes' own max_repeats rule only."""


class AnalysisConfig(BaseModel):
    """How ``analyze`` fits and reports (the pipeline's ``analysis.options``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    n_boot: int = Field(200, ge=0)
    """Bootstrap draws for intervals: 200 pins a 95% percentile interval's ends to a few % of its width."""
    level: float = Field(0.95, gt=0, lt=1)
    """Confidence level of the intervals."""
    folds: int = Field(5, ge=2)
    """Cross-validation folds of the validity check."""
    top: int = Field(TOP_LIST, ge=1)
    """Books listed in top_books / bottom_books."""
    lasso: bool = True
    propose: bool = True
    splits: int = Field(SPLITS, ge=0)
    """Random halvings for the split-half agreement of effects (0 turns the reliability checks off)."""
    constraints: Constraints = Field(default_factory=Constraints)
    objective_weights: dict[str, float] | None = None
    """The suite's objective (metric → weight): marks the objective's terms in ``terms`` and the summary."""
