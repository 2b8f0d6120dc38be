"""Designs: rules that make many recipes from a library's train pool, reproducibly from a seed.

    recipes = make_design("random", lib, n=1000, seed=0, books_per_set=50)

Every design works on the columnar catalog (``lib.table`` or an in-memory dict of arrays), never book by book, so a
million-book pool costs one table read. Recipes come back deduplicated by id, in a fixed order for a given seed; a
design that cannot make ``n`` distinct recipes from its pool says so instead of returning fewer.

The ``design:`` block of a pipeline YAML is a :data:`DesignConfig` (discriminated by its ``design`` key); a ``recipe``
sub-block sets the fields every generated recipe shares (order, grain, sparsity, epochs, ...).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bookmix.errors import BookmixError, ConfigError, field_error
from bookmix.recipes.books import BookTable, as_table, train_pool, without_duplicates
from bookmix.recipes.clusters import cluster_command, ensure_clusters
from bookmix.recipes.recipe import ORDERS, SEQUENCE_ORDERS, Grain, Order, Pattern, Recipe, Sparsity, load_recipes
from bookmix.recipes.sampling import Groups, quota_fill, sample_distinct

TRIES_PER_RECIPE = 20  # draws allowed per wanted recipe before a design gives up on making n distinct ones


# -- configuration ---------------------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecipeTemplate(_Strict):
    """Fields shared by every recipe a design makes (a design may vary some of them, e.g. factorial)."""

    order: Order = "random"
    grain: Grain = "windows"
    block_windows: int = 16
    sparsity: Sparsity = Field(default_factory=Sparsity)
    epochs: int = 1
    reshuffle: bool = True
    max_repeats: int = 4


class _Design(_Strict):
    n: int | None = None
    """Recipes to make (list/mutate: at most this many; None = all the list / one per parent)."""
    seed: int = 0
    where: str | None = None
    """SQL over catalog columns restricting the pool, e.g. "lang = 'en' AND year >= 1850" (needs a Library)."""
    include_duplicates: bool = False
    """Keep books that ``bookmix library dedup`` marked as near-duplicates of another (``dup_of``) in the pool."""
    order_by: str | None = None
    """Score expression over catalog columns, higher = better (e.g. "-q_bpb - 5 * q_ocr"); with ``top``."""
    top: int | None = None
    """Restrict the pool to the ``top`` books by ``order_by`` (ties by id; unscored books left out; needs a Library)."""
    recipe: RecipeTemplate = Field(default_factory=RecipeTemplate)

    @field_validator("n", "top")
    @classmethod
    def _n(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"must be ≥ 1, got {v}")
        return v

    @model_validator(mode="after")
    def _top_needs_order(self) -> _Design:
        if (self.top is None) != (self.order_by is None):
            raise ValueError("top: give top and order_by together (the best `top` books by `order_by`)")
        return self


class _Sized(_Design):
    books_per_set: int | None = None
    """K: books per recipe."""
    token_budget: int | None = None
    """Cap on a recipe's tokens (book tokens × keep × epochs, before windowing). Without K: books are added until
    the next one would pass the budget."""

    @field_validator("books_per_set", "token_budget")
    @classmethod
    def _positive(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"must be ≥ 1, got {v}")
        return v


class RandomDesign(_Sized):
    """K books uniformly from the pool."""

    design: Literal["random"]
    balanced: bool = False
    """Every book in as many recipes as every other (±1, unless a token_budget rejects sets or the pool runs out of new
    sets): sets are dealt from shuffled decks of the pool, so no book of a small library is left with too few trials
    to estimate its effect (needs books_per_set)."""

    @model_validator(mode="after")
    def _need_size(self) -> RandomDesign:
        if self.books_per_set is None and self.token_budget is None:
            raise ValueError("books_per_set: give books_per_set or token_budget")
        if self.balanced and self.books_per_set is None:
            raise ValueError("balanced: needs books_per_set")
        return self


class StratifiedDesign(_Sized):
    """K books balanced over the values of a catalog column (a cluster, a language, a decade...)."""

    design: Literal["stratified"]
    by: str = "cluster"

    @model_validator(mode="after")
    def _need_k(self) -> StratifiedDesign:
        if self.books_per_set is None:
            raise ValueError("books_per_set: required for the stratified design")
        return self


class DirichletDesign(_Sized):
    """Mixture weights over the values of ``by`` drawn from a symmetric Dirichlet, then K books drawn to match."""

    design: Literal["dirichlet"]
    by: str = "cluster"
    concentration: tuple[float, float] = (0.1, 5.0)
    """Range the Dirichlet concentration is drawn from, uniformly, per recipe. 0.1–5 is RegMix's range: small values
    give a few dominant groups, large values near-uniform mixtures, so the design spans both."""

    @model_validator(mode="after")
    def _check(self) -> DirichletDesign:
        if self.books_per_set is None:
            raise ValueError("books_per_set: required for the dirichlet design")
        lo, hi = self.concentration
        if not 0 < lo <= hi:
            raise ValueError(f"concentration: need 0 < low ≤ high, got ({lo:g}, {hi:g})")
        return self


class DatamodelsDesign(_Design):
    """Each book of a candidate pool is in a recipe with probability ``alpha`` (Ilyas et al.'s datamodels)."""

    design: Literal["datamodels"]
    alpha: float = 0.5
    """0.5 maximises the variance of each inclusion indicator, which the per-book regression needs."""
    pool: list[str] | None = None
    """Candidate book ids; None: ``pool_size`` books drawn from the train pool (all of it when it is small)."""
    pool_size: int | None = None

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError(f"must be in (0, 1), got {v:g}")
        return v


class FactorialDesign(_Design):
    """Every combination of order × keep × set size (× pattern), replicated over random book sets."""

    design: Literal["factorial"]
    orders: list[Order] | None = None
    keeps: list[float] | None = None
    sizes: list[int]
    patterns: list[Pattern] | None = None

    @field_validator("keeps")
    @classmethod
    def _keeps(cls, v: list[float] | None) -> list[float] | None:
        for k in v or ():
            if not 0 < k <= 1:
                raise ValueError(f"each keep must be in (0, 1], got {k:g}")
        return v

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        if not v or min(v) < 1:
            raise ValueError(f"need at least one size, each ≥ 1, got {v}")
        return v


class LatinHypercubeDesign(_Design):
    """n recipes spreading order, keep and set size evenly over their ranges (each range cut into n strata)."""

    design: Literal["latin_hypercube"]
    orders: list[Order] | None = None
    keep_range: tuple[float, float] = (1.0, 1.0)
    size_range: tuple[int, int]

    @model_validator(mode="after")
    def _ranges(self) -> LatinHypercubeDesign:
        lo, hi = self.keep_range
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"keep_range: need 0 < low ≤ high ≤ 1, got ({lo:g}, {hi:g})")
        if not 1 <= self.size_range[0] <= self.size_range[1]:
            raise ValueError(f"size_range: need 1 ≤ low ≤ high, got {tuple(self.size_range)}")
        return self


class ListDesign(_Design):
    """Recipes the user wrote: inline dicts and/or a file (YAML, JSON or JSONL)."""

    design: Literal["list"]
    recipes: list[dict[str, Any]] | None = None
    path: str | None = None


class MutateDesign(_Design):
    """Children of given parents (the best so far): swap, add or drop books, change the order or the sparsity."""

    design: Literal["mutate"]
    parents: list[dict[str, Any]] | None = None
    parents_path: str | None = None
    mutations: int = 2
    """At most this many edits per child (1..mutations, drawn): small steps keep children near good parents."""
    ops: list[Literal["swap", "add", "drop", "order", "sparsity"]] = ["swap", "add", "drop", "order", "sparsity"]
    orders: list[Order] | None = None
    keep_factor: float = 2.0
    """A 'sparsity' edit multiplies keep by a factor in [1/f, f] (log-uniform), clipped to (0, 1]."""

    @model_validator(mode="after")
    def _check(self) -> MutateDesign:
        if self.mutations < 1:
            raise ValueError(f"mutations: must be ≥ 1, got {self.mutations}")
        if self.keep_factor <= 1:
            raise ValueError(f"keep_factor: must be > 1, got {self.keep_factor:g}")
        if not self.ops:
            raise ValueError("ops: give at least one edit")
        return self


DesignConfig = Annotated[
    RandomDesign
    | StratifiedDesign
    | DirichletDesign
    | DatamodelsDesign
    | FactorialDesign
    | LatinHypercubeDesign
    | ListDesign
    | MutateDesign,
    Field(discriminator="design"),
]
_CLASSES: dict[str, type[BaseModel]] = {
    "random": RandomDesign, "stratified": StratifiedDesign, "dirichlet": DirichletDesign,
    "datamodels": DatamodelsDesign, "factorial": FactorialDesign, "latin_hypercube": LatinHypercubeDesign,
    "list": ListDesign, "mutate": MutateDesign,
}  # fmt: skip
DESIGNS = tuple(_CLASSES)


def parse_design(d: dict[str, Any], where: str = "design") -> Any:
    """Validate a ``design:`` block; errors read ``design.books_per_set: must be ≥ 1, got 0``."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: must be a mapping, got {type(d).__name__}")
    if d.get("design") not in DESIGNS:
        raise ConfigError(f"{where}.design: must be one of {', '.join(DESIGNS)}, got {d.get('design')!r}")
    try:
        return _CLASSES[d["design"]].model_validate(d)
    except ValidationError as exc:
        raise ConfigError(field_error(exc, where)) from None


# -- entry points ------------------------------------------------------------------------------------------------------
def make_design(name: str, lib_or_table: Any, n: int | None = None, seed: int = 0, **params: Any) -> list[Recipe]:
    """Make the recipes of design ``name`` over a Library or a columnar table (dict of numpy arrays)."""
    cfg = parse_design({"design": name, "n": n, "seed": seed, **params})
    return run_design(cfg, lib_or_table)


def run_design(cfg: Any, lib_or_table: Any, notes: list[str] | None = None) -> list[Recipe]:
    """The recipes of a parsed design. A design that needs cluster labels the library lacks clusters it first (small
    libraries; a note says so in ``notes``) or fails naming `bookmix recipe cluster` (see ``ensure_clusters``)."""
    notes = [] if notes is None else notes
    by = getattr(cfg, "by", None)
    for why in _cluster_needs(cfg) if not _is_table(lib_or_table) else ():  # a table's labels are checked in _groups
        note = ensure_clusters(lib_or_table, why)
        if note:
            notes.append(note)
    if by is not None and not _is_table(lib_or_table) and by not in set(lib_or_table.columns()):
        raise BookmixError(
            f"by: the library {lib_or_table.path} has no catalog column {by!r}; "
            f"columns: {', '.join(sorted(lib_or_table.columns()))}"
        )
    catalog = as_table(lib_or_table, columns=[by] if by else None, where=cfg.where)
    pool = train_pool(catalog) if cfg.include_duplicates else without_duplicates(train_pool(catalog))
    if cfg.top is not None:
        pool = _top(cfg, lib_or_table, pool)
    if len(pool) == 0:
        raise BookmixError("design: the pool is empty (no train book matches)")
    rng = np.random.default_rng([cfg.seed, 0xDE51])
    recipes = _RUNNERS[cfg.design](cfg, pool, rng, catalog)
    # list and mutate designs (and the templates of any other) can bring 'cluster_blocks' in through their recipes
    if any("cluster_blocks" in _orders_of(r) for r in recipes) and not _is_table(lib_or_table):
        note = ensure_clusters(lib_or_table, "order: 'cluster_blocks'")
        if note:
            notes.append(note)
    return recipes


def _is_table(lib_or_table: Any) -> bool:
    return isinstance(lib_or_table, dict | BookTable)


def _cluster_needs(cfg: Any) -> list[str]:
    """What in a design needs cluster labels before it runs: ``by: cluster`` or a 'cluster_blocks' order."""
    needs = []
    if getattr(cfg, "by", None) == "cluster":
        needs.append("by: 'cluster'")
    orders = [cfg.recipe.order, *(getattr(cfg, "orders", None) or [])]
    if "cluster_blocks" in orders and not needs:
        needs.append("order: 'cluster_blocks'")
    return needs


def _orders_of(r: Recipe) -> set[str]:
    return {r.order, *(p.order for p in (r.phases or []) if p.order)}


def _top(cfg: Any, lib: Any, pool: BookTable) -> BookTable:
    if not hasattr(lib, "con"):
        raise BookmixError("design.top: choosing the best books needs a Library, not an in-memory table")
    from bookmix.library.select import select_top

    chosen = select_top(lib, cfg.top, cfg.order_by, where=cfg.where, include_duplicates=cfg.include_duplicates).ids
    return pool.take(np.flatnonzero(np.isin(pool["id"].astype(str), np.asarray(chosen, dtype=str))))


# -- shared pieces -----------------------------------------------------------------------------------------------------
def _recipe(cfg: Any, books: list[str], meta: dict[str, Any], **changes: Any) -> Recipe:
    d = cfg.recipe.model_dump(mode="python")
    d.update(changes)
    return Recipe.from_dict({**d, "books": books, "seed": cfg.seed, "meta": {"design": cfg.design, **meta}})


def _collect(n: int, draw: Callable[[int], Recipe | None], what: str) -> list[Recipe]:
    """Draw until ``n`` distinct recipes (by id) or the tries run out — then say so."""
    out: dict[str, Recipe] = {}
    for i in range(n * TRIES_PER_RECIPE):
        if len(out) == n:
            break
        r = draw(i)
        if r is not None and r.id not in out:
            out[r.id] = r
    if len(out) < n:
        raise BookmixError(
            f"n: could make only {len(out)} distinct recipes of {n} ({what}); ask for fewer or widen the pool"
        )
    return list(out.values())


def _need_n(cfg: Any) -> int:
    if cfg.n is None:
        raise ConfigError(f"design.n: required for the {cfg.design} design")
    return cfg.n


def _cost(cfg: Any, tokens: np.ndarray) -> np.ndarray:
    """Approximate tokens each book adds to a recipe (tokens × keep × epochs)."""
    return tokens.astype(np.float64) * cfg.recipe.sparsity.keep * cfg.recipe.epochs


def _check_k(cfg: Any, table: BookTable, k: int) -> None:
    if k > len(table):
        raise BookmixError(f"books_per_set: {k} is more than the {len(table)} books in the pool")
    if cfg.token_budget is not None:
        cost = _cost(cfg, table["tokens"])
        least = np.partition(cost, k - 1)[:k].sum()
        if least > cfg.token_budget:
            raise BookmixError(
                f"token_budget: no set of {k} books fits in {cfg.token_budget} tokens (the {k} shortest hold {int(least)})"
            )


def _fits(cfg: Any, table: BookTable, rows: np.ndarray) -> bool:
    return cfg.token_budget is None or _cost(cfg, table["tokens"][rows]).sum() <= cfg.token_budget


def _groups(table: BookTable, by: str) -> Groups:
    if by not in table:
        raise BookmixError(f"by: the catalog has no column {by!r}")
    values = table[by]
    if by == "cluster" and (np.asarray(values) < 0).all():
        raise BookmixError(f"by: 'cluster' is unset for every book; run `{cluster_command(None)}` first")
    if values.dtype == object:
        values = values.astype(str)
    return Groups(values)


# -- designs -------------------------------------------------------------------------------------------------------------
def _random(cfg: RandomDesign, table: BookTable, rng: np.random.Generator, catalog: BookTable) -> list[Recipe]:
    n, ids = _need_n(cfg), table["id"]
    if cfg.books_per_set is not None:
        k = cfg.books_per_set
        _check_k(cfg, table, k)

        deck: list[int] = []  # shuffled copies of the pool, one after another; deck[:head] has been dealt
        head = 0
        dealt: set[frozenset[int]] = set()

        def deal() -> np.ndarray:
            """The next k distinct books off the deck, never a set dealt before: a book that cannot go in this set is
            swapped back, not dropped, so every book is dealt once per copy of the pool."""
            nonlocal head
            if head >= len(table):  # the dealt part of the deck is never read again
                del deck[:head]
                head = 0
            rows: list[int] = []
            j = head
            while len(rows) < k:
                if j >= len(deck):
                    deck.extend(rng.permutation(len(table)).tolist())
                c = deck[j]
                stuck = j - head > 4 * len(table)  # every completion dealt already: let _collect count the repeat
                if c in rows or (not stuck and len(rows) == k - 1 and frozenset([*rows, c]) in dealt):
                    j += 1
                    continue
                deck[head], deck[j] = c, deck[head]
                head += 1
                rows.append(c)
                j = max(j, head)
            dealt.add(frozenset(rows))
            return np.asarray(rows)

        def draw(_: int) -> Recipe | None:
            rows = deal() if cfg.balanced else sample_distinct(rng, len(table), k)
            return _recipe(cfg, ids[rows].tolist(), {"k": k}) if _fits(cfg, table, rows) else None

        return _collect(n, draw, f"{k} of {len(table)} books" + (", balanced" if cfg.balanced else ""))
    # Budget only: books in random order until the next one would pass the budget.
    budget = float(cfg.token_budget or 0)
    cost = _cost(cfg, table["tokens"])
    fit = np.flatnonzero(cost <= budget)
    if not len(fit):
        raise BookmixError(f"token_budget: no book of the pool fits in {cfg.token_budget} tokens")
    mean = max(float(cost[fit].mean()), 1.0)
    guess = int(min(len(fit), 2 * budget / mean + 8))

    def draw_budget(_: int) -> Recipe | None:
        rows = fit[sample_distinct(rng, len(fit), guess)]
        take = max(1, int(np.searchsorted(np.cumsum(cost[rows]), budget, side="right")))
        return _recipe(cfg, ids[rows[:take]].tolist(), {"token_budget": cfg.token_budget})

    return _collect(n, draw_budget, f"books within {cfg.token_budget} tokens")


def _stratified(cfg: StratifiedDesign, table: BookTable, rng: np.random.Generator, catalog: BookTable) -> list[Recipe]:
    n, k, ids = _need_n(cfg), int(cfg.books_per_set or 0), table["id"]
    _check_k(cfg, table, k)
    groups = _groups(table, cfg.by)
    s = len(groups)

    def draw(_: int) -> Recipe | None:
        want = np.full(s, k // s)
        want[rng.choice(s, k - (k // s) * s, replace=False)] += 1  # the remainder goes to random strata
        counts = quota_fill(want, groups.sizes, np.ones(s), rng)
        rows = groups.draw(rng, counts)
        return _recipe(cfg, ids[rows].tolist(), {"by": cfg.by, "k": k}) if _fits(cfg, table, rows) else None

    return _collect(n, draw, f"{k} books over {s} values of {cfg.by!r}")


def _dirichlet(cfg: DirichletDesign, table: BookTable, rng: np.random.Generator, catalog: BookTable) -> list[Recipe]:
    n, k, ids = _need_n(cfg), int(cfg.books_per_set or 0), table["id"]
    _check_k(cfg, table, k)
    groups = _groups(table, cfg.by)
    lo, hi = cfg.concentration

    def draw(_: int) -> Recipe | None:
        alpha = float(rng.uniform(lo, hi))
        weights = rng.dirichlet(np.full(len(groups), alpha))
        counts = quota_fill(rng.multinomial(k, weights), groups.sizes, weights, rng)
        rows = groups.draw(rng, counts)
        if not _fits(cfg, table, rows):
            return None
        mix = {str(lab): round(float(w), 4) for lab, w in zip(groups.labels, weights, strict=True) if w >= 1e-4}
        return _recipe(
            cfg, ids[rows].tolist(), {"by": cfg.by, "k": k, "concentration": round(alpha, 4), "weights": mix}
        )

    return _collect(n, draw, f"Dirichlet mixtures of {k} books over {cfg.by!r}")


_DATAMODELS_MAX_POOL = 100_000  # beyond this a mask row is a huge recipe; ask for an explicit pool_size


def _datamodels(cfg: DatamodelsDesign, table: BookTable, rng: np.random.Generator, catalog: BookTable) -> list[Recipe]:
    n = _need_n(cfg)
    if cfg.pool is not None:
        catalog.rows(cfg.pool, field="pool")  # unknown or holdout ids are named
        pool_rows = table.rows(cfg.pool, field="pool")
    elif cfg.pool_size is not None:
        if cfg.pool_size > len(table):
            raise BookmixError(f"pool_size: {cfg.pool_size} is more than the {len(table)} books in the pool")
        pool_rows = np.sort(sample_distinct(rng, len(table), cfg.pool_size))
    elif len(table) <= _DATAMODELS_MAX_POOL:
        pool_rows = np.arange(len(table))
    else:
        raise BookmixError(f"pool_size: the pool holds {len(table)} books; give a pool_size (e.g. 1000)")
    pool_ids = table["id"][pool_rows]
    masks: Iterator[np.ndarray] = iter(())

    def draw(_: int) -> Recipe | None:
        nonlocal masks
        row = next(masks, None)
        if row is None:  # masks are drawn 256 recipes at a time: one random matrix instead of n small draws
            masks = iter(rng.random((256, len(pool_ids))) < cfg.alpha)
            row = next(masks)
        if not row.any():
            return None
        return _recipe(cfg, pool_ids[row].tolist(), {"alpha": cfg.alpha, "pool_size": len(pool_ids)})

    return _collect(n, draw, f"masks over a pool of {len(pool_ids)}")


def _factorial(cfg: FactorialDesign, table: BookTable, rng: np.random.Generator, catalog: BookTable) -> list[Recipe]:
    t = cfg.recipe
    orders = cfg.orders or [t.order]
    keeps = cfg.keeps or [t.sparsity.keep]
    patterns = cfg.patterns or [t.sparsity.pattern]
    cells = list(itertools.product(orders, keeps, cfg.sizes, patterns))
    n = cfg.n or len(cells)
    if n % len(cells):
        raise ConfigError(
            f"design.n: {n} is not a multiple of the {len(cells)} cells (orders × keeps × sizes × patterns)"
        )
    if max(cfg.sizes) > len(table) or min(cfg.sizes) < 1:
        raise BookmixError(f"sizes: need 1 ≤ size ≤ {len(table)} (the pool), got {cfg.sizes}")
    out: dict[str, Recipe] = {}
    for rep in range(n // len(cells)):
        # One book set per replicate, shared by every cell (nested by size), so cells differ only in their factors.
        base = table["id"][sample_distinct(rng, len(table), max(cfg.sizes))]
        for order, keep, size, pattern in cells:
            sp = {**t.sparsity.model_dump(), "keep": keep, "pattern": pattern}
            meta = {"replicate": rep, "order": order, "keep": keep, "size": size, "pattern": pattern}
            r = _recipe(cfg, base[:size].tolist(), meta, order=order, sparsity=sp)
            out.setdefault(r.id, r)
    return list(out.values())


def _latin_hypercube(
    cfg: LatinHypercubeDesign, table: BookTable, rng: np.random.Generator, catalog: BookTable
) -> list[Recipe]:
    n = _need_n(cfg)
    orders = cfg.orders or [cfg.recipe.order]
    (klo, khi), (slo, shi) = cfg.keep_range, cfg.size_range
    if shi > len(table):
        raise BookmixError(f"size_range: {shi} is more than the {len(table)} books in the pool")

    def strata() -> np.ndarray:  # one value in each of n equal strata of [0, 1), in random order
        return (rng.permutation(n) + rng.random(n)) / n

    u_order, u_keep, u_size = strata(), strata(), strata()
    ids = table["id"]

    def draw(i: int) -> Recipe | None:
        j = i % n
        order = orders[int(u_order[j] * len(orders))]
        keep = round(float(klo + u_keep[j] * (khi - klo)), 4)
        size = slo + int(u_size[j] * (shi - slo + 1))
        sp = {**cfg.recipe.sparsity.model_dump(), "keep": keep}
        books = ids[sample_distinct(rng, len(table), size)].tolist()
        return _recipe(cfg, books, {"order": order, "keep": keep, "size": size}, order=order, sparsity=sp)

    return _collect(n, draw, "latin hypercube points")


def _list(cfg: ListDesign, table: BookTable, rng: np.random.Generator, catalog: BookTable) -> list[Recipe]:
    recipes = [Recipe.from_dict(d, where=f"design.recipes[{i}]") for i, d in enumerate(cfg.recipes or [])]
    if cfg.path:
        recipes += load_recipes(cfg.path)
    if not recipes:
        raise ConfigError("design.recipes: the list design needs recipes or a path")
    out: dict[str, Recipe] = {}
    for r in recipes:
        catalog.rows(r.books, field=f"recipe {r.id}")
        out.setdefault(r.id, r)
    return list(out.values())[: cfg.n]


def _mutate(cfg: MutateDesign, table: BookTable, rng: np.random.Generator, catalog: BookTable) -> list[Recipe]:
    parents = [Recipe.from_dict(d, where=f"design.parents[{i}]") for i, d in enumerate(cfg.parents or [])]
    if cfg.parents_path:
        parents += load_recipes(cfg.parents_path)
    if not parents:
        raise ConfigError("design.parents: the mutate design needs parents or a parents_path")
    for p in parents:
        catalog.rows(p.books, field=f"parent {p.id}")
    n = cfg.n or len(parents)
    ids = table["id"]
    seen = {p.id for p in parents}

    def draw(i: int) -> Recipe | None:
        parent = parents[i % len(parents)]
        d = parent.model_dump(mode="python")
        d.pop("meta")
        done = []
        for _ in range(int(rng.integers(1, cfg.mutations + 1))):
            op = cfg.ops[int(rng.integers(len(cfg.ops)))]
            if _edit(d, op, cfg, rng, ids):
                done.append(op)
        if not done:
            return None
        d["meta"] = {"design": "mutate", "parent": parent.id, "ops": done}
        try:
            child = Recipe.from_dict(d)
        except BookmixError:  # e.g. an edit broke max_repeats: draw another child
            return None
        return None if child.id in seen else child

    return _collect(n, draw, "children of the parents")


def _edit(d: dict[str, Any], op: str, cfg: MutateDesign, rng: np.random.Generator, pool_ids: np.ndarray) -> bool:
    """Apply one edit to a recipe dict in place; False when it does not apply (e.g. drop from a one-book set)."""
    phases = d.get("phases")
    target = phases[int(rng.integers(len(phases)))] if phases else d
    books: list[str] = list(target["books"])
    if op in ("swap", "add"):
        have = set(books)
        fresh = [b for b in pool_ids[rng.integers(0, len(pool_ids), size=16)].tolist() if b not in have]
        if not fresh:
            return False
        if op == "swap":
            books[int(rng.integers(len(books)))] = fresh[0]
        else:
            books.append(fresh[0])
    elif op == "drop":
        if len(books) < 2:
            return False
        books.pop(int(rng.integers(len(books))))
    elif op == "order":
        if d["grain"] == "books":
            valid = [o for o in ORDERS if o != "interleave"]
        else:
            valid = [o for o in ORDERS if o not in SEQUENCE_ORDERS]
        allowed = [o for o in (cfg.orders or ORDERS) if o in valid and o != target.get("order")]
        if not allowed:
            return False
        target["order"] = allowed[int(rng.integers(len(allowed)))]
        return True
    elif op == "sparsity":
        sp = dict(d["sparsity"])
        f = np.log(cfg.keep_factor)
        sp["keep"] = round(float(np.clip(sp["keep"] * np.exp(rng.uniform(-f, f)), 0.01, 1.0)), 3)
        if sp["keep"] == d["sparsity"]["keep"]:
            return False
        d["sparsity"] = sp
        return True
    target["books"] = books
    return True


_RUNNERS: dict[str, Callable[[Any, BookTable, np.random.Generator, BookTable], list[Recipe]]] = {
    "random": _random,
    "stratified": _stratified,
    "dirichlet": _dirichlet,
    "datamodels": _datamodels,
    "factorial": _factorial,
    "latin_hypercube": _latin_hypercube,
    "list": _list,
    "mutate": _mutate,
}
