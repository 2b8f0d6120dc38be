"""Export to Hugging Face: transformers loads the folder and computes the same logits as our model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from bookmix.models.config import ModelConfig
from bookmix.models.export import export_hf
from bookmix.recipes.stream import ArrayWindows
from bookmix.training.checkpoint import load_model
from bookmix.training.config import TrainConfig
from bookmix.training.loop import train

transformers = pytest.importorskip("transformers")

TEXT = [
    "It was the best of times, it was the worst of times, it was the age of wisdom.",
    "Call me Ishmael. Some years ago, never mind how long precisely, I thought I would sail about a little.",
    "Все счастливые семьи похожи друг на друга, каждая несчастливая семья несчастлива по-своему.",
] * 20


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory):
    from bookmix.library.tokenizer import EOB_TOKEN, save, train_bpe

    tok = train_bpe(TEXT, vocab_size=300)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    save(tok, path)
    assert tok.token_to_id(EOB_TOKEN) is not None
    return path


def _trained_run(tmp_path, cfg: ModelConfig):
    tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, 4000)
    # A few real steps, so the weights are no longer the initialisation (norm gains move off 1).
    train(cfg, TrainConfig(micro_batch=4, lr=1e-2, warmup=0), ArrayWindows(tokens, 32), tmp_path / "run",
          device="cpu")
    return tmp_path / "run"


@pytest.mark.parametrize(
    "overrides", [{}, {"tie_embeddings": False, "n_kv_head": 2}], ids=["tied", "untied-gqa"]
)
def test_transformers_loads_export_with_equal_logits(tmp_path, tokenizer_file, overrides):
    cfg = dataclasses.replace(ModelConfig(vocab_size=300, n_layer=2, n_head=4, d_model=64, block_size=32), **overrides)
    run = _trained_run(tmp_path, cfg)
    out = export_hf(run, tmp_path / "hf", tokenizer_json=tokenizer_file)

    hf_cfg = json.loads((out / "config.json").read_text())
    assert hf_cfg["max_position_embeddings"] == 32
    assert hf_cfg["architectures"] == ["LlamaForCausalLM"]
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert type(hf).__name__ == "LlamaForCausalLM"
    assert hf.config.tie_word_embeddings == cfg.tie_embeddings

    ours, _, _ = load_model(run)
    idx = torch.randint(0, 300, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ours(idx)[0]
        got = hf(input_ids=idx).logits
    assert (got - expected).abs().max().item() < 1e-4
    assert sum(p.numel() for p in hf.parameters()) == cfg.total_params


def test_exported_tokenizer_loads_as_fast_tokenizer(tmp_path, tokenizer_file):
    from tokenizers import Tokenizer

    run = _trained_run(tmp_path, ModelConfig(vocab_size=300, n_layer=1, n_head=2, d_model=32, block_size=32))
    out = export_hf(run, tmp_path / "hf", tokenizer_json=tokenizer_file)
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    assert type(hf_tok).__name__ in {"PreTrainedTokenizerFast", "TokenizersBackend"}
    text = "Call me Ishmael, said the sailor."
    assert hf_tok(text)["input_ids"] == Tokenizer.from_file(str(tokenizer_file)).encode(text).ids
    assert hf_tok.eos_token == "<|endofbook|>"
    assert json.loads((out / "config.json").read_text())["eos_token_id"] == hf_tok.eos_token_id


def test_export_refuses_a_folder_without_checkpoint(tmp_path):
    from bookmix.errors import BookmixError

    with pytest.raises(BookmixError, match="no checkpoint"):
        export_hf(tmp_path, tmp_path / "hf")
