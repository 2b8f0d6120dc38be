"""`generate`: build a storyworld in memory (pure), then write it atomically, manifest last.

Layout of OUT:
    books/<kind>_<nnn>.txt          the books, plain UTF-8 text
    metadata.csv                    the library ingest's sidecar (file relative to it: books/<name>.txt)
    holdout.txt                     held-out story books, one file name a line (for ingest --holdout-books)
    items/<task>.jsonl              eval items with ground truth (fact_recall, two_hop, scene_link, entity_recall):
                                    multiple choice, {"context", "choices", "answer" (index), "group", "helps", "hurts"}
    items/<task>_pairs.jsonl        the same facts as minimal pairs {"good", "bad", "group", ...} (fact_recall, two_hop)
    chat.jsonl                      question/answer pairs about the world for the dialogue layer
    manifest.json                   settings, world, books, and which books help or hurt each item group

Re-running: a folder holding a complete storyworld of the same settings is left alone (the manifest is returned);
a half-written one (killed mid-way: the marker file is there, the manifest is not) is finished; any other non-empty
folder is an error and nothing in it is touched.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from bookmix.errors import BookmixError
from bookmix.storyworld import books as B
from bookmix.storyworld.items import ITEM_FILES, Item, chat_pairs, fact_items, minimal_pairs, story_items, two_hop_items
from bookmix.storyworld.manifest import FORMAT, MANIFEST, BookEntry, GroupEntry, Manifest
from bookmix.storyworld.settings import GeneratorSettings
from bookmix.storyworld.world import make_world
from bookmix.utils.io import atomic_write_json, atomic_write_text

MARKER = ".storyworld-partial.json"
METADATA_COLUMNS = ("file", "title", "author", "year", "lang", "subjects", "kind", "genre", "difficulty")


def generate(
    out_dir: str | Path,
    books: int = 20,
    seed: int = 0,
    tokens_per_book: int = 8000,
    mix: dict[str, float] | None = None,
    **knobs: Any,
) -> Manifest:
    """Write a storyworld of ``books`` books into ``out_dir`` and return its manifest. Same arguments, same bytes.

    ``knobs`` are the other :class:`GeneratorSettings` fields (people_per_fact_book, places, choices, ...).
    """
    fields = dict(books=books, seed=seed, tokens_per_book=tokens_per_book, **knobs)
    if mix is not None:
        fields["mix"] = dict(mix)
    try:
        settings = GeneratorSettings(**fields)
    except TypeError as exc:  # an unknown keyword
        raise BookmixError(f"storyworld: {exc}") from exc
    out = Path(out_dir)
    existing = _check_out(out, settings)
    if existing is not None:
        return existing
    files, manifest = build(settings)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / MARKER, settings.to_dict())
    for tmp in out.rglob(".*.tmp"):  # torn temporaries of a killed run; finished files are whole (atomic renames)
        tmp.unlink()
    for rel, content in files.items():
        if not (out / rel).exists():  # written by an earlier, killed run of the same settings: identical bytes
            atomic_write_text(out / rel, content)
    atomic_write_json(out / MANIFEST, manifest.to_dict())
    (out / MARKER).unlink()
    manifest.root = out
    return manifest


def _check_out(out: Path, settings: GeneratorSettings) -> Manifest | None:
    """None to go ahead; the existing manifest if this exact storyworld is already there; else a BookmixError."""
    if out.exists() and not out.is_dir():
        raise BookmixError(f"{out}: --out must be a folder, and this is a file")
    if not out.exists() or not any(out.iterdir()):
        return None
    if (out / MANIFEST).exists() and not (out / MARKER).exists():
        manifest = Manifest.load(out)
        if manifest.settings == settings.to_dict():
            return manifest
        raise BookmixError(
            f"{out}: holds a storyworld made with other settings; choose an empty folder (nothing was overwritten)"
        )
    if (out / MARKER).exists():
        try:
            previous = json.loads((out / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BookmixError(f"{out / MARKER}: unreadable ({exc}); remove the folder and generate again") from exc
        if previous == settings.to_dict():
            return None  # finish the killed run
        raise BookmixError(
            f"{out}: holds an unfinished storyworld with other settings; rerun with those, or choose an empty folder"
        )
    raise BookmixError(
        f"{out}: folder is not empty; storyworld writes only into a new or empty folder (nothing was overwritten)"
    )


def build(settings: GeneratorSettings) -> tuple[dict[str, str], Manifest]:
    """Everything the folder will hold, as {relative path: text}, and the manifest. Pure: no IO."""
    counts = settings.counts()
    world = make_world(settings, counts["fact"], counts["rule"])
    plans = B.plan_books(settings, world)

    texts: dict[str, str] = {}
    chapters: dict[str, list[B.Chapter]] = {}
    writers = {"fact": B.write_fact, "rule": B.write_rule, "noise": B.write_noise, "misleading": B.write_misleading}
    for plan in plans:
        if plan.kind == "story":
            texts[plan.file], chapters[plan.file] = B.write_story(world, plan, settings)
        else:
            texts[plan.file] = writers[plan.kind](world, plan, settings)

    by_task: dict[str, list[Item]] = {
        "fact_recall": fact_items(settings, world, plans),
        "two_hop": two_hop_items(settings, world, plans),
    }
    story = story_items(settings, world, plans, chapters)
    by_task["scene_link"] = [it for it in story if it.task == "scene_link"]
    by_task["entity_recall"] = [it for it in story if it.task == "entity_recall"]
    chat = chat_pairs(settings, world, plans)

    files: dict[str, str] = {f"books/{p.file}": texts[p.file] for p in plans}
    files["metadata.csv"] = _metadata_csv(plans)
    files["holdout.txt"] = "".join(f"{p.file}\n" for p in plans if p.holdout)
    item_files = {task: f"items/{task}.jsonl" for task in ITEM_FILES}
    for task in ITEM_FILES:
        files[item_files[task]] = _jsonl(it.to_dict() for it in by_task[task])
    pair_files = {task: f"items/{task}_pairs.jsonl" for task in ("fact_recall", "two_hop")}
    for task, rel in pair_files.items():
        files[rel] = _jsonl(minimal_pairs(by_task[task]))
    files["chat.jsonl"] = _jsonl(chat)

    manifest = Manifest(
        format=FORMAT,
        settings=settings.to_dict(),
        counts=counts,
        world=world.to_dict(),
        books=[_entry(p, texts[p.file]) for p in plans],
        groups=_groups(by_task),
        files={
            "books": "books",
            "metadata": "metadata.csv",
            "holdout": "holdout.txt",
            "chat": "chat.jsonl",
            "items": item_files,
            "pairs": pair_files,
        },
    )
    return files, manifest


def _entry(plan: B.BookPlan, text: str) -> BookEntry:
    data = text.encode("utf-8")
    return BookEntry(
        file=f"books/{plan.file}",
        kind=plan.kind,
        genre=B.GENRES[plan.kind],
        title=plan.title,
        author=plan.author,
        year=plan.year,
        difficulty=plan.difficulty,
        holdout=plan.holdout,
        chars=len(text),
        sha256=hashlib.sha256(data).hexdigest(),
        people=list(plan.people),
        places=list(plan.places),
        creatures=list(plan.creatures),
        target=plan.target,
        contradictions=[
            {"person": c.person, "relation": c.relation, "true": c.true, "false": c.false} for c in plan.contradictions
        ],
    )


def _groups(by_task: dict[str, list[Item]]) -> dict[str, GroupEntry]:
    """Per group: the union of its items' helping and hurting books (items carry the exact sets)."""
    groups: dict[str, GroupEntry] = {}
    for task, items in by_task.items():
        for it in items:
            g = groups.setdefault(it.group, GroupEntry(task=task, items=0, helps=[], hurts=[]))
            g.items += 1
            g.helps.extend(b for b in it.helps if b not in g.helps)
            g.hurts.extend(b for b in it.hurts if b not in g.hurts)
    for g in groups.values():
        g.helps.sort()
        g.hurts.sort()
    return groups


def _metadata_csv(plans: list[B.BookPlan]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(METADATA_COLUMNS)
    for p in plans:
        genre = B.GENRES[p.kind]
        w.writerow(
            [f"books/{p.file}", p.title, p.author, p.year, "en", f"storyworld|{genre}", p.kind, genre, p.difficulty]
        )
    return buf.getvalue()


def _jsonl(rows: Any) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
