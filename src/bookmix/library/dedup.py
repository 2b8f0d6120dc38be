"""Near-duplicate books: MinHash signatures, LSH candidates, clusters with one canonical book each.

Exact copies never reach the catalog (a book's id is the hash of its cleaned text). This finds the *near* copies: a
reissue with another preface, an edition with a few words dropped, an OCR variant. A near-duplicate is the same
*text*, not the same *work*: two translations of the Iliad, or a Russian novel and its English translation, share
almost no token n-grams and are rightly kept apart (an edition relation belongs in metadata, not here).

Signatures. Shingles are token 5-grams (about 3-4 words: a dropped word or a garbled character breaks only the 5
shingles that cover it) hashed with a rolling polynomial in numpy. A book's whole length is read, but only the
shingles whose hash falls in a fixed 1/16 of the hash space are kept: content-defined sampling. Positional windows
would not do here: another preface, or 2% of words dropped, shifts every later position, so windows at the same
fractions of two variants would hold different text; a content-defined sample keeps the same shingles wherever they
moved, and its Jaccard estimates the whole sets' (a sample of ~15k shingles for a 250k-token book). The sample goes
into ``datasketch.MinHash`` (128 permutations, the affine32 scheme) and the signature is stored in the catalog
(table ``minhash``), computed once per book: re-running only signs new books.

Why datasketch: maintained since 2015, pure Python + numpy (no compiled wheel to trust), and its LSH index can live
in Redis or Cassandra when one machine's memory is not enough. The hashing that a Rust library (rensa) would speed
up is done here in numpy on token ids already, so datasketch's cost is the permutations only (~10 ms for a 250k-token book).

Clusters. LSH (bands chosen by datasketch for ``threshold``) proposes candidate pairs; a pair is kept when its
estimated Jaccard is ≥ ``threshold`` (default 0.5: on bench/dedup_score.py's 40 real books, a book and its made
variants measured 0.69 at the least and 0.84 at the median, two different books 0.023 at the most). Kept pairs join clusters (connected components). The canonical book of a
cluster is the one with the most characters (the fullest edition: dropped words and cut pages make a book shorter),
ties broken by the lowest OCR-noise score when books are scored (``q_ocr``), then by id. Every other member gets
``dup_of`` = the canonical id and ``dup_sim`` = its estimated Jaccard with it; nothing is deleted. Designs leave books
with a ``dup_of`` out of their pool unless asked (``include_duplicates``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bookmix.errors import BookmixError, require
from bookmix.library import catalog
from bookmix.library.parallel import run_units

NUM_PERM = 128  # standard error of a Jaccard estimate ≈ sqrt(J(1-J)/128) ≤ 0.044
SHINGLE = 5  # tokens per shingle (~3-4 words)
SAMPLE = 16  # keep shingles whose hash is ≡ 0 mod SAMPLE: 1/16 of them, chosen by content, over the whole book
THRESHOLD = 0.5
SEED = 1
UNIT_BOOKS = 64  # books signed per unit of work (a process or Ray task), committed together

_TABLE = "CREATE TABLE IF NOT EXISTS minhash (id TEXT PRIMARY KEY, sig BLOB NOT NULL)"


@dataclass(frozen=True)
class DedupParams:
    num_perm: int = NUM_PERM
    shingle: int = SHINGLE
    sample: int = SAMPLE
    seed: int = SEED

    def key(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class DedupReport:
    books: int = 0
    signed: int = 0  # signatures computed by this run (the others were in the catalog)
    clusters: int = 0
    duplicates: int = 0  # books marked dup_of a canonical one
    threshold: float = THRESHOLD
    seconds: float = 0.0
    sign_seconds: float = 0.0
    clusters_list: list[list[str]] = field(default_factory=list)  # canonical first

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("clusters_list")
        return d


# -- signatures -----------------------------------------------------------------------------------------------------
def shingle_hashes(tokens: np.ndarray, params: DedupParams = DedupParams()) -> np.ndarray:
    """Distinct 32-bit hashes of the sampled token n-grams of one book (uint64 values < 2**32)."""
    n = params.shingle
    t = np.asarray(tokens, dtype=np.uint64)
    if len(t) < n:
        t = np.concatenate([t, np.zeros(n - len(t), np.uint64)])  # a very short book: one padded shingle
    m = len(t) - n + 1
    h = np.zeros(m, dtype=np.uint64)
    base = np.uint64(1_000_003)
    with np.errstate(over="ignore"):  # arithmetic mod 2**64 is the point
        for j in range(n):
            h = h * base + t[j : j + m] + np.uint64(1)
        h = _mix(h ^ np.uint64(params.seed))
    keep = h[(h & np.uint64(0xFFFFFFFF)) % np.uint64(params.sample) == 0] >> np.uint64(32)
    if len(keep) == 0:  # shorter than one sample's worth: use every shingle
        keep = h >> np.uint64(32)
    return np.unique(keep)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit (the low bits choose the sample)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def signature(tokens: np.ndarray, params: DedupParams = DedupParams()) -> np.ndarray:
    """The book's MinHash signature (``num_perm`` uint32 values)."""
    ds = require("datasketch", "dedup", "near-duplicate detection")
    m = ds.MinHash(num_perm=params.num_perm, seed=params.seed, hashfunc=int, scheme="affine32")
    m.update_batch(shingle_hashes(tokens, params).tolist())
    return np.asarray(m.hashvalues, dtype=np.uint32)


def _minhash(ds, sig: np.ndarray, params: DedupParams):
    return ds.LeanMinHash(seed=params.seed, hashvalues=sig, scheme="affine32")


def _sign_unit(unit: tuple[str, dict, list[str]]) -> list[tuple[str, bytes]]:
    """Worker: open the library (a shared path on a cluster), sign a batch of books, return (id, signature bytes)."""
    from bookmix.library.library import Library

    path, params, ids = unit
    p = DedupParams(**params)
    with Library.open(path) as lib:
        return [(i, signature(lib.tokens(i), p).tobytes()) for i in ids]


# -- the pass -------------------------------------------------------------------------------------------------------
def dedup(
    lib,
    *,
    threshold: float = THRESHOLD,
    params: DedupParams = DedupParams(),
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DedupReport:
    """Sign every unsigned book (resumable: signatures are committed a unit at a time), then cluster all books and
    write ``dup_of`` / ``dup_sim`` (recomputed as a whole, so the marks always match the signatures)."""
    if not 0.0 < threshold <= 1.0:
        raise BookmixError(f"--threshold: must be in (0, 1], got {threshold}")
    ds = require("datasketch", "dedup", "near-duplicate detection")
    t0 = time.perf_counter()
    con = lib.con
    con.execute(_TABLE)
    stored = catalog.get_meta(con).get("minhash")
    if stored is not None and stored != params.key():
        con.execute("DELETE FROM minhash")  # signatures of other settings do not compare: sign again
    catalog.set_meta(con, minhash=params.key())
    report = DedupReport(threshold=threshold)
    ids = [r[0] for r in con.execute("SELECT id FROM books ORDER BY id")]
    report.books = len(ids)
    todo = [r[0] for r in con.execute("SELECT id FROM books WHERE id NOT IN (SELECT id FROM minhash) ORDER BY id")]
    units = [(str(lib.path), params.key(), todo[i : i + UNIT_BOOKS]) for i in range(0, len(todo), UNIT_BOOKS)]
    done = len(ids) - len(todo)
    t_sign = time.perf_counter()
    for _, rows in run_units(_sign_unit, units, executor=executor, workers=workers, address=address):
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT OR REPLACE INTO minhash(id, sig) VALUES(?, ?)", rows)
        con.execute("COMMIT")
        report.signed += len(rows)
        done += len(rows)
        if progress is not None:
            progress(done, len(ids))
    report.sign_seconds = time.perf_counter() - t_sign

    sigs = {i: np.frombuffer(s, dtype=np.uint32) for i, s in con.execute("SELECT id, sig FROM minhash")}
    clusters, sim = _clusters(ds, [i for i in ids if i in sigs], sigs, params, threshold)
    chars = dict(con.execute("SELECT id, chars FROM books"))
    ocr = _column(con, "q_ocr")
    marks: list[tuple[str | None, float | None, str]] = []
    for members in clusters:
        # canonical: most characters, then cleanest (lowest q_ocr when scored), then id
        members = sorted(members, key=lambda b: (-chars[b], ocr.get(b) if ocr.get(b) is not None else 0.0, b))
        report.clusters_list.append(members)
        head = members[0]
        marks += [(head, round(sim(head, b), 4), b) for b in members[1:]]
    report.clusters = len(clusters)
    report.duplicates = len(marks)
    catalog.ensure_column(con, "dup_of", "TEXT")
    catalog.ensure_column(con, "dup_sim", "REAL")
    con.execute("BEGIN IMMEDIATE")
    try:
        con.execute("UPDATE books SET dup_of = NULL, dup_sim = NULL WHERE dup_of IS NOT NULL OR dup_sim IS NOT NULL")
        con.executemany("UPDATE books SET dup_of = ?, dup_sim = ? WHERE id = ?", marks)
        catalog.set_meta(con, dedup_threshold=threshold)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    report.seconds = time.perf_counter() - t0
    return report


def _clusters(ds, ids: Sequence[str], sigs: dict[str, np.ndarray], params: DedupParams, threshold: float):
    """Connected components of the pairs LSH proposes and whose estimated Jaccard is ≥ threshold (size ≥ 2, sorted)."""
    lsh = ds.MinHashLSH(threshold=threshold, num_perm=params.num_perm)
    hashes = {i: _minhash(ds, sigs[i], params) for i in ids}
    with lsh.insertion_session() as session:
        for i in ids:
            session.insert(i, hashes[i], check_duplication=False)
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def sim(a: str, b: str) -> float:
        return float(np.mean(sigs[a] == sigs[b]))

    for i in ids:
        for j in lsh.query(hashes[i]):
            if j > i and sim(i, j) >= threshold:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[str, list[str]] = {}
    for i in ids:
        groups.setdefault(find(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: min(g)), sim


def _column(con, name: str) -> dict[str, Any]:
    if name not in catalog.columns(con):
        return {}
    return dict(con.execute(f'SELECT id, "{name}" FROM books'))


def similarity(lib, a: str, b: str) -> float:
    """Estimated Jaccard of two signed books' shingle sets (the fraction of equal signature values)."""
    rows = dict(lib.con.execute("SELECT id, sig FROM minhash WHERE id IN (?, ?)", (a, b)))
    for x in (a, b):
        if x not in rows:
            raise BookmixError(f"book {x!r}: no signature yet (run `bookmix library dedup`)")
    return float(np.mean(np.frombuffer(rows[a], np.uint32) == np.frombuffer(rows[b], np.uint32)))


__all__ = ["DedupParams", "DedupReport", "dedup", "shingle_hashes", "signature", "similarity"]
