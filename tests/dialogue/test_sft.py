"""Dialogue fine-tuning end to end: held-out chat loss falls, the suite runs after it, the export round-trips through
transformers, a killed run resumes to the same weights, and the CLI speaks one JSON object."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bookmix.cli import main
from bookmix.models.chat import encode_chats, parse_conversation, read_chat_file
from bookmix.training.config import SFTConfig, TrainConfig
from bookmix.training.sft import SFTResult, dialogue_layer, load_chat_model, sft

SUITE = {
    "name": "tiny",
    "tasks": [{"name": "heldout", "type": "heldout_loss", "max_books": 2, "tokens_per_book": 256, "by": []}],
    "objective": {"metric": "heldout/loss", "direction": "minimize"},
}


def fast(**kw) -> SFTConfig:
    """A few seconds of SFT: a high learning rate suits a 100k-parameter model and a couple hundred Q/A pairs."""
    train = TrainConfig(micro_batch=16, lr=3e-3, warmup=0.05, weight_decay=0.0, **kw.pop("train", {}))
    return SFTConfig(epochs=kw.pop("epochs", 2), train=train, **kw)


@pytest.fixture(scope="module")
def tuned(world, tmp_path_factory):
    import yaml

    suite = tmp_path_factory.mktemp("suite") / "suite.yaml"
    suite.write_text(yaml.safe_dump(SUITE), encoding="utf-8")
    out = world.root / "sft"
    return sft(world.base, world.chat, world.library.path, out, fast(), suite=suite), out


def test_sft_lowers_heldout_chat_loss_and_runs_the_suite(tuned):
    result, out = tuned
    assert result.heldout_conversations >= 1 and result.train_conversations > 5 * result.heldout_conversations
    assert result.heldout_loss_after < result.heldout_loss_before - 0.5
    assert result.objective is not None and np.isfinite(result.objective)
    assert json.loads((out / "eval.json").read_text())["objective"]["value"] == pytest.approx(result.objective)
    assert SFTResult.load(out) == result
    again = sft(result.base, "no-such-file-needed.jsonl", "unused", out)  # finished: read back, not trained again
    assert again == result


def test_export_round_trips_through_transformers(tuned, world):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, out = tuned
    hf_dir = out / "hf"
    tok = AutoTokenizer.from_pretrained(hf_dir)
    msgs = json.loads(world.chat.read_text().splitlines()[0])["messages"]
    enc = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    model, ours_tok = load_chat_model(out)
    (ids, mask), = encode_chats(ours_tok, [parse_conversation({"messages": msgs})])
    assert enc["input_ids"] == ids.tolist()
    assert enc["assistant_masks"] == mask.astype(int).tolist()
    prompt = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|end|><|assistant|>")
    hf = AutoModelForCausalLM.from_pretrained(hf_dir)
    x = torch.tensor([ids.tolist()])
    with torch.no_grad():
        assert torch.allclose(hf(x).logits, model(x)[0], atol=1e-5)
    assert tok.eos_token == "<|end|>" and tok.eos_token_id in hf.generation_config.eos_token_id


def test_killed_run_resumes_to_the_same_weights(world, tmp_path):
    cfg = fast(epochs=1, train={"checkpoint_every": 3, "log_every": 1})
    whole = sft(world.base, world.chat, world.library.path, tmp_path / "whole", cfg, export=False)

    def crash(record):
        if record.get("step") == 4:
            raise KeyboardInterrupt  # killed mid-run, after the checkpoint of step 3

    with pytest.raises(KeyboardInterrupt):
        sft(world.base, world.chat, world.library.path, tmp_path / "cut", cfg, export=False, on_log=crash)
    assert not (tmp_path / "cut" / "sft.json").exists()
    resumed = sft(world.base, world.chat, world.library.path, tmp_path / "cut", cfg, export=False)
    assert resumed.steps == whole.steps and resumed.assistant_tokens == whole.assistant_tokens
    a = load_file(tmp_path / "whole" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "checkpoint" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.heldout_loss_after == pytest.approx(whole.heldout_loss_after, abs=1e-9)


def test_dialogue_layer_on_several_models_with_bad_lines(world, tmp_path):
    lines = world.chat.read_text().splitlines()[:60]
    lines[3] = json.dumps({"messages": [{"role": "user", "content": "no answer"}]})
    data = tmp_path / "chat.jsonl"
    data.write_text("\n".join(lines) + "\n")
    results = dialogue_layer([world.base, world.base], data, world.library.path, tmp_path / "dlg", fast(epochs=1))
    assert len(results) == 2 and results[0].rejected == [{"line": 4, "reason": "no assistant turn (nothing to learn from)"}]
    assert results[0].train_conversations + results[0].heldout_conversations == 59
    summary = json.loads((tmp_path / "dlg" / "dialogue.json").read_text())
    assert [r["steps"] for r in summary["runs"]] == [r.steps for r in results]


def one_line(text: str) -> str:
    """rich wraps long error lines at the terminal width; the message is one line before that."""
    return " ".join(text.split()).replace("/ ", "/")


def test_cli_sft_and_chat(world, tmp_path, capsys):
    out = tmp_path / "run"
    data = tmp_path / "chat.jsonl"
    data.write_text("\n".join(world.chat.read_text().splitlines()[:40]) + "\n")
    rc = main(["sft", str(world.base), "--data", str(data), "--out", str(out), "--epochs", "1", "--lr", "0.003",
               "--device", "cpu", "--no-export", "--json"])
    assert rc == 0
    payload = json.loads(capsys.readouterr().out)  # exactly one JSON object on stdout
    assert payload["steps"] >= 2 and payload["out_dir"] == str(out.resolve())
    rc = main(["chat", str(out), "--prompt", "Where does Ama live?", "--max-new-tokens", "8", "--json"])
    reply = json.loads(capsys.readouterr().out)
    assert rc == 0 and reply["prompt"] == "Where does Ama live?" and isinstance(reply["reply"], str)
    assert main(["sft", str(world.base), "--data", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "x")]) == 2
    assert "none.jsonl: chat file not found" in one_line(capsys.readouterr().err)
    assert main(["chat", str(world.base), "--prompt", "hi"]) == 2
    assert "not a dialogue fine-tuned run" in one_line(capsys.readouterr().err)


def test_storyworld_chat_file_is_usable(world):
    data = read_chat_file(world.chat)
    assert len(data.conversations) >= 50 and not data.rejected
