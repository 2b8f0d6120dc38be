"""Scale of the analysis: 1000 trials drawn from a pool of 1,000,000 candidate books (sparse design).

Prints wall time and peak RSS of each stage, and the ratio of the datamodel fit (penalty chosen by exact
leave-one-out over 25 penalties + 200 bootstrap draws) to one plain scikit-learn Ridge fit on the same sparse
design, run in this same process as the baseline. Target (issue 8): the fit under 60 s and 4 GB.

    .venv/bin/python bench/analysis_scale.py [--trials 1000] [--pool 1000000] [--per-set 100]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: kilobytes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--pool", type=int, default=1_000_000)
    ap.add_argument("--per-set", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from bookmix.analysis import AnalysisConfig, analyze
    from bookmix.analysis.features import book_info
    from bookmix.analysis.predictors import fit_predictors
    from bookmix.analysis.table import from_records
    from bookmix.recipes.recipe import Recipe

    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    ids = np.char.mod("%016x", np.arange(args.pool))
    catalog = {
        "id": ids,
        "tokens": rng.integers(10_000, 500_000, args.pool),
        "year": rng.integers(1700, 2020, args.pool).astype(float),
        "lang": np.where(rng.random(args.pool) < 0.8, "en", "ru"),
    }
    effects = rng.normal(0, 0.01, args.pool)
    orders = ("random", "interleave")
    records = []
    for i in range(args.trials):
        chosen = rng.choice(args.pool, args.per_set, replace=False)
        order = orders[i % 2]
        keep = (1.0, 0.5)[(i // 2) % 2]
        recipe = Recipe.from_dict({"books": list(ids[chosen]), "order": order, "sparsity": {"keep": keep}}).to_dict()
        y = effects[chosen].sum() + (0.05 if order == "interleave" else 0.0) + rng.normal(0, 0.02)
        records.append({"trial_id": str(i), "recipe": recipe, "seed": 0, "stage": "search", "objective": float(y),
                        "objective_stderr": None, "metrics": {"loss": float(-y)}})  # fmt: skip
    print(f"setup: {args.trials} trials x {args.per_set} books from a pool of {args.pool:,}: "
          f"{time.perf_counter() - t0:.1f} s, peak RSS {rss_gb():.2f} GB")  # fmt: skip

    t = time.perf_counter()
    table = from_records(records)
    info = book_info(catalog, table.book_ids)
    t_table = time.perf_counter() - t
    print(f"table: {table.inclusion.shape[0]} x {table.inclusion.shape[1]:,} books used "
          f"(nnz {table.inclusion.nnz:,}) + catalog join: {t_table:.2f} s, peak RSS {rss_gb():.2f} GB")  # fmt: skip

    t = time.perf_counter()
    pred = fit_predictors(table, info, n_boot=200, seed=0, lasso=False)
    t_fit = time.perf_counter() - t
    print(f"fit (datamodel + 200 bootstrap CIs, factors + CIs, LightGBM surrogate): {t_fit:.2f} s, "
          f"peak RSS {rss_gb():.2f} GB")  # fmt: skip

    from sklearn.linear_model import Ridge

    t = time.perf_counter()
    Ridge(alpha=pred.book_model.alpha, fit_intercept=True).fit(table.inclusion, table.objective)
    t_base = time.perf_counter() - t
    print(f"baseline: one sklearn Ridge fit on the same sparse design: {t_base:.2f} s; "
          f"fit / baseline = {t_fit / t_base:.1f}x")  # fmt: skip

    truth = effects[np.searchsorted(ids, table.book_ids)]
    print(f"check: corr(estimated, true book effects) = {np.corrcoef(pred.book_model.effect, truth)[0, 1]:.3f}")

    t = time.perf_counter()
    findings = analyze(records, catalog, AnalysisConfig(n_boot=200, lasso=False))
    t_all = time.perf_counter() - t
    v = findings.validity["datamodel"]
    print(f"full analyze (table, fit, 5-fold validity, proposal): {t_all:.2f} s, peak RSS {rss_gb():.2f} GB; "
          f"datamodel held-out Spearman {v['spearman']:.3f}")  # fmt: skip
    verdict = "PASS" if t_table + t_fit < 60 and rss_gb() < 4 else "FAIL"
    print(f"target table+fit < 60 s and peak RSS < 4 GB: {verdict}")


if __name__ == "__main__":
    main()
