"""The chat format: bad lines rejected with their number and reason, encoding, and the assistant-only loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bookmix.errors import BookmixError
from bookmix.models.chat import (
    END_TOKEN,
    Conversation,
    chat_token_ids,
    encode_chats,
    read_chat_file,
    render,
    with_chat_tokens,
)
from bookmix.models.config import ModelConfig
from bookmix.models.model import IGNORE_INDEX, LM
from bookmix.training.sft import grow_vocab, pad_batch

GOOD = {"messages": [{"role": "user", "content": "Where does Ama live?"}, {"role": "assistant", "content": "In Dorn."}]}


def test_bad_lines_are_rejected_with_number_and_reason(tmp_path):
    lines = [
        json.dumps(GOOD),
        json.dumps({"messages": [{"content": "hi"}, {"role": "assistant", "content": "hello"}]}),
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]}),
        json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),
        "{not json",
        json.dumps({"messages": [{"role": "narrator", "content": "x"}, {"role": "assistant", "content": "y"}]}),
        "",
        json.dumps({"messages": [{"role": "system", "content": "Be brief."}, *GOOD["messages"]]}),
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = read_chat_file(path)
    assert [c.line for c in data.conversations] == [1, 8]
    reasons = {r.line: r.reason for r in data.rejected}
    assert set(reasons) == {2, 3, 4, 5, 6}
    assert "missing role" in reasons[2]
    assert "empty message" in reasons[3]
    assert "no assistant turn" in reasons[4]
    assert "not valid JSON" in reasons[5]
    assert "narrator" in reasons[6]


def test_a_file_with_nothing_usable_is_an_error(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"messages": []}) + "\n", encoding="utf-8")
    with pytest.raises(BookmixError, match=r"chat.jsonl: no usable conversation .*line 1"):
        read_chat_file(path)
    with pytest.raises(BookmixError, match="not found"):
        read_chat_file(tmp_path / "missing.jsonl")


def test_mask_covers_assistant_text_and_its_end_token_only(world):
    tok = with_chat_tokens(world.library.tokenizer)
    assert tok.get_vocab_size() == world.library.vocab_size + 4  # book tokens keep their ids
    conv = Conversation.of(("system", "Be brief."), ("user", "Where does Ama live?"), ("assistant", "Ama lives in Dorn."),
                           ("user", "And Bo?"), ("assistant", "Bo lives in Vel."))
    (ids, mask), = encode_chats(tok, [conv])
    assert tok.decode(ids.tolist(), skip_special_tokens=False) == render(conv.messages)
    learned = tok.decode(ids[mask].tolist(), skip_special_tokens=False)
    assert learned == f"Ama lives in Dorn.{END_TOKEN}Bo lives in Vel.{END_TOKEN}"
    assert mask.sum() < len(mask) // 2 + 10 and not mask[0]


def test_only_assistant_tokens_carry_loss(world):
    """The gradient of the loss reaches the logits only at positions whose next token is an assistant token."""
    tok = with_chat_tokens(world.library.tokenizer)
    ids = chat_token_ids(tok)
    convs = [Conversation.of(("user", "What does Ama carry?"), ("assistant", "Ama carries a lamp.")),
             Conversation.of(("user", "Hi"), ("assistant", "Hello."), ("user", "Who are you?"), ("assistant", "A model."))]
    examples = encode_chats(tok, convs)
    model = grow_vocab(LM(ModelConfig(vocab_size=world.library.vocab_size, n_layer=1, n_head=2, d_model=32, block_size=64)),
                       tok.get_vocab_size())
    x, y = pad_batch(examples, 64, ids.end)
    logits, _ = model(x)
    logits.retain_grad()
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX)
    loss.backward()
    touched = logits.grad.abs().sum(-1) > 0  # (B, L)
    expected = torch.zeros_like(touched)
    for row, (e_ids, e_mask) in enumerate(examples):
        expected[row, : len(e_ids) - 1] = torch.from_numpy(e_mask[1:])
    assert torch.equal(touched, expected)
    assert int(expected.sum()) == sum(int(m.sum()) for _, m in examples)
    # padding (the shorter first row) is never learned
    assert not touched[0, len(examples[0][0]) - 1:].any()


def test_grow_vocab_keeps_old_rows_and_ties():
    model = LM(ModelConfig(vocab_size=300, n_layer=1, n_head=2, d_model=32, block_size=16))
    old = model.model.embed_tokens.weight.detach().clone()
    grow_vocab(model, 304)
    w = model.model.embed_tokens.weight
    assert w.shape == (304, 32) and model.cfg.vocab_size == 304
    assert torch.equal(w[:300], old) and torch.allclose(w[300], old.mean(0))
    assert model.lm_head.weight is w
    logits, _ = model(torch.tensor([[1, 303]]))
    assert logits.shape == (1, 2, 304) and np.isfinite(logits.detach().numpy()).all()
