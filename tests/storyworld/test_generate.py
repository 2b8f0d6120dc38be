"""Determinism, layout, bad input, and finishing a killed run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bookmix.errors import BookmixError
from bookmix.storyworld import GeneratorSettings, Manifest, build, generate
from bookmix.storyworld.generate import MARKER


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = _tree(generate(tmp_path / "a", books=10, seed=3, tokens_per_book=1500).root)
    b = _tree(generate(tmp_path / "b", books=10, seed=3, tokens_per_book=1500).root)
    c = _tree(generate(tmp_path / "c", books=10, seed=4, tokens_per_book=1500).root)
    assert a == b
    assert set(a) == set(c)
    assert a["books/fact_000.txt"] != c["books/fact_000.txt"]
    assert a["manifest.json"] != c["manifest.json"]


def test_layout_and_metadata(world):
    root = world.root
    assert sorted(p.name for p in (root / "books").iterdir()) == sorted(world.book_names())
    assert world.counts == {"fact": 8, "rule": 3, "story": 5, "noise": 2, "misleading": 2}
    with open(root / "metadata.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == [b.file for b in world.books]
    assert all((root / r["file"]).is_file() for r in rows)
    assert {r["kind"] for r in rows} == {"fact", "rule", "story", "noise", "misleading"}
    assert all(
        r["lang"] == "en" and r["subjects"].startswith("storyworld|") and 1800 <= int(r["year"]) < 2020 for r in rows
    )
    assert len({r["title"] for r in rows}) == len(rows)
    # Default books stay small (the CPU demo trains many trials on them) and every book is near the target size.
    for b in world.books:
        assert 0.9 * 32000 <= b.chars <= 1.2 * 32000, (b.file, b.chars)
    assert {b.difficulty for b in world.books} == {1, 2, 3}
    assert Manifest.load(root) == world


def test_holdout_file_lists_some_story_books(world):
    held = (world.root / "holdout.txt").read_text().split()
    assert held == world.book_names(holdout=True)
    assert 1 <= len(held) < world.counts["story"]
    assert all(world.book(n).kind == "story" for n in held)


def test_chat_pairs_restate_facts(world):
    lines = (world.root / "chat.jsonl").read_text(encoding="utf-8").splitlines()
    assert 0 < len(lines) <= 200
    people = {p["name"]: p for p in world.world["people"]}
    for line in lines:
        row = json.loads(line)
        user, assistant = row["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        name = next(n for n in people if n in user["content"])
        if user["content"].startswith("Where does"):
            assert assistant["content"] == f"{name} lives in {people[name]['home']}."
        assert all(world.book(s).kind in ("fact", "rule") for s in row["sources"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"books": 0}, "storyworld.books: must be ≥ 1, got 0"),
        ({"tokens_per_book": 10}, "storyworld.tokens_per_book"),
        ({"mix": {"fact": 0.5, "story": 0.4}}, "storyworld.mix: proportions must sum to 1, got 0.9"),
        ({"mix": {"fact": 0.5, "poetry": 0.5}}, "unknown book kind(s) ['poetry']"),
        ({"mix": {"fact": 1.5, "story": -0.5}}, "storyworld.mix.story: must be a non-negative number"),
        ({"mix": {"story": 0.5, "misleading": 0.5}}, "misleading books contradict fact books"),
        ({"seed": -1}, "storyworld.seed"),
        ({"choices": 9}, "storyworld.choices"),
        ({"colour": 3}, "colour"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, kwargs, message):
    out = tmp_path / "out"
    with pytest.raises(BookmixError) as err:
        generate(out, **kwargs)
    assert message in str(err.value)
    assert not out.exists()


def test_non_empty_folder_is_refused_and_left_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(BookmixError, match="not empty"):
        generate(out, books=3, tokens_per_book=500)
    assert _tree(out) == {"notes.txt": b"mine"}


def test_other_settings_in_a_finished_folder_are_refused(tmp_path):
    out = tmp_path / "out"
    generate(out, books=4, seed=1, tokens_per_book=500)
    before = _tree(out)
    again = generate(out, books=4, seed=1, tokens_per_book=500)  # same settings: nothing to do, same manifest
    assert again.to_dict() == Manifest.load(out).to_dict()
    with pytest.raises(BookmixError, match="other settings"):
        generate(out, books=4, seed=2, tokens_per_book=500)
    assert _tree(out) == before


def test_a_killed_run_is_finished_by_running_it_again(tmp_path):
    """State a kill leaves: the marker, some finished files, a torn temporary, no manifest."""
    settings = GeneratorSettings(books=6, seed=5, tokens_per_book=800)
    files, _ = build(settings)
    out = tmp_path / "out"
    (out / "books").mkdir(parents=True)
    (out / MARKER).write_text(json.dumps(settings.to_dict()))
    done = sorted(files)[:3]
    for rel in done:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(files[rel])
    (out / "books" / ".fact_001.txt.x1.tmp").write_text("half a bo")
    with pytest.raises(BookmixError, match="unfinished storyworld with other settings"):
        generate(out, books=6, seed=6, tokens_per_book=800)
    manifest = generate(out, books=6, seed=5, tokens_per_book=800)
    fresh = generate(tmp_path / "fresh", books=6, seed=5, tokens_per_book=800)
    assert _tree(out) == _tree(fresh.root)
    assert not (out / MARKER).exists()
    assert manifest.to_dict() == fresh.to_dict()


def test_counts_follow_the_mix_by_largest_remainder():
    s = GeneratorSettings(books=7, mix={"fact": 0.5, "story": 0.3, "noise": 0.2})
    assert s.counts() == {"fact": 4, "rule": 0, "story": 2, "noise": 1, "misleading": 0}
    assert sum(GeneratorSettings(books=13).counts().values()) == 13


def test_difficulty_widens_sentences_vocabulary_and_filler(tmp_path):
    import re

    m = generate(tmp_path / "sw", books=9, seed=1, tokens_per_book=3000, mix={"fact": 1.0})
    assert sorted(b.difficulty for b in m.books) == [1, 1, 1, 2, 2, 2, 3, 3, 3]

    def shape(level: int) -> tuple[float, int]:
        text = " ".join(m.book_path(b.file).read_text() for b in m.books if b.difficulty == level)
        sentences = [s.split() for s in re.split(r"[.!?]\s+", text) if s.strip()]
        return float(np.mean([len(s) for s in sentences])), len(set(re.findall(r"\w+", text.lower())))

    (len1, vocab1), (len2, vocab2), (len3, vocab3) = shape(1), shape(2), shape(3)
    assert len1 < len2 < len3
    assert vocab1 < vocab2 < vocab3
    easy = generate(tmp_path / "easy", books=4, seed=1, tokens_per_book=500, difficulties=[1])
    assert {b.difficulty for b in easy.books} == {1}
    with pytest.raises(BookmixError, match="storyworld.difficulties"):
        generate(tmp_path / "bad", books=4, difficulties=[4])
