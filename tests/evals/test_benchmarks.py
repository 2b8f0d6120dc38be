"""BLiMP / RuBLiMP: reading either layout (plain or gzipped), clear errors for bad files and unknown paradigms, the
polite resumable fetcher against a real HTTP server on 127.0.0.1, and scoring through the suite."""

from __future__ import annotations

import gzip
import json

import pytest

from bookmix.errors import BookmixError, ConfigError
from bookmix.evals import Suite, evaluate
from bookmix.evals.benchmarks import BENCHMARKS, fetch_benchmark, load_pairs
from bookmix.models.model import LM

BLIMP = BENCHMARKS["blimp"]
RUBLIMP = BENCHMARKS["rublimp"]


def blimp_lines(paradigm: str, n: int) -> str:
    return "".join(
        json.dumps(
            {
                "sentence_good": f"The cat {i} sleeps.",
                "sentence_bad": f"The cat {i} sleep.",
                "field": "morphology",
                "linguistics_term": "s-selection",
                "UID": paradigm,
                "pairID": str(i),
            }
        )
        + "\n"
        for i in range(n)
    )


def rublimp_csv(paradigm: str, n: int) -> str:
    head = "id,source_sentence,target_sentence,source_word,target_word,level,phenomenon,PID,subtype,domain,tree_depth\n"
    rows = "".join(
        f"{i},Кошка {i} спит.,Кошка {i} спят.,спит,спят,Syntax,Agreement,{paradigm},x,wiki,2\n" for i in range(n)
    )
    return head + rows


def test_reads_plain_and_gzipped_files_first_n_per_paradigm(tmp_path):
    (tmp_path / "causative.jsonl").write_text(blimp_lines("causative", 5), encoding="utf-8")
    with gzip.open(tmp_path / "passive_1.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(blimp_lines("passive_1", 7))
    pairs = load_pairs(BLIMP, tmp_path, ["causative", "passive_1"], max_per_paradigm=3)
    assert [p.paradigm for p in pairs] == ["causative"] * 3 + ["passive_1"] * 3
    assert pairs[0].good == "The cat 0 sleeps." and pairs[0].bad == "The cat 0 sleep."
    assert pairs[0].phenomenon == "s-selection"
    with gzip.open(tmp_path / "np_agreement_case.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write(rublimp_csv("np_agreement_case", 4))
    ru = load_pairs(RUBLIMP, tmp_path, ["np_agreement_case"])
    assert len(ru) == 4 and ru[1].good == "Кошка 1 спит." and ru[1].phenomenon == "Agreement"


def test_missing_and_malformed_files_name_the_file_and_line(tmp_path):
    with pytest.raises(BookmixError, match=r"causative\.jsonl.*missing.*evals fetch blimp"):
        load_pairs(BLIMP, tmp_path, ["causative"])
    with pytest.raises(BookmixError, match="no such folder"):
        load_pairs(BLIMP, tmp_path / "nowhere", ["causative"])
    (tmp_path / "causative.jsonl").write_text(blimp_lines("causative", 2) + "{not json\n", encoding="utf-8")
    with pytest.raises(BookmixError, match=r"causative\.jsonl:3: not valid JSON"):
        load_pairs(BLIMP, tmp_path, ["causative"])
    (tmp_path / "causative.jsonl").write_text('{"sentence_good": "A b."}\n', encoding="utf-8")
    with pytest.raises(BookmixError, match=r"causative\.jsonl:1: needs 'sentence_good' and 'sentence_bad'"):
        load_pairs(BLIMP, tmp_path, ["causative"])
    (tmp_path / "tense_marker.csv").write_text("id,source_sentence\n1,Он шёл.\n", encoding="utf-8")
    with pytest.raises(BookmixError, match=r"tense_marker\.csv:1: header lacks column\(s\) target_sentence"):
        load_pairs(RUBLIMP, tmp_path, ["tense_marker"])
    (tmp_path / "passive_1.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(BookmixError, match=r"passive_1\.jsonl\.gz: unreadable"):
        load_pairs(BLIMP, tmp_path, ["passive_1"])


def test_unknown_paradigm_fails_at_load_naming_close_ones():
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.paradigms.*unknown blimp paradigm 'causitive'.*causative"):
        Suite.from_dict({"tasks": [{"type": "blimp", "paradigms": ["causitive"]}], "objective": "blimp/acc"})
    with pytest.raises(ConfigError, match=r"unknown rublimp paradigm 'np_agreement_cases'.*np_agreement_case"):
        Suite.from_dict(
            {"tasks": [{"type": "rublimp", "paradigms": ["np_agreement_cases"]}], "objective": "rublimp/acc"}
        )


def test_scored_through_the_suite_with_breakdowns(tmp_path, story_library, tiny_cfg, trained_run):
    from bookmix.training.checkpoint import load_model

    for p in ("causative", "passive_1"):
        (tmp_path / f"{p}.jsonl").write_text(blimp_lines(p, 20), encoding="utf-8")
    suite = Suite.from_dict(
        {
            "tasks": [
                {
                    "name": "g",
                    "type": "blimp",
                    "path": str(tmp_path),
                    "paradigms": ["causative", "passive_1"],
                    "max_pairs_per_paradigm": 10,
                }
            ],
            "objective": "g/prob",
            "bootstrap": 50,
        }
    )
    model, _, _ = load_model(trained_run, "cpu")
    r = evaluate(model, suite, story_library)
    assert r.tasks["g"]["items"] == 20 and r.tasks["g"]["chance"] == 0.5 and r.tasks["g"]["lang"] == "en"
    for m in (
        "acc",
        "margin",
        "prob",
        "acc@paradigm=causative",
        "prob@paradigm=passive_1",
        "acc@phenomenon=s-selection",
    ):
        assert f"g/{m}" in r.metrics, m
    assert r.metrics["g/acc@paradigm=causative"].n == 10
    assert 0.0 <= r.metrics["g/prob"].value <= 1.0 and r.metrics["g/prob"].stderr > 0
    # Environment variable layout (a folder holding blimp/), as ../shared/evaldata is laid out.
    (tmp_path / "data" / "blimp").mkdir(parents=True)
    (tmp_path / "data" / "blimp" / "causative.jsonl").write_text(blimp_lines("causative", 4), encoding="utf-8")
    import os

    os.environ["BOOKMIX_EVALDATA"] = str(tmp_path / "data")
    try:
        env_suite = Suite.from_dict(
            {"tasks": [{"type": "blimp", "paradigms": ["causative"]}], "objective": "blimp/acc"}
        )
        assert evaluate(LM(tiny_cfg), env_suite, story_library).tasks["blimp"]["items"] == 4
    finally:
        del os.environ["BOOKMIX_EVALDATA"]


@pytest.fixture
def site(http_site):
    url, handler = http_site(
        {f"/data/{p}.jsonl": blimp_lines(p, 50).encode() for p in ("causative", "passive_1", "transitive")}
    )
    return url + "/data", handler


def test_fetch_is_polite_retries_and_resumes(site, tmp_path):
    url, handler = site
    handler.fail_first["/data/causative.jsonl"] = 2  # two 503s, then the file: retried with backoff
    handler.truncate_once.add("/data/passive_1.jsonl")  # the connection drops halfway: a .part file remains
    out = tmp_path / "blimp"
    wanted = ["causative", "passive_1", "transitive", "wh_island"]  # wh_island is not on the server: 404
    r = fetch_benchmark("blimp", out, paradigms=wanted, base_url=url, delay=0.0, retries=3)
    assert r.fetched == ["causative", "transitive"] and set(r.failed) == {"passive_1", "wh_island"}
    assert "404" in r.failed["wh_island"] and "resume" in r.failed["passive_1"]
    assert (out / ".passive_1.jsonl.part").exists() and not (out / "passive_1.jsonl").exists()
    assert all(ua.startswith("bookmix/") for _, _, ua in handler.log)
    r2 = fetch_benchmark("blimp", out, paradigms=wanted[:3], base_url=url, delay=0.0)
    assert r2.fetched == ["passive_1"] and r2.skipped == ["causative", "transitive"] and not r2.failed
    assert (out / "passive_1.jsonl").read_bytes() == handler.files["/data/passive_1.jsonl"]
    ranged = [rng for path, rng, _ in handler.log if path.endswith("passive_1.jsonl") and rng]
    assert ranged and ranged[-1] != "bytes=0-"  # the second run continued the partial file
    assert len(load_pairs(BLIMP, out, wanted[:3])) == 150  # what was fetched reads
    with pytest.raises(BookmixError, match="unknown blimp paradigm 'causitive'"):
        fetch_benchmark("blimp", out, paradigms=["causitive"], base_url=url)
    with pytest.raises(BookmixError, match="unknown benchmark 'glue'"):
        fetch_benchmark("glue", out)


def test_cli_fetch_prints_one_json_object(site, tmp_path, capsys):
    from bookmix.cli import main

    url, _ = site
    code = main(
        [
            "evals",
            "fetch",
            "blimp",
            "--out",
            str(tmp_path / "b"),
            "--paradigm",
            "causative",
            "--base-url",
            url,
            "--delay",
            "0",
            "--json",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)  # exactly one object
    assert data["fetched"] == ["causative"] and data["benchmark"] == "blimp"
    code = main(
        [
            "evals",
            "fetch",
            "blimp",
            "--out",
            str(tmp_path / "b"),
            "--paradigm",
            "wh_island",
            "--base-url",
            url,
            "--delay",
            "0",
            "--retries",
            "1",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2 and "1 file(s) failed" in err


def test_shared_benchmark_files_read_whole(tmp_path):
    from pathlib import Path

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "evaldata"
    if not (shared / "blimp").is_dir():
        pytest.skip(f"benchmark files not found at {shared} (../shared/evaldata beside the checkout)")
    blimp = load_pairs(BLIMP, shared / "blimp")
    assert len(blimp) == 67 * 1000 and len({p.paradigm for p in blimp}) == 67
    ru = load_pairs(RUBLIMP, shared / "rublimp", max_per_paradigm=10)
    assert len(ru) == 45 * 10 and all(p.good != p.bad for p in ru)


def test_same_length_accuracy_removes_the_shorter_sentence_bias(tmp_path, story_library, tiny_cfg):
    # An untrained model prefers whichever sentence has fewer tokens: on pairs whose bad sentence is longer it is
    # "right" every time, so the published accuracy is far from chance; on equal-length pairs it is not.
    lines = "".join(
        json.dumps({"sentence_good": f"The cat {i} sleeps.", "sentence_bad": f"The cat {i} sleeps sleeps."}) + "\n"
        for i in range(40)
    )
    lines += "".join(
        json.dumps({"sentence_good": f"A dog {i} runs.", "sentence_bad": f"A dog {i} walks."}) + "\n" for i in range(40)
    )
    (tmp_path / "causative.jsonl").write_text(lines, encoding="utf-8")
    suite = Suite.from_dict(
        {
            "tasks": [{"name": "g", "type": "blimp", "path": str(tmp_path), "paradigms": ["causative"]}],
            "objective": "g/acc",
            "bootstrap": 50,
        }
    )
    r = evaluate(LM(tiny_cfg), suite, story_library)
    assert r.metrics["g/acc"].value >= 0.5 + 0.4 * 0.9  # the 40 longer-bad pairs won by length alone
    same = r.metrics["g/acc_same_length"]
    assert same.n == r.tasks["g"]["same_length_pairs"] and 0 < same.n < 80


def test_pairs_scored_from_their_first_differing_token_give_the_full_sentence_margins(story_library, trained_run):
    # The shared prefix cancels in log p(good) − log p(bad): scoring from the first differing token gives the
    # published full-sentence margins, through the output head on fewer positions.
    import numpy as np

    from bookmix.evals.scoring import Scorer
    from bookmix.evals.tasks.base import EvalContext
    from bookmix.evals.tasks.choice import score_pairs
    from bookmix.training.checkpoint import load_model

    model, _, _ = load_model(trained_run, "cpu")
    good = ["In the morning Kan walked to the garden.", "The mill was quiet.", "Then he gave the ring to her.", "A b"]
    bad = [
        "In the morning Kan walked the garden to.",
        "Mill the was quiet.",
        "Then he gave the ring to her her.",
        "A b",
    ]
    fast = Scorer.for_model(model)
    out = score_pairs(EvalContext(fast, story_library, story_library.path, 0), good, bad, {}, same_length=True)
    full = Scorer.for_model(model)
    start = np.array([story_library.eob_id], dtype=np.int64)
    enc = [e.astype(np.int64) for e in story_library.encode([t for p in zip(good, bad, strict=True) for t in p])]
    lp = full.score([start] * len(enc), enc).logprob
    np.testing.assert_allclose(out.metrics["margin"].num, lp[0::2] - lp[1::2], atol=1e-4)
    assert list(out.metrics["acc"].num) == list(lp[0::2] - lp[1::2] > 1e-4)  # identical pair: not a win
    assert fast.tokens_scored < 0.7 * full.tokens_scored
    equal = [len(g) == len(b) for g, b in zip(enc[0::2], enc[1::2], strict=True)]
    assert out.info["same_length_pairs"] == sum(equal) and 0 < sum(equal) < 4
