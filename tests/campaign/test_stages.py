"""The campaign's later stages and training modes, for real: a dialogue layer on the top trials, packed training
(forced on CPU) giving the objectives unpacked training gives — also after the driver is killed mid-pack — and a
LoRA fine-tune campaign from a tiny randomly initialised Llama saved to a local folder."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from bookmix.campaign.runner import run_campaign
from bookmix.config import load_pipeline
from bookmix.errors import BookmixError, ConfigError

from .conftest import REPO, db_rows, pipeline_dict, read_json, wait_for, write_pipeline

THREE = {"designs": [{"design": "random", "n": 3, "books_per_set": 3, "seed": 4}]}
NO_REPLICATES = {"seeds": [0], "replicates": 0.0}
SAMPLES = {"name": "samples", "type": "samples", "prompts": ["The"], "max_new_tokens": 8}


def _objectives(camp) -> dict[str, float]:
    return dict(db_rows(camp, "SELECT id, objective FROM trials WHERE state='completed'"))


# ---- unpacked with a dialogue layer, then the same campaign packed, killed and resumed -----------------------------
@pytest.fixture(scope="module")
def unpacked(tmp_path_factory, world_library):
    """3 trials run one after another in one worker, then a dialogue layer on the best 2 (chat data of the world)."""
    tmp = tmp_path_factory.mktemp("stages")
    data = pipeline_dict(tmp / "u", world_library, search=THREE, seeds=NO_REPLICATES,
                         train={"max_tokens": 8 * 64 * 30, "checkpoint_every": 2},
                         executor={"trials_per_unit": 3, "packed": False},
                         dialogue={"enabled": True, "top": 2, "epochs": 1, "lr": 3e-3,
                                   "data": str(world_library.parent / "world" / "chat.jsonl")})  # fmt: skip
    data["eval"]["suite"]["tasks"].append(SAMPLES)
    path = write_pipeline(tmp / "u.yaml", data)
    return tmp, path, data, run_campaign(load_pipeline(path), show_progress=False)


def test_dialogue_layer_on_the_top_trials(unpacked):
    _, path, _, summary = unpacked
    camp = summary.campaign_dir
    assert summary.counts["completed"] == 3 and summary.dialogue == camp / "dialogue" / "dialogue.json"
    best = [tid for (tid,) in db_rows(camp, "SELECT id FROM trials ORDER BY objective ASC")][:2]
    report = read_json(summary.dialogue)
    assert [r["base"] for r in report["runs"]] == [str(camp / "trials" / t) for t in best]  # best first
    for run in report["runs"]:  # the layer learned the chat format, and the suite ran on it again
        assert run["heldout_loss_after"] < run["heldout_loss_before"] - 0.2 and run["objective"] is not None
    # recorded where the dashboard looks for it, with the dialogue's own samples
    arts = dict(db_rows(camp, "SELECT trial_id, path FROM artifacts WHERE kind='dialogue'"))
    assert set(arts) == set(best) and all((camp / "dialogue" / t / "eval.json").is_file() for t in best)
    from bookmix.report.data import read_samples

    trials = [dict(zip(("id", "recipe_id", "state", "objective", "spec"), r, strict=True))
              for r in db_rows(camp, "SELECT id, recipe_id, state, objective, spec FROM trials")]  # fmt: skip
    shown = read_samples(camp, trials, {t: {"dialogue": p} for t, p in arts.items()}, maximize=False)
    assert shown[0]["trial_id"] == best[0] and shown[0]["dialogue"][0]["completions"]
    stage = json.loads(db_rows(camp, "SELECT info FROM stages WHERE name='dialogue'")[0][0])
    assert stage["trials"] == best

    # run again: nothing is trained again, the dialogue layers included
    sft_times = {t: (camp / "dialogue" / t / "sft.json").stat().st_mtime_ns for t in best}
    finished = db_rows(camp, "SELECT id, finished_at FROM trials ORDER BY id")
    again = run_campaign(load_pipeline(path), show_progress=False)
    assert again.dialogue == summary.dialogue and db_rows(camp, "SELECT id, finished_at FROM trials ORDER BY id") == finished
    assert {t: (camp / "dialogue" / t / "sft.json").stat().st_mtime_ns for t in best} == sft_times

    # killed after the second layer's last checkpoint, before its result and the stage's record: the re-run finishes
    # that layer from its checkpoint (same held-out loss) and leaves the finished one alone
    second = camp / "dialogue" / best[1]
    (second / "sft.json").unlink()
    shutil.rmtree(second / "hf")
    summary.dialogue.unlink()
    con = sqlite3.connect(camp / "campaign.sqlite")
    con.execute("DELETE FROM stages WHERE name='dialogue'")
    con.commit()
    con.close()
    redo = run_campaign(load_pipeline(path), show_progress=False)
    assert (camp / "dialogue" / best[0] / "sft.json").stat().st_mtime_ns == sft_times[best[0]]
    runs = read_json(redo.dialogue)["runs"]
    assert runs[1]["heldout_loss_after"] == pytest.approx(report["runs"][1]["heldout_loss_after"], rel=1e-6)
    assert (second / "hf" / "config.json").is_file()


def test_packed_training_gives_the_unpacked_objectives_even_after_a_kill(unpacked, world_library):
    tmp, _, data, summary = unpacked
    camp = tmp / "p"
    packed = {**data, "campaign": {"name": "p", "out": str(camp)}, "dialogue": {"enabled": False},
              "executor": {**data["executor"], "packed": True}}  # fmt: skip
    path = write_pipeline(tmp / "p.yaml", packed)
    cmd = [sys.executable, "-m", "bookmix", "run", str(path)]
    driver = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:  # kill the driver (its worker dies with it) once the pack has checkpointed, before it finishes

        def mid_pack() -> bool:
            states = [p / "checkpoint" / "state.json" for p in (camp / "trials").glob("*")] if (camp / "trials").exists() else []
            return any(s.exists() for s in states) and not any((s.parent.parent / "result.json").exists() for s in states)

        wait_for(mid_pack, 120, "the pack's first checkpoints")
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    time.sleep(0.5)  # the worker follows its driver (PDEATHSIG)
    resumed = run_campaign(load_pipeline(path), show_progress=False)
    assert resumed.counts["completed"] == 3

    theirs, ours = _objectives(summary.campaign_dir), _objectives(camp)
    assert ours.keys() == theirs.keys()  # the same trial ids: packing is how, not what
    for tid in ours:
        assert ours[tid] == pytest.approx(theirs[tid], rel=1e-4, abs=1e-5)
    log = next((camp / "trials").glob("*/worker.log")).read_text()
    starts = [json.loads(line) for line in log.splitlines() if line.startswith('{"event": "start"')]
    assert len(starts) == 6 and {s.get("pack") for s in starts} == {3}  # one pack of 3, in two sessions:
    assert all(s["step"] == 0 for s in starts[:3]) and max(s["step"] for s in starts[3:]) > 0  # the second resumed
    for tid in ours:  # every folder holds what the unpacked trial's holds (retention alike: the same top 2)
        folders = [c / "trials" / tid for c in (camp, summary.campaign_dir)]
        names = [sorted(str(p.relative_to(f)) for p in f.rglob("*")) for f in folders]
        assert names[0] == names[1] and "eval.json" in names[0]


# ---- fine-tune mode -------------------------------------------------------------------------------------------------
def tiny_llama(folder, vocab_size: int, tokenizer_json):
    """A randomly initialised 2-layer Llama (d 32) reading the library's tokenizer, saved as a local HF folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=True)  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(folder)
    shutil.copyfile(tokenizer_json, folder / "tokenizer.json")
    return folder


def test_lora_campaign_from_a_local_base(tmp_path, world_library):
    from safetensors.torch import load_file

    from bookmix.library import Library

    lib = Library.open(world_library)
    base = tiny_llama(tmp_path / "base", lib.vocab_size, world_library / "tokenizer.json")
    data = pipeline_dict(tmp_path / "c", world_library, search={"designs": [{"design": "random", "n": 2, "books_per_set": 3, "seed": 5}]},
                         seeds=NO_REPLICATES, model={"hf_base": "base", "finetune": "lora", "lora_r": 4, "overrides": {}},
                         train={"lr": 0.01, "max_tokens": 8 * 64 * 10}, selection={"top_k": 1}, executor={"trials_per_unit": 2})  # fmt: skip
    path = write_pipeline(tmp_path / "p.yaml", data)
    summary = run_campaign(load_pipeline(path), show_progress=False)
    assert summary.counts["completed"] == 2, db_rows(tmp_path / "c", "SELECT error FROM trials")
    rows = db_rows(tmp_path / "c", "SELECT id, objective, spec FROM trials ORDER BY objective ASC")
    import math

    assert all(math.isfinite(obj) and obj < math.log(lib.vocab_size) + 0.5 for _, obj, _ in rows)
    spec = json.loads(rows[0][2])
    assert spec["model"] == {"base": str(base), "method": "lora", "seq_len": None, "lora_r": 4}
    best, other = (tmp_path / "c" / "trials" / r[0] for r in rows)
    assert all("lora_" in k for k in load_file(best / "checkpoint" / "model.safetensors"))  # adapters only
    assert (best / "hf" / "config.json").is_file() and (best / "adapter" / "adapter_config.json").is_file()
    # retention (top_k 1): the other trial's checkpoint, merged model and adapter are gone, its results stay
    assert not any((other / d).exists() for d in ("checkpoint", "hf", "adapter")) and (other / "eval.json").is_file()
    assert "train/heldout_loss" in dict(db_rows(tmp_path / "c", f"SELECT name, value FROM metrics WHERE trial_id='{rows[0][0]}'"))
    with pytest.raises(BookmixError, match="fine-tune mode"):
        from bookmix.campaign.export import export_axolotl

        export_axolotl(tmp_path / "c", rows[0][0], tmp_path / "ax")


def test_finetune_and_dialogue_settings_fail_before_any_work(tmp_path, world_library):
    from bookmix.library.tokenizer import save, train_bpe

    data = pipeline_dict(tmp_path / "c", world_library, model={"hf_base": str(tmp_path / "nowhere"), "overrides": {}})
    with pytest.raises(ConfigError, match="model.hf_base: .*not a Hugging Face model folder"):
        run_campaign(load_pipeline(write_pipeline(tmp_path / "a.yaml", data)), show_progress=False)
    # a base whose tokenizer is not the library's: refused before any trial is planned
    other = train_bpe(["entirely different words about ships and storms " * 40], vocab_size=300)
    save(other, tmp_path / "other.json")
    tiny_llama(tmp_path / "base", 512, tmp_path / "other.json")
    data = pipeline_dict(tmp_path / "c", world_library, model={"hf_base": str(tmp_path / "base"), "overrides": {}})
    with pytest.raises(BookmixError, match="tokenizer differs from the library's"):
        run_campaign(load_pipeline(write_pipeline(tmp_path / "b.yaml", data)), show_progress=False)
    assert db_rows(tmp_path / "c", "SELECT COUNT(*) FROM trials")[0][0] == 0
    data = pipeline_dict(tmp_path / "d", world_library, dialogue={"enabled": True, "top": 1, "data": str(tmp_path / "no.jsonl")})
    with pytest.raises(ConfigError, match="dialogue.data: .*no.jsonl: file not found"):
        run_campaign(load_pipeline(write_pipeline(tmp_path / "d.yaml", data)), show_progress=False)
