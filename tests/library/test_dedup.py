"""Near-duplicates on real books (../shared/books): made variants are found, different books by one author are not
merged, translations are kept apart; plus the mechanics (resume, canonical rule, designs leaving duplicates out)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from bookmix.library import Library, ingest
from bookmix.library.clean import clean
from support.library import dedup_quality, drop_words, make_library, ocr_noise, with_preface

pytest.importorskip("datasketch")

# Several books each of authors with many books (different books, one style), translation pairs (Dostoevsky's
# Notes from Underground and White Nights in English and Russian) and the two Iliad translations.
AUTHORS = ("Dickens, Charles", "Толстой, Лев Николаевич (1828-1910)", "Достоевский, Фёдор Михайлович (1821-1881)",
           "Twain, Mark", "Doyle, Arthur Conan", "Wells, H. G. (Herbert George)", "Dostoyevsky, Fyodor")  # fmt: skip
PER_AUTHOR = 4
VARIANTS_OF = 2  # per author: the smallest books get a preface variant, a 2%-dropped one and an OCR-noise one


def _read(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.read()


def real_set(books: Path, per_author: int = PER_AUTHOR, variants_of: int = VARIANTS_OF, iliad: bool = True):
    """(originals: list of catalog rows, variants: {file name: (original file, text)}) from the shared books."""
    with open(books / "catalog.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    originals, variants = [], {}
    preface_source = clean(_read(books / "en/11_Alice_s_Adventures_in_Wonderland.txt.gz"))[0]
    preface = " ".join(preface_source.split(" ")[:2000])
    for author in AUTHORS:
        mine = sorted((r for r in rows if r["author"] == author), key=lambda r: int(r["bytes"]))[:per_author]
        originals += mine
        for k, r in enumerate(mine[:variants_of]):
            text = clean(_read(books / r["file"]))[0]
            stem = Path(r["file"]).name.split(".")[0]
            variants[f"{stem}__preface.txt"] = (r["file"], with_preface(text, preface))
            variants[f"{stem}__drop.txt"] = (r["file"], drop_words(text, 0.02, seed=k))
            variants[f"{stem}__ocr.txt"] = (r["file"], ocr_noise(text, 0.03, seed=k))
    if iliad:
        originals += [r for r in rows if r["title"] == "The Iliad"]
    return originals, variants


@pytest.mark.books
@pytest.mark.slow
def test_made_variants_found_and_same_author_books_kept_apart(shared_books, tmp_path) -> None:
    from bookmix.library.dedup import dedup

    originals, variants = real_set(shared_books)
    vdir = tmp_path / "variants"
    vdir.mkdir()
    for name, (_, text) in variants.items():
        (vdir / name).write_text(text, encoding="utf-8")
    files = [shared_books / r["file"] for r in originals]
    ingest([*files, vdir], tmp_path / "lib", tokenizer="train:4096", sample_bytes=2 << 20, workers=2)
    lib = Library.open(tmp_path / "lib")
    assert lib.count() == len(originals) + len(variants)
    report = dedup(lib, workers=2)
    recall, precision, found, truth = dedup_quality(lib, shared_books, variants)
    assert truth == len(AUTHORS) * VARIANTS_OF * 6  # each varied original and its 3 variants: 6 pairs a group
    print(
        f"near-duplicates on real books: recall {recall:.3f}, precision {precision:.3f} ({found} pairs found, {truth} true)"
    )
    assert recall >= 0.95 and precision >= 0.99, (recall, precision, found, truth, report.clusters_list)
    # translations and the two Iliads are different texts at the token level: never merged
    by_file = {
        str(Path(b.source).relative_to(shared_books)) if "variants" not in b.source else b.source: b
        for b in lib.books()
    }
    pairs = [("en/2199_The_Iliad.txt.gz", "en/6130_The_Iliad.txt.gz"),
             ("en/600_Notes_from_the_Underground.txt.gz", "ru/ruslit_dostoevsky_zapiski_iz_podpolya.txt.gz")]  # fmt: skip
    from bookmix.library.dedup import similarity

    for a, b in pairs:
        if a in by_file and b in by_file:
            assert similarity(lib, by_file[a].id, by_file[b].id) < 0.1
            canon_a, canon_b = (by_file[x].extra.get("dup_of") or by_file[x].id for x in (a, b))
            assert canon_a != canon_b, (a, b)
    # the canonical book of each group is the fullest (most characters): the original or its preface reissue
    for members in report.clusters_list:
        chars = [lib.book(m).chars for m in members]
        assert chars[0] == max(chars)


def _texts(n: int, words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghilmnoprstu"))
    vocab = ["".join(rng.choice(letters, int(rng.integers(2, 9)))) for _ in range(3000)]
    return [" ".join(rng.choice(vocab, words)) + "." for _ in range(n)]


def test_dedup_marks_never_deletes_resumes_and_designs_skip_duplicates(tmp_path) -> None:
    from bookmix.library.dedup import dedup
    from bookmix.recipes.designs import make_design

    base = _texts(6, 4000, 0)
    texts = {f"b{i}": t for i, t in enumerate(base)}
    texts["b0_drop"] = drop_words(base[0], 0.02, seed=1)
    texts["b1_ocr"] = ocr_noise(base[1], 0.03, seed=2)
    lib = make_library(tmp_path, texts, vocab_size=600)
    r1 = dedup(lib)
    assert r1.signed == 8 and r1.duplicates == 2 and r1.clusters == 2
    marked = {b.title: b.extra["dup_of"] for b in lib.books() if b.extra.get("dup_of")}
    ids = {b.title: b.id for b in lib.books()}
    chars = {b.title: b.chars for b in lib.books()}
    # canonical = the member with more characters (m→rn swaps make the OCR variant the longer one here)
    assert marked["b0_drop"] == ids["b0"]
    ocr_pair = ("b1_ocr", "b1") if chars["b1"] >= chars["b1_ocr"] else ("b1", "b1_ocr")
    assert marked == {"b0_drop": ids["b0"], ocr_pair[0]: ids[ocr_pair[1]]}
    assert 0.5 <= min(b.extra["dup_sim"] for b in lib.books(where="dup_of IS NOT NULL")) <= 1.0
    assert lib.count() == 8  # marked, not deleted
    r2 = dedup(lib)  # everything signed already: nothing signed again, same marks
    assert r2.signed == 0 and r2.clusters_list == r1.clusters_list
    pool = {b for r in make_design("random", lib, n=1, seed=0, books_per_set=6) for b in r.books}
    dup_ids = {b.id for b in lib.books(where="dup_of IS NOT NULL")}
    assert pool and not pool & dup_ids and len(pool) == 6
    with_dups = {
        b for r in make_design("random", lib, n=1, seed=0, books_per_set=8, include_duplicates=True) for b in r.books
    }
    assert dup_ids <= with_dups


def test_cli_dedup_score_select_json_and_errors(tmp_path, capsys) -> None:
    import json

    from bookmix.cli import main

    base = _texts(4, 3000, 3)
    lib = make_library(
        tmp_path, {"a": base[0], "a2": drop_words(base[0], 0.02, 5), "b": base[1], "c": base[2]}, vocab_size=500
    )
    path = str(lib.path)
    assert main(["library", "dedup", "--library", path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["duplicates"] == 1 and out["clusters"] == 1 and len(out["clusters_list"][0]) == 2
    assert main(["library", "score", "--library", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scored"] == 4
    assert main(["library", "select", "--library", path, "--top", "9", "--by", "q_read", "--json"]) == 0
    sel = json.loads(capsys.readouterr().out)
    assert len(sel["ids"]) == 3 and sel["candidates"] == 3  # the near-duplicate is left out
    assert (
        main(["library", "select", "--library", path, "--top", "9", "--by", "q_read", "--include-duplicates", "--json"])
        == 0
    )
    assert len(json.loads(capsys.readouterr().out)["ids"]) == 4
    assert main(["library", "dedup", "--library", path, "--threshold", "0"]) == 2
    assert "--threshold" in capsys.readouterr().err
    assert main(["library", "score", "--library", path, "--executor", "slurm"]) == 2
    assert "--executor" in " ".join(capsys.readouterr().err.split())
    assert main(["library", "score", "--library", path, "--model", str(tmp_path / "books")]) == 2
    assert "neither a bookmix checkpoint" in " ".join(capsys.readouterr().err.split())
