"""`bookmix export hf` end to end: a nano model trained with `bookmix train` on a storyworld library, exported, loaded
by real transformers (AutoTokenizer, AutoModelForCausalLM) and scored on held-out books it never saw."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from bookmix.cli import main

transformers = pytest.importorskip("transformers")

VOCAB = 400
TRAIN_ARGS = [
    "--model",
    "nano",
    "--seq-len",
    "64",
    "--micro-batch",
    "16",
    "--lr",
    "3e-3",
    "--warmup",
    "5",
    "--max-tokens",
    str(16 * 64 * 80),
    "--log-every",
    "20",
    "--device",
    "cpu",
    "--json",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(library, run folder): 80 steps of nano on six storyworld books, two more held out."""
    from bookmix.library import Library, ingest
    from bookmix.storyworld.generate import generate

    root = tmp_path_factory.mktemp("export_cli")
    generate(root / "world", books=8, seed=0, tokens_per_book=3000)
    ingest([root / "world"], root / "lib", tokenizer=f"train:{VOCAB}", holdout=0.25, workers=1)
    lib = Library.open(root / "lib")
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"books": [b.id for b in lib.books(split="train")], "epochs": 4, "seed": 1}))
    with torch.random.fork_rng():
        assert (
            main(
                [
                    "train",
                    "--library",
                    str(root / "lib"),
                    "--recipe",
                    str(recipe),
                    "--out",
                    str(root / "run"),
                    *TRAIN_ARGS,
                ]
            )
            == 0
        )
    return lib, root / "run"


def _heldout_loss(model, tokenizer, texts: list[str], block: int = 64) -> float:
    """Mean next-token loss of a transformers model over the held-out books' text, read with its own tokenizer."""
    losses = []
    for text in texts:
        ids = tokenizer(text)["input_ids"][: block * 8]
        for lo in range(0, len(ids) - block, block):
            x = torch.tensor([ids[lo : lo + block]])
            with torch.no_grad():
                losses.append(float(model(input_ids=x, labels=x).loss))
    assert losses
    return sum(losses) / len(losses)


def test_trained_nano_exports_loads_in_transformers_and_beats_the_untrained_model(trained, tmp_path, capsys):
    lib, run = trained
    capsys.readouterr()
    assert main(["export", "hf", str(run), "--out", str(tmp_path / "hf"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    [model_info] = out["models"]
    assert model_info["kind"] == "run" and model_info["tokenizer"] == str(lib.path / "tokenizer.json")

    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    assert type(hf).__name__ == "LlamaForCausalLM" and hf.config.vocab_size == VOCAB

    # unseen text: the library's held-out books, decoded back to text and encoded again by the exported tokenizer
    texts = [lib.decode(lib.tokens(b.id)) for b in lib.books(split="holdout")]
    assert tok(texts[0])["input_ids"][:50] == lib.encode([texts[0]])[0][:50].tolist()
    trained_loss = _heldout_loss(hf, tok, texts)
    torch.manual_seed(0)
    untrained = transformers.AutoModelForCausalLM.from_config(hf.config).eval()  # the same architecture, fresh weights
    untrained_loss = _heldout_loss(untrained, tok, texts)
    assert untrained_loss > math.log(VOCAB) - 0.5  # a fresh model is near uniform over the vocabulary
    print(f"held-out loss: trained {trained_loss:.3f}, untrained {untrained_loss:.3f}")
    assert trained_loss < untrained_loss - 2.0, (trained_loss, untrained_loss)  # e^2 ≈ 7× less perplexity at least


def test_export_hf_names_what_is_missing(trained, tmp_path):
    _, run = trained
    assert main(["export", "hf", str(run)]) == 2  # no --out
    assert main(["export", "hf", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["export", "hf", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2


def test_export_hf_of_a_dialogue_layer_carries_the_chat_template(trained, tmp_path):
    from bookmix.storyworld.generate import generate
    from bookmix.training.config import SFTConfig, TrainConfig
    from bookmix.training.sft import sft

    lib, run = trained
    world = lib.path.parent / "world"
    chat = world / "chat.jsonl"
    if not chat.exists():
        generate(world, books=8, seed=0, tokens_per_book=3000)
    cfg = SFTConfig(epochs=1, train=TrainConfig(micro_batch=16, lr=1e-3, device="cpu"))
    sft(run, chat, lib.path, tmp_path / "dialogue", cfg, export=False)
    assert main(["export", "hf", str(tmp_path / "dialogue"), "--out", str(tmp_path / "hf")]) == 0
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    ids = tok.apply_chat_template([{"role": "user", "content": "Where does Ama live?"}], add_generation_prompt=True)
    if not isinstance(ids, list):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    assert tok.convert_ids_to_tokens(ids)[0] == "<|user|>" and tok.convert_ids_to_tokens(ids)[-1] == "<|assistant|>"
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert hf.config.vocab_size == len(tok)


def test_export_hf_of_a_packed_run(trained, tmp_path, capsys):
    """`bookmix train-pack` writes one run folder per recipe, exactly like `bookmix train`: each exports the same way."""
    lib, _ = trained
    ids = [b.id for b in lib.books(split="train")]
    recipes = tmp_path / "recipes.jsonl"
    recipes.write_text("\n".join(json.dumps({"books": ids[i : i + 3], "seed": i}) for i in (0, 2)) + "\n")
    argv = ["train-pack", "--library", str(lib.path), "--recipes", str(recipes), "--out", str(tmp_path / "runs")]
    argv += ["--model", "nano", "--seq-len", "64", "--pack", "2", "--max-tokens", str(8 * 64 * 4), "--micro-batch", "8"]
    assert main([*argv, "--device", "cpu", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["results"][1]["out"]
    assert main(["export", "hf", run, "--out", str(tmp_path / "hf"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["kind"] == "run"
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    from bookmix.training.checkpoint import load_model

    ours, _, _ = load_model(run)
    x = torch.tensor([[1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        assert (hf(input_ids=x).logits - ours(x)[0]).abs().max().item() < 1e-4
