"""The analysis proof on real nano trials (issue 8): does a campaign find the books a storyworld planted?

One campaign through ``run_campaign``: a storyworld library is generated and ingested; a datamodels design (each
book in a recipe with probability 0.5) makes the recipes; every trial trains a real nano-shaped model in a worker
subprocess and is scored by the real eval suite on the world's fact_recall items; the real analysis ranks the books
and proposes a recipe; the verification trains it against random recipes of its size over several seeds.

The scorecard compares the analysis with the world's manifest (the ground truth):
  - ROC AUC of the book effects as a classifier of the helpful books (those the fact_recall items name in
    ``helps``) against every other book; the issue asks for >= 0.85;
  - the misleading books' rank percentiles in the effect ranking (0 = top, 1 = bottom);
  - the verification's improvement over the random baselines, its 95% interval and one-sided p-value.

    .venv/bin/python bench/analysis_proof.py [--recipes 46] [--seed 0] [--out DIR]

tests/analysis/test_campaign_proof.py runs this same campaign (``FULL``) and asserts the scorecard.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

TASK = "fact_recall"


@dataclass(frozen=True)
class ProofSize:
    """How big the proof campaign is. Trials: recipes + ceil(replicates x recipes) + (1 + baselines) x verify_seeds."""

    books: int = 14
    """Storyworld books of all kinds: 7 fact, 3 misleading, 2 noise, 2 story (one held out), so 13 to rank."""
    tokens_per_book: int = 13000
    """Books long enough that any ``set_size`` of them read once hold more than ``train_tokens`` (a book has at
    least ~0.9 x this many tokens): the verification's random baselines are read for one epoch (the campaign draws
    them with the default reading settings), and so they train on exactly as many tokens as the proposal, not
    fewer. The facts repeat through the book, so a longer book is not a richer one: only the budget counts."""
    recipes: int = 46
    """Datamodels recipes of the search: 13 book effects and an intercept need a few trials per unknown; 46 is what
    the 64-trial limit leaves beside the replicates and the 12 verification trials."""
    replicates: float = 0.1
    """Share of recipes trained with a second seed: the noise floor the analysis reports."""
    train_tokens: int = 65536
    """Every trial trains exactly this many tokens (512 steps of 2 windows of 64), whatever its books. A fixed budget
    is what a data-selection campaign compares at; with budgets growing with the set size, every extra book helps
    through extra steps alone and the neutral books rank among the helpful ones. (At micro_batch 8, 32k tokens
    learned the facts too weakly: AUC 0.88 by accuracy; 64k gave 0.98-1.0.)"""
    set_size: int = 6
    """Books in the proposal and in each baseline: at best 6 of the 7 fact books, against random 6-book sets that
    hold ~3 fact and ~1.4 misleading books on average. Fewer books per set also dilute each fact book less within
    the fixed budget."""
    baselines: int = 12
    """Random recipes of the proposal's size. The recipe is the verification's unit (a baseline's seeds are averaged
    first), so it is the number of baseline *recipes* that bounds what the test can show: 12 let the exact rank test
    reach 1/13 and give the t-test 11 degrees of freedom."""
    verify_seeds: int = 1
    """One seed each: at this size more recipes buy more than more seeds (the 64-trial budget leaves 13 trials)."""
    workers: int = 2
    """Two worker processes with one torch thread each: a 2-core machine's best throughput for models this small."""
    pack: int = 4
    """Trials per worker process: start-up (~4 s, torch import included) is paid every 4 trials, and the 12
    verification trials still split over both workers."""

    @property
    def trials(self) -> int:
        reps = int(np.ceil(self.replicates * self.recipes)) if self.replicates > 0 else 0
        return self.recipes + reps + (1 + self.baselines) * self.verify_seeds


FULL = ProofSize()


def proof_pipeline(out: Path, size: ProofSize = FULL, seed: int = 0) -> dict[str, Any]:
    """The pipeline mapping (``bookmix.config.parse_pipeline``) of the proof campaign in folder ``out``."""
    return {
        "campaign": {"name": "analysis-proof", "out": str(out)},
        "library": {
            "storyworld": {
                "books": size.books,
                "seed": seed,
                "options": {
                    "tokens_per_book": size.tokens_per_book,
                    # Half fact books (the planted helpful ones), three misleading books to sink, noise and story
                    # as the neutral rest.
                    "mix": {"fact": 0.5, "story": 0.15, "noise": 0.15, "misleading": 0.2},
                    # Level 1 only: short canonical sentences, no filler, so a nano model learns a fact within
                    # the 512 steps a CPU trial affords; 3 people per book repeat each of its 12 facts more often.
                    "difficulties": [1],
                    "people_per_fact_book": 3,
                    # A misleading book contradicts every fact of its target book (not half): its harm is then
                    # large enough to sink it below the neutral books.
                    "misleading_fraction": 1.0,
                },
            },
            "tokenizer": "train:512",  # a small vocabulary: the output head is most of a tiny model's compute
        },
        "search": {
            "designs": [
                # 4 epochs: even a 3-book recipe then has more than train_tokens to read, so every trial reads
                # exactly train_tokens (the cap) and none runs short.
                {"design": "datamodels", "n": size.recipes, "alpha": 0.5, "seed": seed, "recipe": {"epochs": 4}}
            ]
        },
        # nano's shape, shallower and narrower: a trial is ~2 s of training on one CPU thread. Block 64: a fact
        # sentence is ~10 tokens, longer windows would buy nothing the items ask.
        "model": {"preset": "nano", "overrides": {"n_layer": 2, "n_head": 2, "d_model": 64, "block_size": 64}},
        # micro_batch 2: at the same 65k tokens, 512 small steps memorise far more facts than 128 steps of 8 windows
        # (a trial answered ~70-100% of its own fact books' items instead of ~55%) for ~40% more time per trial.
        # lr 5e-3 did as well as 3e-3 and better than 2e-3 and 1e-2 in trial runs.
        "train": {"micro_batch": 2, "lr": 0.005, "warmup": 5, "max_tokens": size.train_tokens, "log_every": 50,
                  "eval_windows": 8},  # fmt: skip
        "seeds": {"seeds": [0], "replicates": size.replicates, "replicate_seeds": 1},
        "eval": {
            "suite": {
                "name": "proof",
                "bootstrap": 20,
                # group_depth 2: per-fact-book breakdowns (facts/acc@group=fact_recall/fact_000) for diagnosis.
                "tasks": [{"name": "facts", "type": "multiple_choice", "path": f"storyworld/items/{TASK}.jsonl",
                           "group_depth": 2}],  # fmt: skip
                # Accuracy, not the margin: an item the model has not learned has a margin of -3 to -7 nats that
                # swings with the seed and with unrelated books, and that tail drowned the fact books' signal
                # (AUC 0.81-0.88 by margin vs 0.98-1.0 by accuracy on the same trials).
                "objective": {"metric": "facts/acc", "direction": "maximize"},
            }
        },
        "selection": {"top_k": 4},
        "analysis": {"enabled": True, "options": {"seed": seed, "n_boot": 100, "constraints": {"set_size": size.set_size}}},
        "verification": {"enabled": True, "baselines": size.baselines, "seeds": size.verify_seeds},
        "report": {"enabled": False},
        "executor": {"kind": "local", "workers": size.workers, "threads": 1, "trials_per_unit": size.pack},
    }


@dataclass(frozen=True)
class Scorecard:
    auc: float
    """ROC AUC of the book effects: helpful books (per the manifest) against every other analysed book."""
    helpful: int
    others: int
    misleading_percentiles: list[float]
    """Rank percentile of each misleading book in the effect ranking, in file order: 0 = top, 1 = bottom."""
    ranking: list[tuple[str, float]]
    """(storyworld file, effect), best first."""
    datamodel_spearman: float | None
    """Cross-validated rank correlation of the datamodel's predictions with held-out trials."""
    proposal_helpful: int
    """Helpful books in the proposed recipe, out of ``proposal_size``."""
    proposal_size: int
    improvement: float
    ci: list[float]
    p_value: float
    """One-sided, the recipe as the unit (prediction-interval t-test against the baseline recipes)."""
    percentile: float
    """Share of baseline recipes the proposal beat, in percent."""
    p_rank: float
    """The exact rank test's p; its floor is 1 / (baselines + 1)."""
    verify_tokens: dict[str, list[int]]
    """Trained tokens of the proposal's and of the baselines' verification trials (should all be equal)."""
    trials: dict[str, int]
    """Trials by state."""
    train_seconds: float
    """Mean training time of one trial (the worker's own measure, start-up and evaluation excluded)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a random positive scores above a random negative), ties counted half: the Mann-Whitney form of ROC AUC."""
    pos, neg = np.asarray(pos, dtype=float)[:, None], np.asarray(neg, dtype=float)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def score(campaign_dir: Path) -> Scorecard:
    """Read the campaign's findings, verification and storyworld manifest; compare the ranking with the truth."""
    from bookmix.campaign.status import results_table
    from bookmix.library import Library
    from bookmix.storyworld import Manifest

    campaign_dir = Path(campaign_dir)
    findings = json.loads((campaign_dir / "findings.json").read_text(encoding="utf-8"))
    verification = json.loads((campaign_dir / "verification.json").read_text(encoding="utf-8"))
    manifest = Manifest.load(campaign_dir / "storyworld")
    lib = Library.open(campaign_dir / "library")
    # The library's id hashes the cleaned text, which the manifest cannot know: map by the source file's name.
    file_of = {b.id: Path(b.source).name for b in lib.books()}
    helpful = {b for it in manifest.items(TASK) for b in it.helps}
    misleading = sorted(manifest.book_names(kind="misleading", holdout=False))

    ranking = [(file_of[b["book"]], float(b["effect"])) for b in findings["books"]]  # best first
    ranked = [name for name, _ in ranking]
    pos = [e for name, e in ranking if name in helpful]
    neg = [e for name, e in ranking if name not in helpful]
    proposal = [file_of[b] for b in findings["proposal"]["recipe"]["books"]]
    rows = results_table(campaign_dir)
    states = {s: sum(r["state"] == s for r in rows) for s in sorted({r["state"] for r in rows})}
    verify = [r for r in rows if r["stage"] == "verify" and r["state"] == "completed"]
    return Scorecard(
        auc=auc(pos, neg),
        helpful=len(pos),
        others=len(neg),
        misleading_percentiles=[ranked.index(b) / (len(ranked) - 1) for b in misleading if b in ranked],
        ranking=ranking,
        datamodel_spearman=findings["validity"]["datamodel"]["spearman"],
        proposal_helpful=sum(b in helpful for b in proposal),
        proposal_size=len(proposal),
        improvement=verification["improvement"],
        ci=verification["ci"],
        p_value=verification["p_value"],
        percentile=verification["percentile"],
        p_rank=verification["p_rank"],
        verify_tokens={
            "proposal": sorted(r["tokens"] for r in verify if r["recipe_id"] == verification["proposal"]),
            "baselines": sorted(r["tokens"] for r in verify if r["recipe_id"] != verification["proposal"]),
        },
        trials=states,
        train_seconds=float(np.mean([r["train_seconds"] for r in rows if r["train_seconds"] is not None])),
    )


def run(out: Path, size: ProofSize = FULL, seed: int = 0, show_progress: bool = True) -> tuple[Scorecard, float]:
    """Run (or resume) the proof campaign in ``out``; (scorecard, wall seconds of this call)."""
    from bookmix.campaign.runner import run_campaign
    from bookmix.config import parse_pipeline

    t0 = time.perf_counter()
    run_campaign(parse_pipeline(proof_pipeline(out, size, seed)), show_progress=show_progress)
    return score(out), time.perf_counter() - t0


def report(card: Scorecard, size: ProofSize, wall: float) -> str:
    pct = ", ".join(f"{p:.2f}" for p in card.misleading_percentiles)
    return "\n".join([
        f"trials: {size.trials} planned, by state {card.trials}; mean training time {card.train_seconds:.2f} s/trial",
        f"AUC helpful-vs-other: {card.auc:.3f} ({card.helpful} helpful, {card.others} other books; target >= 0.85)",
        f"misleading books' rank percentiles (0 top, 1 bottom): {pct}",
        "ranking: " + ", ".join(f"{name.removesuffix('.txt')} {e:+.3f}" for name, e in card.ranking),
        f"datamodel held-out Spearman: {card.datamodel_spearman:.3f}",
        f"proposal: {card.proposal_helpful}/{card.proposal_size} helpful books",
        f"verification: improvement {card.improvement:+.4f} (accuracy), 95% CI [{card.ci[0]:+.4f}, {card.ci[1]:+.4f}], "
        f"p = {card.p_value:.4f} (recipe as the unit), above {card.percentile:.0f}% of {size.baselines} baseline recipes, "
        f"rank p = {card.p_rank:.3f}; trained tokens {card.verify_tokens}",
        f"wall time: {wall:.1f} s",
    ])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipes", type=int, default=FULL.recipes)
    ap.add_argument("--seed", type=int, default=0, help="seed of the storyworld, the design and the analysis")
    ap.add_argument("--out", type=Path, default=None, help="campaign folder to keep (default: a temporary one)")
    args = ap.parse_args()
    size = replace(FULL, recipes=args.recipes)
    with tempfile.TemporaryDirectory() as tmp:
        card, wall = run(args.out or Path(tmp) / "proof", size, args.seed)
    print(report(card, size, wall))


if __name__ == "__main__":
    main()
