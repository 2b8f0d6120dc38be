"""The chat format: special tokens, the template, reading chat jsonl, encoding with an assistant-only loss mask,
and sampling a reply.

A conversation is rendered with no extra whitespace, every turn a role token, its text and an end token::

    <|system|>You answer briefly.<|end|><|user|>Where does Ama live?<|end|><|assistant|>Ama lives in Dorn.<|end|>

The role and end tokens are *added* special tokens: they get ids after the library's vocabulary, so every book token
keeps its id (the eval suite, which encodes with the library's tokenizer, still scores the model unchanged), and the
text between two special tokens is encoded exactly as the Hugging Face tokenizer encodes the whole rendered string —
which is what makes :data:`CHAT_TEMPLATE` (Jinja, for ``apply_chat_template``) and :func:`encode_chats` agree.

Loss is on assistant turns only: the assistant's text and its end token (so the model learns to stop), never the
role tokens or what the user wrote.

No torch at import time; :func:`generate` imports it when called.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bookmix.errors import BookmixError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from tokenizers import Tokenizer

ROLES = ("system", "user", "assistant")
ROLE_TOKENS = {role: f"<|{role}|>" for role in ROLES}
END_TOKEN = "<|end|>"
CHAT_TOKENS = (*ROLE_TOKENS.values(), END_TOKEN)
"""Added to the tokenizer in this order, after its last id."""

# Jinja for transformers' apply_chat_template: the same rendering as encode_chats. The {% generation %} block marks
# assistant text for ``return_assistant_tokens_mask``; on one line so that no template whitespace leaks into the text.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|' + message['role'] + '|>' }}"
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}"
    "{%- else -%}"
    "{{ message['content'] + '<|end|>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>' }}{%- endif -%}"
)


# ---- records ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Conversation:
    messages: tuple[Message, ...]
    line: int
    """1-based line of the chat file it came from (0 when built in code)."""

    @classmethod
    def of(cls, *turns: tuple[str, str]) -> Conversation:
        return cls(tuple(Message(r, c) for r, c in turns), 0)


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class ChatData:
    path: Path
    conversations: list[Conversation]
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True)
class ChatTokens:
    """Ids of the chat tokens in one tokenizer."""

    system: int
    user: int
    assistant: int
    end: int

    def role(self, name: str) -> int:
        return getattr(self, name)


# ---- the tokenizer ---------------------------------------------------------------------------------------------------
def with_chat_tokens(tokenizer: Tokenizer) -> Tokenizer:
    """A copy of ``tokenizer`` with the chat tokens added as special tokens (unchanged where they already are)."""
    from tokenizers import AddedToken, Tokenizer

    tok = Tokenizer.from_str(tokenizer.to_str())
    missing = [t for t in CHAT_TOKENS if tok.token_to_id(t) is None]
    if missing:
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in missing])
    return tok


def chat_token_ids(tokenizer: Tokenizer) -> ChatTokens:
    ids = [tokenizer.token_to_id(t) for t in CHAT_TOKENS]
    if any(i is None for i in ids):
        raise BookmixError(f"tokenizer: has no chat tokens {', '.join(CHAT_TOKENS)} (was the model fine-tuned for chat?)")
    return ChatTokens(*[i for i in ids if i is not None])


# ---- reading chat files ------------------------------------------------------------------------------------------------
def parse_conversation(obj: object, line: int = 0) -> Conversation:
    """A ``{"messages": [{"role", "content"}, ...]}`` mapping as a Conversation; ValueError says what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ValueError(f"messages[{i}]: expected an object with role and content")
        role, content = m.get("role"), m.get("content")
        if role is None:
            raise ValueError(f"messages[{i}]: missing role")
        if role not in ROLES:
            raise ValueError(f"messages[{i}].role: {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"messages[{i}]: empty message")
        if any(t in content for t in CHAT_TOKENS):
            raise ValueError(f"messages[{i}]: content holds a chat control token")
        out.append(Message(role, content))
    if not any(m.role == "assistant" for m in out):
        raise ValueError("no assistant turn (nothing to learn from)")
    return Conversation(tuple(out), line)


def read_chat_file(path: str | Path) -> ChatData:
    """Every usable conversation of a chat jsonl file; a bad line is rejected with its number and reason, the rest
    is used. A missing file, or one with no usable line at all, is a BookmixError."""
    path = Path(path)
    if not path.is_file():
        raise BookmixError(f"{path}: chat file not found")
    convs, rejected = [], []
    with path.open(encoding="utf-8") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                convs.append(parse_conversation(json.loads(raw), n))
            except json.JSONDecodeError as exc:
                rejected.append(Rejected(n, f"not valid JSON ({exc.msg})"))
            except ValueError as exc:
                rejected.append(Rejected(n, str(exc)))
    if not convs:
        first = f"; line {rejected[0].line}: {rejected[0].reason}" if rejected else ""
        raise BookmixError(f"{path}: no usable conversation ({len(rejected)} line(s) rejected{first})")
    return ChatData(path, convs, rejected)


# ---- rendering and encoding ---------------------------------------------------------------------------------------------
def render(messages: list[dict] | tuple[Message, ...], add_generation_prompt: bool = False) -> str:
    """The rendered text (what :data:`CHAT_TEMPLATE` produces)."""
    turns = [(m.role, m.content) if isinstance(m, Message) else (m["role"], m["content"]) for m in messages]
    text = "".join(f"{ROLE_TOKENS[r]}{c}{END_TOKEN}" for r, c in turns)
    return text + (ROLE_TOKENS["assistant"] if add_generation_prompt else "")


def encode_chats(
    tokenizer: Tokenizer, convs: list[Conversation], add_generation_prompt: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ids int64, loss mask bool) per conversation. The mask is True on the tokens a model is trained to produce:
    each assistant turn's text and its end token. All turn texts go through one batched tokenizer call."""
    ids = chat_token_ids(tokenizer)
    texts = [m.content for c in convs for m in c.messages]
    encoded = iter(tokenizer.encode_batch(texts, add_special_tokens=False))
    out = []
    for conv in convs:
        parts, masks = [], []
        for m in conv.messages:
            body = np.asarray(next(encoded).ids, dtype=np.int64)
            learn = m.role == "assistant"
            parts += [np.array([ids.role(m.role)]), body, np.array([ids.end])]
            masks += [np.zeros(1, bool), np.full(len(body) + 1, learn)]
        if add_generation_prompt:
            parts.append(np.array([ids.assistant]))
            masks.append(np.zeros(1, bool))
        out.append((np.concatenate(parts).astype(np.int64), np.concatenate(masks)))
    return out


# ---- sampling a reply ----------------------------------------------------------------------------------------------------
def generate(
    model: torch.nn.Module,
    prompt: np.ndarray,
    max_new_tokens: int,
    stop_ids: tuple[int, ...],
    block_size: int,
    temperature: float = 0.8,
    top_k: int | None = 40,
    seed: int = 0,
) -> np.ndarray:
    """Sample up to ``max_new_tokens`` after ``prompt`` (1-D ids), stopping at a stop id (not returned). One forward
    pass per new token over the last ``block_size`` ids; temperature 0 is greedy."""
    import torch

    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    idx = torch.as_tensor(prompt, dtype=torch.long, device=device)[None]  # (1, T)
    stops = torch.as_tensor(stop_ids, device=device)
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            out = model(idx[:, -block_size:])
            logits = (out[0] if isinstance(out, tuple) else out.logits)[:, -1, :].float()  # (1, V)
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)
            if bool(torch.isin(nxt, stops).any()):
                break
            new.append(int(nxt))
            idx = torch.cat([idx, nxt], dim=1)
    return np.asarray(new, dtype=np.int64)


def reply(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    messages: list[dict],
    block_size: int,
    max_new_tokens: int = 128,
    temperature: float = 0.8,
    top_k: int | None = 40,
    seed: int = 0,
) -> str:
    """The assistant's next turn after ``messages`` (dicts with role and content), as text. A long history keeps its
    end: the prompt is cut to leave room for the reply inside the model's context."""
    conv = Conversation(tuple(Message(m["role"], m["content"]) for m in messages), 0)
    prompt, _ = encode_chats(tokenizer, [conv], add_generation_prompt=True)[0]
    prompt = prompt[-max(block_size // 2, block_size - max_new_tokens):]  # the reply needs room too
    from bookmix.library.tokenizer import EOB_TOKEN

    ids = chat_token_ids(tokenizer)
    stops = (ids.end, *(i for i in (tokenizer.token_to_id(EOB_TOKEN),) if i is not None))
    out = generate(model, prompt, max_new_tokens, stops, block_size, temperature, top_k, seed)
    return tokenizer.decode(out.tolist(), skip_special_tokens=True)
