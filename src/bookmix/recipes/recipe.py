"""The Recipe: one candidate training set — which books, in what order, how sparsely read, how many epochs.

A recipe is plain data (YAML or JSON). Its ``id`` is a short hash of its *canonical* content: defaults filled in, keys
sorted, and the book list sorted wherever its listing order cannot change the stream (so two spellings of the same
training set get the same id). ``meta`` (who made it, design parameters) is carried along but is not content.

How the fields combine into a stream (see :mod:`bookmix.recipes.plan`):

* ``order`` sequences the books of each phase; ``phases`` (2–3) run one after the other, each with its own books
  and order (a phase without ``books`` reads the recipe's books).
* ``sparsity`` keeps a fraction of each book, in chunks of ``chunk_tokens``, chosen by ``pattern``.
* ``grain`` says how the kept text is mixed:
    - ``windows``: every (T+1)-token window lies inside one book; the windows of a phase are shuffled.
    - ``blocks``: runs of ``block_windows`` consecutive windows of one book are shuffled within a phase.
    - ``books``: books are read whole and in order, each followed by the end-of-book token; windows run straight
      through the concatenation, so a window may cross a book boundary, always with the end-of-book token between.
  Sorting orders (length, difficulty, year, cluster_blocks) are only meaningful when the stream keeps the order,
  i.e. with grain ``books``; with a shuffling grain they are rejected rather than silently ignored.
  ``interleave`` takes a block (grain ``blocks``) or a window (grain ``windows``) from each book in turn.
* ``epochs`` repeat the whole stream; ``reshuffle`` re-draws the random parts (order, shuffles) every epoch, while
  the kept chunks of each book stay the same (the *set* is fixed, only its order changes). No book may be read more
  than ``max_repeats`` times over all phases and epochs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from bookmix.errors import BookmixError, ConfigError, field_error
from bookmix.recipes.shelf import ProbeShelf

if TYPE_CHECKING:
    from bookmix.recipes.stream import RecipeStream

Order = Literal[
    "as_listed",
    "random",
    "length_asc",
    "length_desc",
    "difficulty_asc",
    "difficulty_desc",
    "year_asc",
    "year_desc",
    "cluster_blocks",
    "interleave",
]
ORDERS: tuple[str, ...] = Order.__args__  # type: ignore[attr-defined]
# Orders whose effect survives only if the stream keeps the book sequence (grain 'books').
SEQUENCE_ORDERS = frozenset(
    {"length_asc", "length_desc", "difficulty_asc", "difficulty_desc", "year_asc", "year_desc", "cluster_blocks"}
)
Grain = Literal["windows", "blocks", "books"]
Pattern = Literal["prefix", "stride", "random", "contiguous_random"]

ID_CHARS = 12  # 48 bits: collisions are negligible for the millions of recipes a campaign could ever make


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sparsity(_Strict):
    """How much of each book is read, and which parts."""

    keep: float = 1.0
    """Fraction of each book kept, in (0, 1]. 1 reads the whole book."""
    chunk_tokens: int = 1024
    """Unit of thinning. 1024 tokens is a few paragraphs: big enough to keep local coherence, small enough that a
    250K-token book has ~250 chunks to choose from. With grains 'windows'/'blocks' it is rounded to whole windows."""
    pattern: Pattern = "stride"
    """prefix: the first chunks; stride: evenly spaced chunks (every n-th); random: random chunks in book order;
    contiguous_random: one random span. 'stride' is the default because it covers the whole book evenly."""

    @field_validator("keep")
    @classmethod
    def _keep(cls, v: float) -> float:
        if not (0.0 < v <= 1.0):
            raise ValueError(f"must be in (0, 1], got {v:g}")
        return v

    @field_validator("chunk_tokens")
    @classmethod
    def _chunk(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be ≥ 1, got {v}")
        return v


class Phase(_Strict):
    """One stage of a curriculum: its own books and/or order."""

    books: list[str] | None = None
    """Book ids of this phase; None reads the recipe's books."""
    order: Order | None = None
    """None uses the recipe's order."""


class Recipe(_Strict):
    """One candidate training set. Build with :meth:`from_dict` or :meth:`load`; see the module docstring."""

    books: list[str] = Field(default_factory=list)
    order: Order = "random"
    phases: list[Phase] | None = None
    sparsity: Sparsity = Field(default_factory=Sparsity)
    grain: Grain = "windows"
    """'windows' (shuffled windows) is the default: the standard way small LMs are trained."""
    block_windows: int = 16
    """Windows per block for grain 'blocks' and for 'interleave': 16 windows of 512 tokens ≈ a chapter section."""
    epochs: int = 1
    reshuffle: bool = True
    max_repeats: int = 4
    """Cap on how often any book is read (phases × epochs). 4 follows the finding that up to ~4 repeats of the same
    data are nearly as good as fresh data, and beyond that returns fall off (Muennighoff et al., 2023)."""
    seed: int = 0
    shelf: ProbeShelf | None = None
    """The probe shelf read beside the books at a fixed token share (``bookmix.recipes.shelf``); None: books only.
    A campaign sets the same shelf on every recipe (``search.probe_shelf``)."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Provenance (design name, parameters); not part of the id."""
    _id: str | None = PrivateAttr(default=None)

    # -- validation ------------------------------------------------------------------------------------------------
    @field_validator("block_windows", "epochs", "max_repeats")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be ≥ 1, got {v}")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"must be ≥ 0, got {v}")
        return v

    @model_validator(mode="after")
    def _canonical(self) -> Recipe:
        if self.phases is not None:
            if not 2 <= len(self.phases) <= 3:
                raise ValueError(f"phases: 2 or 3 phases, got {len(self.phases)}")
            filled = []
            for i, ph in enumerate(self.phases):
                books = list(ph.books) if ph.books is not None else list(self.books)
                if not books:
                    raise ValueError(f"phases[{i}].books: a phase needs at least one book")
                order = ph.order or self.order
                _check_books(books, f"phases[{i}].books")
                _check_order(order, self.grain, f"phases[{i}].order")
                filled.append(Phase(books=_canonical_books(books, order, self.grain), order=order))
            union = sorted({b for ph in filled for b in ph.books or ()})
            if self.books and set(self.books) != set(union):
                # Top-level books with phases that list their own: one of the two would be silently ignored.
                raise ValueError("books: with phases that list their own books, omit books (it is their union)")
            object.__setattr__(self, "phases", filled)
            object.__setattr__(self, "books", union)
        else:
            if not self.books:
                raise ValueError("books: a recipe needs at least one book")
            _check_books(self.books, "books")
            _check_order(self.order, self.grain, "order")
            object.__setattr__(self, "books", _canonical_books(self.books, self.order, self.grain))
        reads = max(self.reads_per_epoch().values())
        if reads * self.epochs > self.max_repeats:
            raise ValueError(
                f"epochs: {self.epochs} epochs read a book {reads * self.epochs} times, above max_repeats {self.max_repeats}"
            )
        return self

    # -- identity ----------------------------------------------------------------------------------------------------
    def content(self) -> dict[str, Any]:
        """The canonical content: every field but ``meta``, defaults filled in."""
        d = self.model_dump(mode="json", exclude={"meta"})
        if d.get("shelf") is None:
            d.pop("shelf", None)  # recipes without a shelf keep the ids they had before shelves existed
        if self.phases is not None:
            d["books"] = []  # the union is derived from the phases
            d["order"] = "as_listed"
        return d

    @property
    def id(self) -> str:
        if self._id is None:  # computed once: the model is frozen, so the content cannot change afterwards
            blob = json.dumps(self.content(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
            self._id = hashlib.sha256(blob.encode()).hexdigest()[:ID_CHARS]
        return self._id

    def to_dict(self) -> dict[str, Any]:
        """Canonical content plus ``meta`` and ``id``; :meth:`from_dict` of it gives the same recipe and id."""
        d = self.content()
        if self.phases is not None:
            del d["books"], d["order"]
        if self.meta:
            d["meta"] = self.meta
        d["id"] = self.id
        return d

    def phase_list(self) -> list[tuple[list[str], str]]:
        """(books, order) of every phase; a recipe without phases is one phase."""
        if self.phases is None:
            return [(list(self.books), self.order)]
        return [(list(ph.books or ()), ph.order or self.order) for ph in self.phases]

    def reads_per_epoch(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for books, _ in self.phase_list():
            for b in books:
                counts[b] = counts.get(b, 0) + 1
        return counts

    # -- construction ------------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "") -> Recipe:
        """Validate a dict; a mismatching ``id`` key is an error (the content was edited after the id was made)."""
        if not isinstance(d, dict):
            raise ConfigError(f"{where or 'recipe'}: must be a mapping, got {type(d).__name__}")
        d = dict(d)
        claimed = d.pop("id", None)
        try:
            r = cls.model_validate(d)
        except ValidationError as exc:
            raise ConfigError(f"{where}: {field_error(exc)}" if where else field_error(exc)) from None
        if claimed is not None and claimed != r.id:
            raise ConfigError(f"{where + ': ' if where else ''}id: {claimed!r} does not match the content (id {r.id})")
        return r

    @classmethod
    def load(cls, path: str | os.PathLike) -> Recipe:
        """A recipe from a YAML or JSON file (a .jsonl must hold exactly one recipe; see :func:`load_recipes`)."""
        recipes = load_recipes(path)
        if len(recipes) != 1:
            raise BookmixError(f"{path}: holds {len(recipes)} recipes; pick one (recipe show --index / an id)")
        return recipes[0]

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Recipe:
        """Copies forget the cached id (``update`` skips validation: prefer :meth:`with_changes`)."""
        copy = super().model_copy(update=update, deep=deep)
        copy._id = None
        return copy

    def with_changes(self, **changes: Any) -> Recipe:
        """A validated copy with some fields replaced (designs use this)."""
        d = self.model_dump(mode="python")
        d.update(changes)
        return Recipe.from_dict(d)

    def stream(self, lib: Any, seq_len: int) -> RecipeStream:
        """The recipe's token stream over a library: a WindowSource (``bookmix.recipes.stream``)."""
        from bookmix.recipes.stream import RecipeStream

        return RecipeStream.build(self, lib, seq_len)


def load_recipes(path: str | os.PathLike) -> list[Recipe]:
    """Every recipe of a .jsonl (one per line), or the single recipe of a YAML / JSON file."""
    from bookmix.utils.io import read_yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BookmixError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if path.suffix == ".jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BookmixError(f"{path}:{n}: not JSON ({exc.msg})") from None
            out.append(Recipe.from_dict(d, where=f"{path}:{n}"))
        return out
    if path.suffix != ".json":
        return [Recipe.from_dict(read_yaml(path), where=str(path))]
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BookmixError(f"{path}: not valid JSON ({exc})") from None
    return [Recipe.from_dict(d, where=str(path))]


def select_recipe(path: str | os.PathLike, index: int | None = None, recipe_id: str | None = None) -> Recipe:
    """One recipe of a file: by 0-based line ``index`` or by ``id`` (a unique prefix is enough)."""
    recipes = load_recipes(path)
    if recipe_id is not None:
        hits = [r for r in recipes if r.id.startswith(recipe_id)]
        if len(hits) != 1:
            raise BookmixError(f"{path}: {len(hits)} recipes have an id starting with {recipe_id!r}")
        return hits[0]
    if index is not None:
        if not 0 <= index < len(recipes):
            raise BookmixError(f"--index {index}: {path} holds {len(recipes)} recipes (0..{len(recipes) - 1})")
        return recipes[index]
    if len(recipes) != 1:
        raise BookmixError(f"{path}: holds {len(recipes)} recipes; pick one with --index or --id")
    return recipes[0]


# -- helpers ---------------------------------------------------------------------------------------------------------
def _check_books(books: list[str], field: str) -> None:
    seen: set[str] = set()
    for b in books:
        if b in seen:
            raise ValueError(f"{field}: book {b!r} is listed twice")
        seen.add(b)


def _check_order(order: str, grain: str, field: str) -> None:
    if order in SEQUENCE_ORDERS and grain != "books":
        raise ValueError(
            f"{field}: {order!r} needs grain 'books' (grain {grain!r} shuffles within a phase and would erase the order)"
        )
    if order == "interleave" and grain == "books":
        raise ValueError(f"{field}: 'interleave' cuts books into blocks; use grain 'blocks' or 'windows'")


def _canonical_books(books: list[str], order: str, grain: str) -> list[str]:
    """Sorted unless the listing order changes the stream (as_listed read in sequence, or interleave)."""
    if order == "interleave" or (order == "as_listed" and grain == "books"):
        return list(books)
    return sorted(books)


def save_recipes(path: str | os.PathLike, recipes: list[Recipe]) -> None:
    """Write recipes atomically: one JSON object per line for .jsonl, else the single recipe as YAML/JSON."""
    import yaml

    from bookmix.utils.io import atomic_write_text

    path = Path(path)
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True) + "\n" for r in recipes)
    elif len(recipes) != 1:
        raise BookmixError(f"{path}: {len(recipes)} recipes need a .jsonl file (one per line)")
    elif path.suffix == ".json":
        text = json.dumps(recipes[0].to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    else:
        text = yaml.safe_dump(recipes[0].to_dict(), sort_keys=True, allow_unicode=True)
    atomic_write_text(path, text)
