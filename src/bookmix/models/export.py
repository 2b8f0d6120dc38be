"""Export a trained checkpoint as a Hugging Face ``LlamaForCausalLM`` folder.

Our parameter names already are Llama's, so the weights are copied as they are; a tied head is stored once, as
``model.embed_tokens.weight``, with ``tie_word_embeddings: true``. config.json is written by hand, with keys both
transformers 4 (``rope_theta``) and 5 (``rope_parameters``) read, so exporting needs no transformers install. The
tokenizer is the library's ``tokenizer.json`` wrapped as a ``PreTrainedTokenizerFast``, a class both versions have.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from safetensors.torch import save as st_save

from bookmix.errors import BookmixError
from bookmix.models.config import ModelConfig
from bookmix.utils.io import atomic_write_bytes, atomic_write_json

# Names a library tokenizer may give its end-of-book token, most specific first: it becomes the eos token.
_EOS_HINTS = ("eob", "endofbook", "endoftext", "eos", "</s>", "end")


def hf_config(cfg: ModelConfig, eos_id: int | None = None, bos_id: int | None = None) -> dict:
    """A LlamaConfig as a plain dict (what ``LlamaConfig.to_dict`` would hold for our shapes)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.ff_dim,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.block_size,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,  # transformers 4
        "rope_scaling": None,
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},  # transformers 5
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": cfg.init_std,
        "tie_word_embeddings": cfg.tie_embeddings,
        "use_cache": True,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "pad_token_id": None,
        "torch_dtype": "float32",  # transformers 4
        "dtype": "float32",  # transformers 5
    }


def _special_tokens(tokenizer_json: Path) -> dict[str, str]:
    """Pick eos (and unk/pad) among the tokenizer's special tokens by name."""
    try:
        data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BookmixError(f"{tokenizer_json}: not a readable tokenizer.json ({exc})") from None
    specials = [t["content"] for t in data.get("added_tokens", []) if t.get("special")]
    found: dict[str, str] = {}
    for hint in _EOS_HINTS:
        match = next((s for s in specials if hint in s.lower()), None)
        if match:
            found["eos_token"] = match
            break
    for role, hint in (("unk_token", "unk"), ("pad_token", "pad")):
        match = next((s for s in specials if hint in s.lower()), None)
        if match:
            found[role] = match
    return found


def export_hf(checkpoint_dir: str | Path, out_dir: str | Path, tokenizer_json: str | Path | None = None) -> Path:
    """Write a ``LlamaForCausalLM`` folder for the model in ``checkpoint_dir`` (a run folder or its checkpoint/).

    Files: config.json, generation_config.json, model.safetensors and, given ``tokenizer_json``, tokenizer.json,
    tokenizer_config.json and special_tokens_map.json. Each file is written atomically.
    """
    from bookmix.training.checkpoint import load_model, weights  # torch-heavy: only when exporting

    model, cfg, _meta = load_model(checkpoint_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    eos_id = None
    if tokenizer_json is not None:
        tokenizer_json = Path(tokenizer_json)
        if not tokenizer_json.is_file():
            raise BookmixError(f"{tokenizer_json}: tokenizer file not found")
        specials = _special_tokens(tokenizer_json)
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tokenizer_json))
        if tok.get_vocab_size() > cfg.vocab_size:
            raise BookmixError(f"{tokenizer_json}: {tok.get_vocab_size()} tokens but the model has only {cfg.vocab_size}")
        if "eos_token" in specials:
            eos_id = tok.token_to_id(specials["eos_token"])
        shutil.copyfile(tokenizer_json, out / ".tokenizer.json.tmp")
        (out / ".tokenizer.json.tmp").replace(out / "tokenizer.json")
        atomic_write_json(out / "tokenizer_config.json", {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": cfg.block_size,
            "clean_up_tokenization_spaces": False,
            **specials,
        })
        atomic_write_json(out / "special_tokens_map.json", specials)

    atomic_write_json(out / "config.json", hf_config(cfg, eos_id=eos_id))
    atomic_write_json(out / "generation_config.json", {"eos_token_id": eos_id, "max_length": cfg.block_size})
    tensors = {k: v.float().cpu() for k, v in weights(model).items()}
    atomic_write_bytes(out / "model.safetensors", st_save(tensors, metadata={"format": "pt"}))
    return out
