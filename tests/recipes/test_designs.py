"""Designs: constraints, reproducibility, balance, and clear errors before any work."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bookmix.errors import BookmixError, ConfigError
from bookmix.recipes import Recipe, make_design, parse_design


def _table(n=400, seed=0, holdout_every=10):
    rng = np.random.default_rng(seed)
    return {
        "id": np.array([f"{i:016x}" for i in range(n)], dtype=object),
        "tokens": rng.integers(1_000, 100_000, n),
        "split": np.array(["holdout" if i % holdout_every == 0 else "train" for i in range(n)], dtype=object),
        "cluster": rng.integers(0, 5, n),
        "lang": np.array(["en", "en", "ru", "de"] * (n // 4), dtype=object),
    }


HOLDOUT = {f"{i:016x}" for i in range(0, 400, 10)}


def _check_common(recipes, n, table):
    assert len(recipes) == n and len({r.id for r in recipes}) == n
    ids = set(table["id"].tolist())
    for r in recipes:
        assert set(r.books) <= ids and not set(r.books) & HOLDOUT


def test_balanced_random_reads_every_book_equally_often():
    t = _table(n=40)  # 36 train books; 54 sets of 2 = 108 slots = 3 reads each
    recipes = make_design("random", t, n=54, seed=4, books_per_set=2, balanced=True)
    _check_common(recipes, 54, t)
    use = Counter(b for r in recipes for b in r.books)
    assert len(use) == 36 and max(use.values()) - min(use.values()) <= 1 and sum(use.values()) == 108
    plain = Counter(b for r in make_design("random", t, n=54, seed=4, books_per_set=2) for b in r.books)
    assert max(plain.values()) - min(plain.values(), default=0) > 1 or len(plain) < 36  # what balance fixes
    ids = [r.id for r in make_design("random", t, n=54, seed=4, books_per_set=2, balanced=True)]
    assert ids == [r.id for r in recipes]
    with pytest.raises(ConfigError, match="balanced"):
        parse_design({"design": "random", "n": 3, "token_budget": 1000, "balanced": True})


def test_random_is_reproducible_and_sized():
    t = _table()
    a = make_design("random", t, n=50, seed=1, books_per_set=7)
    _check_common(a, 50, t)
    assert all(len(r.books) == 7 and r.meta["design"] == "random" for r in a)
    assert [r.id for r in a] == [r.id for r in make_design("random", t, n=50, seed=1, books_per_set=7)]
    assert {r.id for r in a}.isdisjoint(r.id for r in make_design("random", t, n=50, seed=2, books_per_set=7))
    # every train book is about equally likely
    use = Counter(b for r in make_design("random", t, n=600, seed=3, books_per_set=6) for b in r.books)
    assert len(use) == 360 and max(use.values()) < 30  # expected 10 each


def test_token_budget_caps_every_recipe():
    t = _table()
    for kw in ({"books_per_set": 5, "token_budget": 200_000}, {"token_budget": 300_000}):
        recipes = make_design("random", t, n=40, seed=0, **kw)
        tok = dict(zip(t["id"].tolist(), t["tokens"].tolist(), strict=True))
        sums = [sum(tok[b] for b in r.books) for r in recipes]
        assert max(sums) <= kw["token_budget"]
        if "books_per_set" not in kw:  # filled up to the budget: adding one more typical book would pass it
            assert min(sums) > kw["token_budget"] - 100_000
    half = make_design("random", t, n=10, seed=0, token_budget=300_000, recipe={"sparsity": {"keep": 0.5}})
    assert np.mean([len(r.books) for r in half]) > 1.5 * np.mean([len(r.books) for r in recipes])


def test_stratified_balances_the_field():
    t = _table()
    labels = dict(zip(t["id"].tolist(), t["lang"].tolist(), strict=True))
    for r in make_design("stratified", t, n=30, seed=0, books_per_set=8, by="lang"):
        counts = Counter(labels[b] for b in r.books)
        assert sorted(counts.values()) in ([2, 3, 3], [2, 2, 4]) or max(counts.values()) - min(counts.values()) <= 1
        assert len(counts) == 3
    clusters = dict(zip(t["id"].tolist(), t["cluster"].tolist(), strict=True))
    for r in make_design("stratified", t, n=20, seed=0, books_per_set=10):
        assert sorted(Counter(clusters[b] for b in r.books).values()) == [2, 2, 2, 2, 2]


def test_dirichlet_mixtures_span_concentrations():
    t = _table()
    recipes = make_design("dirichlet", t, n=60, seed=0, books_per_set=20)
    _check_common(recipes, 60, t)
    conc = np.array([r.meta["concentration"] for r in recipes])
    assert 0.1 <= conc.min() < 1.0 and 4.0 < conc.max() <= 5.0
    clusters = dict(zip(t["id"].tolist(), t["cluster"].tolist(), strict=True))
    spread = [max(Counter(clusters[b] for b in r.books).values()) for r in recipes]
    low = [s for s, c in zip(spread, conc, strict=True) if c < 0.5]
    high = [s for s, c in zip(spread, conc, strict=True) if c > 3]
    assert np.mean(low) > np.mean(high)  # small concentrations give lopsided mixtures
    for r in recipes:
        assert abs(sum(r.meta["weights"].values()) - 1) < 0.01


def test_datamodels_inclusion_rate():
    t = _table()
    recipes = make_design("datamodels", t, n=200, seed=0, alpha=0.3, pool_size=40)
    pool = {b for r in recipes for b in r.books}
    assert len(pool) == 40 and not pool & HOLDOUT
    rate = np.mean([len(r.books) / 40 for r in recipes])
    assert 0.27 < rate < 0.33
    with pytest.raises(BookmixError, match="pool: book '0000000000000000' is a holdout book"):
        make_design("datamodels", t, n=5, seed=0, pool=["0000000000000000", "0000000000000001"])


def test_factorial_crosses_every_level_over_shared_sets():
    t = _table()
    recipes = make_design(
        "factorial",
        t,
        n=16,
        seed=0,
        orders=["random", "length_asc"],
        keeps=[0.5, 1.0],
        sizes=[3, 6],
        recipe={"grain": "books"},
    )
    assert len(recipes) == 16
    cells = Counter((r.order, r.sparsity.keep, len(r.books)) for r in recipes)
    assert len(cells) == 8 and set(cells.values()) == {2}
    rep0 = [r for r in recipes if r.meta["replicate"] == 0]
    small = {frozenset(r.books) for r in rep0 if len(r.books) == 3}
    big = {frozenset(r.books) for r in rep0 if len(r.books) == 6}
    assert len(small) == len(big) == 1 and next(iter(small)) < next(iter(big))  # nested book sets
    with pytest.raises(ConfigError, match="design.n: 10 is not a multiple of the 8 cells"):
        make_design(
            "factorial",
            t,
            n=10,
            seed=0,
            orders=["random", "length_asc"],
            keeps=[0.5, 1.0],
            sizes=[3, 6],
            recipe={"grain": "books"},
        )
    with pytest.raises(ConfigError, match="order: 'length_asc' needs grain 'books'"):
        make_design("factorial", t, n=2, seed=0, orders=["random", "length_asc"], sizes=[3])


def test_latin_hypercube_covers_each_range_evenly():
    t = _table()
    recipes = make_design("latin_hypercube", t, n=20, seed=0, keep_range=(0.2, 1.0), size_range=(1, 20))
    keeps = sorted(r.sparsity.keep for r in recipes)
    assert all(0.2 + 0.04 * i <= k <= 0.2 + 0.04 * (i + 1) for i, k in enumerate(keeps))  # one per stratum
    assert sorted(len(r.books) for r in recipes) == list(range(1, 21))


def test_list_and_mutate(tmp_path):
    t = _table()
    parents = make_design("random", t, n=3, seed=0, books_per_set=5)
    listed = make_design("list", t, recipes=[p.to_dict() for p in parents] + [parents[0].to_dict()])
    assert [r.id for r in listed] == [p.id for p in parents]  # deduplicated
    with pytest.raises(BookmixError, match="book '0000000000000000' is a holdout book"):
        make_design("list", t, recipes=[{"books": ["0000000000000000"]}])
    kids = make_design("mutate", t, n=30, seed=0, parents=[p.to_dict() for p in parents])
    _check_common(kids, 30, t)
    by_id = {p.id: p for p in parents}
    for k in kids:
        p = by_id[k.meta["parent"]]
        assert k.id not in by_id and k.meta["ops"]
        diff = len(set(k.books) ^ set(p.books))
        assert diff <= 2 * len(k.meta["ops"])
    assert {op for k in kids for op in k.meta["ops"]} == {"swap", "add", "drop", "order", "sparsity"}


def test_bad_designs_fail_before_any_work():
    t = _table()
    with pytest.raises(BookmixError, match="books_per_set: 400 is more than the 360 books in the pool"):
        make_design("random", t, n=2, seed=0, books_per_set=400)
    with pytest.raises(BookmixError, match="token_budget: no set of 5 books fits in 1000 tokens"):
        make_design("random", t, n=2, seed=0, books_per_set=5, token_budget=1000)
    with pytest.raises(BookmixError, match="n: could make only 1 distinct recipes of 2"):
        make_design("random", {"id": np.array(["a", "b", "c"]), "tokens": np.array([5, 6, 7])}, n=2, books_per_set=3)
    with pytest.raises(ConfigError, match="design.books_per_set: must be ≥ 1, got 0"):
        make_design("random", t, n=2, books_per_set=0)
    with pytest.raises(ConfigError, match="design.design: must be one of"):
        parse_design({"design": "magic"})
    with pytest.raises(ConfigError, match=r"design.recipe.sparsity.keep: must be in \(0, 1\]"):
        parse_design({"design": "random", "books_per_set": 3, "recipe": {"sparsity": {"keep": 2}}})
    with pytest.raises(BookmixError, match="by: the catalog has no column 'genre'"):
        make_design("stratified", t, n=2, books_per_set=3, by="genre")


def test_design_config_is_a_discriminated_union():
    cfg = parse_design({"design": "dirichlet", "n": 10, "books_per_set": 4, "concentration": [0.5, 2]})
    assert type(cfg).__name__ == "DirichletDesign" and cfg.concentration == (0.5, 2.0)
    assert isinstance(make_design("random", _table(), n=1, books_per_set=2)[0], Recipe)


def test_designs_on_a_real_library(small_lib, train_ids):
    recipes = make_design("random", small_lib, n=5, seed=0, books_per_set=3, where="year >= 1805")
    years = dict(zip(*[small_lib.table(["id", "year"])[c].tolist() for c in ("id", "year")], strict=True))
    assert all(set(r.books) <= set(train_ids) and min(years[b] for b in r.books) >= 1805 for r in recipes)
    assert all(r.stream(small_lib, 16).n_windows > 0 for r in recipes)


def test_book_lookup_on_a_big_table_names_the_bad_book():
    from bookmix.recipes.books import BookTable

    t = BookTable({k: v for k, v in _table(n=4000).items()})
    ids = ["00000000000000f1", "0000000000000003", "0000000000000bb5"]
    assert t["id"][t.rows(ids)].tolist() == ids
    with pytest.raises(BookmixError, match="books: book 'zzz' is not in the library"):
        t.rows([ids[0], "zzz"])
    with pytest.raises(BookmixError, match="books: book '00000000000000f0' is a holdout book"):
        t.rows([ids[0], "00000000000000f0"])


def test_designs_do_not_depend_on_ingest_order(tmp_path):
    from support.library import make_library

    from .conftest import topic_texts

    texts = topic_texts(10)
    a = make_library(tmp_path / "a", texts, seed=0)
    b = make_library(tmp_path / "b", texts[::-1] if isinstance(texts, list) else dict(reversed(texts.items())), seed=0)
    assert a.table(["id"])["id"].tolist() != b.table(["id"])["id"].tolist()  # the catalogs list books differently
    for name, params in [("random", {"books_per_set": 4}), ("datamodels", {"alpha": 0.5})]:
        ra = make_design(name, a, n=4, seed=3, **params)
        rb = make_design(name, b, n=4, seed=3, **params)
        assert [r.books for r in ra] == [r.books for r in rb]
