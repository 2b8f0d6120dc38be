"""Fine-tune mode: a tiny randomly initialised Llama saved to a local folder (never the hub) continues pretraining on
a recipe with LoRA or fully, and is evaluated like any trial."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bookmix.errors import BookmixError
from bookmix.evals import evaluate
from bookmix.library.tokenizer import save, train_bpe
from bookmix.recipes import Recipe
from bookmix.recipes.heldout import holdout_windows
from bookmix.training.config import TrainConfig
from bookmix.training.evaluate import heldout_loss, sample_windows
from bookmix.training.finetune import CausalLMAdapter, FinetuneConfig, load_base, load_finetuned
from bookmix.trial import finetune_recipe

SUITE = {
    "name": "tiny",
    "tasks": [{"name": "heldout", "type": "heldout_loss", "max_books": 2, "tokens_per_book": 256, "by": []}],
    "objective": {"metric": "heldout/loss", "direction": "minimize"},
}
TRAIN = TrainConfig(micro_batch=8, lr=1e-2, warmup=2, log_every=2)


def tiny_llama(folder, vocab_size: int, tokenizer_json):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    shutil.copyfile(tokenizer_json, folder / "tokenizer.json")
    return folder


@pytest.fixture(scope="module")
def base(world, tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("hf") / "base", world.library.vocab_size, world.library.path / "tokenizer.json")


@pytest.fixture(scope="module")
def recipe(world):
    return Recipe.from_dict({"books": [b.id for b in world.library.books(split="train")][:4], "epochs": 1})


def test_lora_trial_end_to_end(world, base, recipe, tmp_path):
    ft = FinetuneConfig(base=base, method="lora", lora_r=4)
    result = finetune_recipe(world.library.path, recipe, ft, TRAIN, tmp_path / "trial")
    assert result.status == "completed" and result.steps > 5

    # only the adapters are trained and checkpointed
    stored = load_file(tmp_path / "trial" / "checkpoint" / "model.safetensors")
    assert stored and all("lora_" in k for k in stored)
    # the held-out loss beats the untouched base on the same windows
    held = sample_windows(holdout_windows(world.library, 64, TRAIN.eval_windows), TRAIN.eval_windows)
    untouched = CausalLMAdapter(load_base(FinetuneConfig(base=base, method="full"), 0), 64)
    before = heldout_loss(untouched, held, 8, torch.device("cpu"), torch.float32)
    assert result.heldout_loss < before - 0.02

    # the merged export is a plain transformers model scoring exactly like the trained adapters did
    model, T = load_finetuned(tmp_path / "trial")
    assert T == 64 and not any("lora" in n for n, _ in model.named_parameters())
    assert heldout_loss(model, held, 8, torch.device("cpu"), torch.float32) == pytest.approx(result.heldout_loss, abs=1e-4)
    er = evaluate(model, _suite(), world.library, block_size=T, cache=False)
    assert np.isfinite(er.objective.value) and er.objective.value < before + 0.5
    assert (tmp_path / "trial" / "adapter" / "adapter_config.json").is_file()

    # finished: the same call returns the stored result
    assert finetune_recipe(world.library.path, recipe, ft, TRAIN, tmp_path / "trial") == result


def test_full_finetune_learns_more_and_stores_every_weight(world, base, recipe, tmp_path):
    result = finetune_recipe(world.library.path, recipe, FinetuneConfig(base=base, method="full"), TRAIN, tmp_path / "t")
    stored = load_file(tmp_path / "t" / "checkpoint" / "model.safetensors")
    assert "model.embed_tokens.weight" in stored and not any("lora" in k for k in stored)
    assert result.heldout_loss < np.log(world.library.vocab_size) - 0.3


def test_a_killed_lora_run_resumes_to_the_same_adapters(world, base, recipe, tmp_path):
    ft = FinetuneConfig(base=base, method="lora", lora_r=4)
    cfg = TRAIN.model_copy(update={"checkpoint_every": 2})
    finetune_recipe(world.library.path, recipe, ft, cfg, tmp_path / "whole")

    def crash(record):
        if record.get("step") == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune_recipe(world.library.path, recipe, ft, cfg, tmp_path / "cut", on_log=crash)
    finetune_recipe(world.library.path, recipe, ft, cfg, tmp_path / "cut")
    a = load_file(tmp_path / "whole" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_base_with_another_tokenizer_is_a_clear_error(world, recipe, tmp_path):
    other = train_bpe(["completely different text about ships and storms " * 50], vocab_size=300)
    save(other, tmp_path / "other.json")
    base = tiny_llama(tmp_path / "base", world.library.vocab_size, tmp_path / "other.json")
    with pytest.raises(BookmixError, match=r"tokenizer.json: the base model's tokenizer differs from the library's"):
        finetune_recipe(world.library.path, recipe, FinetuneConfig(base=base), TRAIN, tmp_path / "t")
    with pytest.raises(BookmixError, match="not a Hugging Face model folder"):
        finetune_recipe(world.library.path, recipe, FinetuneConfig(base=tmp_path), TRAIN, tmp_path / "t")


def _suite():
    from bookmix.evals import Suite

    return Suite.from_dict(SUITE)
