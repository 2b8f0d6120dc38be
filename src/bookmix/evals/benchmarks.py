"""Published grammar benchmarks of minimal pairs: BLiMP (English) and RuBLiMP (Russian) — where their files live, how
to read them, and how to download them.

Both are scored the published way: a pair is right when the grammatical sentence has the higher full-sentence
log-probability (Warstadt et al., 2020; Taktasheva et al., 2024). Chance is 50%.

Where the files are looked for, first hit wins:
  1. the task's ``path`` (a folder holding the benchmark's files);
  2. ``$BOOKMIX_EVALDATA/<name>/`` (a folder laid out like ``../shared/evaldata``: ``blimp/``, ``rublimp/``);
  3. ``$BOOKMIX_HOME/evaldata/<name>/`` (default ``~/.cache/bookmix/evaldata/<name>``), which
     ``bookmix evals fetch <name>`` fills by default.
A paradigm's file may be plain or gzipped (``causative.jsonl`` or ``causative.jsonl.gz``): the official repository's
layout and the shared folder's both read.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import os
import urllib.error
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bookmix.errors import BookmixError
from bookmix.utils.io import json_object

ENV_DIR = "BOOKMIX_EVALDATA"

# The paradigms, one file each (BLiMP: 67 x 1000 pairs; RuBLiMP: 45 x 1000 pairs), named as in the repositories.
BLIMP_PARADIGMS = (
    "adjunct_island",
    "anaphor_gender_agreement",
    "anaphor_number_agreement",
    "animate_subject_passive",
    "animate_subject_trans",
    "causative",
    "complex_NP_island",
    "coordinate_structure_constraint_complex_left_branch",
    "coordinate_structure_constraint_object_extraction",
    "determiner_noun_agreement_1",
    "determiner_noun_agreement_2",
    "determiner_noun_agreement_irregular_1",
    "determiner_noun_agreement_irregular_2",
    "determiner_noun_agreement_with_adj_2",
    "determiner_noun_agreement_with_adj_irregular_1",
    "determiner_noun_agreement_with_adj_irregular_2",
    "determiner_noun_agreement_with_adjective_1",
    "distractor_agreement_relational_noun",
    "distractor_agreement_relative_clause",
    "drop_argument",
    "ellipsis_n_bar_1",
    "ellipsis_n_bar_2",
    "existential_there_object_raising",
    "existential_there_quantifiers_1",
    "existential_there_quantifiers_2",
    "existential_there_subject_raising",
    "expletive_it_object_raising",
    "inchoative",
    "intransitive",
    "irregular_past_participle_adjectives",
    "irregular_past_participle_verbs",
    "irregular_plural_subject_verb_agreement_1",
    "irregular_plural_subject_verb_agreement_2",
    "left_branch_island_echo_question",
    "left_branch_island_simple_question",
    "matrix_question_npi_licensor_present",
    "npi_present_1",
    "npi_present_2",
    "only_npi_licensor_present",
    "only_npi_scope",
    "passive_1",
    "passive_2",
    "principle_A_c_command",
    "principle_A_case_1",
    "principle_A_case_2",
    "principle_A_domain_1",
    "principle_A_domain_2",
    "principle_A_domain_3",
    "principle_A_reconstruction",
    "regular_plural_subject_verb_agreement_1",
    "regular_plural_subject_verb_agreement_2",
    "sentential_negation_npi_licensor_present",
    "sentential_negation_npi_scope",
    "sentential_subject_island",
    "superlative_quantifiers_1",
    "superlative_quantifiers_2",
    "tough_vs_raising_1",
    "tough_vs_raising_2",
    "transitive",
    "wh_island",
    "wh_questions_object_gap",
    "wh_questions_subject_gap",
    "wh_questions_subject_gap_long_distance",
    "wh_vs_that_no_gap",
    "wh_vs_that_no_gap_long_distance",
    "wh_vs_that_with_gap",
    "wh_vs_that_with_gap_long_distance",
)
RUBLIMP_PARADIGMS = (
    "add_new_suffix",
    "add_verb_prefix",
    "adposition_government",
    "anaphor_agreement_gender",
    "anaphor_agreement_number",
    "change_declension_ending",
    "change_declension_ending_has_dep",
    "change_duration_aspect",
    "change_repetition_aspect",
    "change_verb_conjugation",
    "change_verb_prefixes_order",
    "clause_subj_predicate_agreement_gender",
    "clause_subj_predicate_agreement_number",
    "clause_subj_predicate_agreement_person",
    "conj_verb_tense",
    "deontic_imperative_aspect",
    "external_possessor",
    "floating_quantifier_agreement_case",
    "floating_quantifier_agreement_gender",
    "floating_quantifier_agreement_number",
    "genitive_subj_predicate_agreement_gender",
    "genitive_subj_predicate_agreement_number",
    "genitive_subj_predicate_agreement_person",
    "indefinite_pronoun_to_negative",
    "negative_concord",
    "negative_pronoun_to_indefinite",
    "nominalization_case",
    "noun_subj_predicate_agreement_gender",
    "noun_subj_predicate_agreement_number",
    "noun_subj_predicate_agreement_person",
    "np_agreement_case",
    "np_agreement_gender",
    "np_agreement_number",
    "single_verb_tense",
    "subj_predicate_agreement_gender_attractor",
    "subj_predicate_agreement_number_attractor",
    "tense_marker",
    "transitive_verb",
    "transitive_verb_iobject",
    "transitive_verb_object",
    "transitive_verb_passive",
    "transitive_verb_subject",
    "verb_acc_object",
    "verb_gen_object",
    "verb_ins_object",
)


@dataclass(frozen=True)
class Benchmark:
    """One published benchmark: its paradigms, file format and fields, and where the official files are."""

    name: str
    lang: str
    paradigms: tuple[str, ...]
    suffix: str
    """File suffix of a paradigm in the official repository (``.jsonl`` or ``.csv``)."""
    good: str
    bad: str
    phenomenon: str
    """The column grouping paradigms into broader phenomena (a second breakdown)."""
    url: str
    """Official folder of the files (a raw-file URL pinned to a commit, so the bytes never change under us)."""
    source: str

    def file_url(self, paradigm: str, base: str | None = None) -> str:
        return f"{(base or self.url).rstrip('/')}/{paradigm}{self.suffix}"


BENCHMARKS: dict[str, Benchmark] = {
    "blimp": Benchmark(
        name="blimp",
        lang="en",
        paradigms=BLIMP_PARADIGMS,
        suffix=".jsonl",
        good="sentence_good",
        bad="sentence_bad",
        phenomenon="linguistics_term",
        url="https://raw.githubusercontent.com/alexwarstadt/blimp/d07303a7662f1942d70c5e2bbac7aa021c6cdbd0/data",
        source="github.com/alexwarstadt/blimp (Warstadt et al., TACL 2020), CC BY 4.0",
    ),
    "rublimp": Benchmark(
        name="rublimp",
        lang="ru",
        paradigms=RUBLIMP_PARADIGMS,
        suffix=".csv",
        good="source_sentence",
        bad="target_sentence",
        phenomenon="phenomenon",
        url="https://raw.githubusercontent.com/RussianNLP/RuBLiMP/bade9d66d5a66eacde51c267e58f408e9d869758/datasets",
        source="github.com/RussianNLP/RuBLiMP (Taktasheva et al., EMNLP 2024), Apache 2.0",
    ),
}


def benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise BookmixError(f"unknown benchmark {name!r}; choose one of {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[name]


def check_paradigms(bench: Benchmark, names: list[str]) -> None:
    """A clear error for a paradigm the benchmark does not have, naming the close ones."""
    for n in names:
        if n not in bench.paradigms:
            close = difflib.get_close_matches(n, bench.paradigms, n=4, cutoff=0.5)
            hint = (
                f"; close names: {', '.join(close)}"
                if close
                else f" ({len(bench.paradigms)} paradigms, e.g. {bench.paradigms[0]})"
            )
            raise ValueError(f"unknown {bench.name} paradigm {n!r}{hint}")


def home_dir() -> Path:
    return Path(os.environ.get("BOOKMIX_HOME") or Path.home() / ".cache" / "bookmix")


def default_dir(name: str) -> Path:
    """Where the benchmark is looked for when a task gives no ``path`` (and where ``evals fetch`` writes by default)."""
    env = os.environ.get(ENV_DIR)
    return Path(env) / name if env else home_dir() / "evaldata" / name


# ---- reading ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    good: str
    bad: str
    paradigm: str
    phenomenon: str


def paradigm_file(folder: Path, bench: Benchmark, paradigm: str) -> Path | None:
    for name in (paradigm + bench.suffix + ".gz", paradigm + bench.suffix):
        if (folder / name).is_file():
            return folder / name
    return None


def load_pairs(
    bench: Benchmark, folder: Path, paradigms: list[str] | None = None, max_per_paradigm: int | None = None
) -> list[Pair]:
    """The pairs of ``paradigms`` (all by default), in file order, the first ``max_per_paradigm`` of each.

    A missing file, an unreadable line or a line without the two sentences fails naming the file (and line)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BookmixError(
            f"{bench.name}: {folder}: no such folder; download the benchmark with "
            f"`bookmix evals fetch {bench.name} --out {folder}` (or set a task path / ${ENV_DIR})"
        )
    names = list(paradigms) if paradigms else list(bench.paradigms)
    try:
        check_paradigms(bench, names)
    except ValueError as exc:
        raise BookmixError(f"{bench.name}.paradigms: {exc}") from None
    pairs: list[Pair] = []
    for p in names:
        f = paradigm_file(folder, bench, p)
        if f is None:
            raise BookmixError(
                f"{bench.name}: {folder / (p + bench.suffix)}[.gz]: missing; complete the folder with "
                f"`bookmix evals fetch {bench.name} --out {folder}`"
            )
        pairs += _read_file(bench, f, p, max_per_paradigm)
    return pairs


def _open_text(path: Path):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _read_file(bench: Benchmark, path: Path, paradigm: str, limit: int | None) -> list[Pair]:
    out: list[Pair] = []
    try:
        with _open_text(path) as fh:
            if bench.suffix == ".csv":
                reader = csv.DictReader(fh)
                missing = {bench.good, bench.bad} - set(reader.fieldnames or [])
                if missing:
                    raise BookmixError(f"{path}:1: header lacks column(s) {', '.join(sorted(missing))}")
                rows = ((reader.line_num, row) for row in reader)
            else:
                rows = ((n, json_object(line, f"{path}:{n}")) for n, line in enumerate(fh, 1) if line.strip())
            for n, row in rows:
                good, bad = row.get(bench.good), row.get(bench.bad)
                if not isinstance(good, str) or not isinstance(bad, str) or not good.strip() or not bad.strip():
                    raise BookmixError(f"{path}:{n}: needs {bench.good!r} and {bench.bad!r} (non-empty text)")
                out.append(Pair(good, bad, paradigm, str(row.get(bench.phenomenon) or "")))
                if limit is not None and len(out) >= limit:
                    break
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise BookmixError(f"{path}: unreadable ({exc})") from None
    if not out:
        raise BookmixError(f"{path}: holds no pairs")
    return out


# ---- fetching --------------------------------------------------------------------------------------------------------
@dataclass
class BenchmarkFetch:
    benchmark: str
    out: str
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def fetch_benchmark(
    name: str,
    out: str | os.PathLike | None = None,
    paradigms: list[str] | None = None,
    base_url: str | None = None,
    delay: float = 0.5,
    retries: int = 4,
    log: Callable[[str], None] | None = None,
) -> BenchmarkFetch:
    """Download the official paradigm files into ``out`` (default: where tasks look), one polite request at a time.

    Resumable: a finished file (plain or gzipped) is skipped, a partial one (``.NAME.part``) is continued, and a file
    appears under its final name only when complete. Failures are listed, not fatal; run again to retry them.
    """
    from bookmix.library.fetch import _download, _Polite  # the Gutenberg fetcher's polite, resumable HTTP

    bench = benchmark(name)
    names = list(paradigms) if paradigms else list(bench.paradigms)
    try:
        check_paradigms(bench, names)
    except ValueError as exc:
        raise BookmixError(f"--paradigm: {exc}") from None
    folder = Path(out) if out is not None else default_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    http = _Polite(delay, retries)
    result = BenchmarkFetch(benchmark=name, out=str(folder))
    for p in names:
        if paradigm_file(folder, bench, p) is not None:
            result.skipped.append(p)
            continue
        url = bench.file_url(p, base_url)
        try:
            _download(http, url, folder / (p + bench.suffix))
            result.fetched.append(p)
            if log:
                log(f"fetched {p}{bench.suffix}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            result.failed[p] = f"{url}: {exc}"
    return result
