"""The analysis proof on real nano trials (issue 8): a campaign of at most 64 trials on a storyworld library must rank
the manifest's helpful books above the rest (ROC AUC >= 0.85), the misleading ones at the bottom, and its verified
proposal must beat random baselines.

Nothing is simulated: ``run_campaign`` generates and ingests the storyworld, draws datamodels recipes, trains every
trial (a 2-layer nano-shaped model, 65k tokens) in real worker subprocesses, scores it with the real eval suite on
the world's fact_recall items, analyses all trials and verifies the proposal. The campaign is bench/analysis_proof.py's
``FULL`` one (the bench prints the same figures); ~2-3 minutes on two CPU cores.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from bookmix.training.device import torch_threads

BENCH = Path(__file__).resolve().parents[2] / "bench" / "analysis_proof.py"


def _load_bench():
    """bench/analysis_proof.py as a module (bench/ is scripts, not a package): one definition of the campaign."""
    spec = importlib.util.spec_from_file_location("bookmix_bench_analysis_proof", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


proof = _load_bench()


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """The proof campaign, run once: (campaign folder, scorecard)."""
    with torch_threads(1):  # the driver only analyses; the workers get their one thread from the pipeline
        out = tmp_path_factory.mktemp("proof") / "campaign"
        card, wall = proof.run(out, proof.FULL, seed=0, show_progress=False)
    print("\n" + proof.report(card, proof.FULL, wall))
    return out, card


@pytest.mark.slow
def test_campaign_is_at_most_64_real_trials_all_completed(campaign):
    _, card = campaign
    assert proof.FULL.trials <= 64
    assert set(card.trials) == {"completed"}  # no failed or diverged trial
    # A proposal equal to a searched recipe reuses that trial for its first seed: one trial fewer than planned.
    assert proof.FULL.trials - 1 <= card.trials["completed"] <= proof.FULL.trials
    assert card.helpful == 7 and card.others == 6  # every training book was in some recipe, and was ranked


@pytest.mark.slow
def test_helpful_books_rank_above_the_rest(campaign):
    _, card = campaign
    assert card.auc >= 0.85, card.ranking
    assert card.ranking[0][0].startswith("fact_")  # the single best book is a planted helpful one


@pytest.mark.slow
def test_misleading_books_rank_at_the_bottom(campaign):
    _, card = campaign
    # 13 ranked books (0 = top, 1 = bottom): on average in the bottom quarter, each in the bottom half, below every
    # helpful book, and the very last one misleading.
    pct = card.misleading_percentiles
    assert len(pct) == 3
    assert sum(pct) / len(pct) >= 0.75 and min(pct) >= 0.5, card.ranking
    helpful_last = max(i for i, (name, _) in enumerate(card.ranking) if name.startswith("fact_"))
    assert min(pct) > helpful_last / (len(card.ranking) - 1)
    assert card.ranking[-1][0].startswith("misleading_")


@pytest.mark.slow
def test_verified_proposal_beats_random_baselines(campaign):
    _, card = campaign
    assert card.proposal_helpful >= card.proposal_size - 2  # mostly planted helpful books
    assert card.improvement > 0 and card.ci[0] > 0 and card.p_value < 0.05, card  # the recipe as the unit
    assert card.percentile == 100.0 and card.p_rank == pytest.approx(1 / (proof.FULL.baselines + 1))
    # A fair comparison: the proposal and every baseline trained on exactly the same number of tokens.
    tokens = card.verify_tokens["proposal"] + card.verify_tokens["baselines"]
    assert tokens and set(tokens) == {proof.FULL.train_tokens}


@pytest.mark.slow
def test_rerun_of_the_finished_campaign_repeats_nothing(campaign):
    out, card = campaign
    again, _ = proof.run(out, proof.FULL, seed=0, show_progress=False)
    assert again.trials == card.trials
    assert again.auc == card.auc and again.improvement == card.improvement
