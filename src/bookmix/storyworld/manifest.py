"""The ground-truth manifest: the settings, the world, every book's kind and role, and which books help or hurt
each item group. Written last, so its presence means the folder is complete.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bookmix.errors import BookmixError
from bookmix.storyworld.items import Item

FORMAT = "bookmix-storyworld/1"
MANIFEST = "manifest.json"


@dataclass
class BookEntry:
    file: str
    """Path relative to the storyworld folder (books/<kind>_<nnn>.txt)."""
    kind: str
    genre: str
    title: str
    author: str
    year: int
    difficulty: int
    holdout: bool
    chars: int
    sha256: str
    """Of the file's bytes as written; the library's book id is the sha256 of the *cleaned* text, so map by file."""
    people: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    creatures: list[str] = field(default_factory=list)
    target: str | None = None
    contradictions: list[dict[str, str]] = field(default_factory=list)


@dataclass
class GroupEntry:
    task: str
    """fact_recall | two_hop | scene_link | entity_recall: also the items file's name (items/<task>.jsonl)."""
    items: int
    helps: list[str]
    """Book file names (as in metadata.csv, e.g. fact_000.txt) whose presence should raise the group's score."""
    hurts: list[str]


@dataclass
class Manifest:
    format: str
    settings: dict[str, Any]
    counts: dict[str, int]
    world: dict[str, Any]
    books: list[BookEntry]
    groups: dict[str, GroupEntry]
    files: dict[str, Any]
    root: Path | None = field(default=None, compare=False)

    # ---- lookups -----------------------------------------------------------------------------------------------
    def book(self, name: str) -> BookEntry:
        """A book by file name (fact_000.txt) or path in the folder (books/fact_000.txt)."""
        for b in self.books:
            if b.file == name or b.file.rsplit("/", 1)[-1] == name:
                return b
        raise BookmixError(f"{self._where()}: no book named {name!r}")

    def book_names(self, kind: str | None = None, holdout: bool | None = None) -> list[str]:
        """File names (as metadata.csv and holdout.txt name them) of the books of a kind and split."""
        return [
            Path(b.file).name
            for b in self.books
            if (kind is None or b.kind == kind) and (holdout is None or b.holdout == holdout)
        ]

    def book_path(self, name: str) -> Path:
        if self.root is None:
            raise BookmixError("manifest: not loaded from a folder, so book paths are unknown")
        return self.root / self.book(name).file

    def ingest_kwargs(self) -> dict[str, Any]:
        """Arguments for ``bookmix.library.build.ingest`` (sources, metadata, holdout_books) that read this folder:
        the books folder, the metadata sidecar, and the held-out stories."""
        if self.root is None:
            raise BookmixError("manifest: not loaded from a folder")
        return {
            "sources": [self.root / self.files["books"]],
            "metadata": [self.root / self.files["metadata"]],
            "holdout_books": self.root / self.files["holdout"] if self.book_names(holdout=True) else None,
        }

    def items(self, task: str) -> list[Item]:
        """The items of one task, read from items/<task>.jsonl."""
        if self.root is None:
            raise BookmixError("manifest: not loaded from a folder, so its items cannot be read")
        rel = self.files["items"].get(task)
        if rel is None:
            raise BookmixError(f"{self._where()}: no items for task {task!r}; known: {sorted(self.files['items'])}")
        path = self.root / rel
        try:
            return [
                Item.from_dict(json.loads(line))
                for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
        except (OSError, ValueError, TypeError) as exc:
            raise BookmixError(f"{path}: cannot read items ({exc})") from exc

    def _where(self) -> str:
        return str(self.root / MANIFEST) if self.root else "manifest"

    # ---- serialisation -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("root")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], root: Path | None = None) -> Manifest:
        if d.get("format") != FORMAT:
            raise BookmixError(
                f"{root / MANIFEST if root else 'manifest'}: format must be {FORMAT!r}, got {d.get('format')!r}"
            )
        return cls(
            format=d["format"],
            settings=d["settings"],
            counts=d["counts"],
            world=d["world"],
            books=[BookEntry(**b) for b in d["books"]],
            groups={k: GroupEntry(**g) for k, g in d["groups"].items()},
            files=d["files"],
            root=root,
        )

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        folder = Path(folder)
        path = folder / MANIFEST
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise BookmixError(f"{path}: not found; is {folder} a storyworld folder?") from exc
        except (OSError, ValueError) as exc:
            raise BookmixError(f"{path}: cannot read the manifest ({exc})") from exc
        try:
            return cls.from_dict(d, root=folder)
        except (KeyError, TypeError) as exc:
            raise BookmixError(f"{path}: malformed manifest ({exc})") from exc
