"""The token store: flat little-endian shards ``tokens/00000.bin ...`` of token ids, appended to, read via memmaps.

Each book is written as its tokens followed by one end-of-book id, so a whole shard is a ready-made stream with
separators while a single book is the slice ``[offset, offset + tokens)`` without it. The catalog holds
(shard, offset, tokens); bytes past the last committed book are leftovers of a killed ingest and are cut off by
:meth:`ShardWriter.recover`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bookmix.utils.io import fsync_dir

TOKENS_DIR = "tokens"
# 1 GiB shards: few enough files for a million books (~250 GB of uint16 tokens → ~250 files), small enough to copy.
DEFAULT_SHARD_BYTES = 1 << 30


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (vocabulary ≤ 65536), else uint32; little-endian on disk whatever the machine."""
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def shard_path(root: Path, index: int) -> Path:
    return root / TOKENS_DIR / f"{index:05d}.bin"


class ShardReader:
    """Read-only memmaps of the shards, reopened when a shard has grown past the mapped length."""

    def __init__(self, root: Path, dtype: np.dtype) -> None:
        self.root = root
        self.dtype = np.dtype(dtype)
        self._maps: dict[int, np.ndarray] = {}

    def shard(self, index: int) -> np.ndarray:
        path = shard_path(self.root, index)
        if not path.exists():
            raise FileNotFoundError(path)
        n = path.stat().st_size // self.dtype.itemsize
        m = self._maps.get(index)
        if m is None or len(m) != n:
            m = np.memmap(path, dtype=self.dtype, mode="r", shape=(n,)) if n else np.zeros(0, self.dtype)
            self._maps[index] = m
        return m

    def read(self, index: int, offset: int, length: int) -> np.ndarray:
        m = self._maps.get(index)
        if m is None or offset + length > len(m):
            m = self.shard(index)
            if offset + length > len(m):
                raise ValueError(f"{shard_path(self.root, index)}: holds {len(m)} tokens, book needs {offset + length}")
        return m[offset : offset + length]


class ShardWriter:
    """Append books to the current shard, rolling over to a new one at ``shard_bytes``.

    Appends are buffered by the OS; :meth:`sync` makes them durable and must run before the catalog rows that point
    at them are committed.
    """

    def __init__(self, root: Path, dtype: np.dtype, eob_id: int, shard_bytes: int = DEFAULT_SHARD_BYTES) -> None:
        self.root = root
        self.dtype = np.dtype(dtype)
        self.eob = np.array([eob_id], dtype=self.dtype)
        self.shard_bytes = int(shard_bytes)
        (root / TOKENS_DIR).mkdir(parents=True, exist_ok=True)
        self.index = 0
        self.length = 0  # tokens in the current shard
        self._fh = None

    def recover(self, committed: dict[int, int]) -> None:
        """Cut every shard back to its committed length (tokens) and continue after the last one.

        ``committed`` maps shard index → end of its last catalogued book (end-of-book token included); shards the
        catalog never mentions are removed, so a kill between writing tokens and committing leaves no trace.
        """
        for path in sorted((self.root / TOKENS_DIR).glob("*.bin")):
            index = int(path.stem)
            keep = committed.get(index, 0) * self.dtype.itemsize
            if index not in committed:
                path.unlink()
            elif path.stat().st_size != keep:
                with open(path, "r+b") as fh:
                    fh.truncate(keep)
                    os.fsync(fh.fileno())
        fsync_dir(self.root / TOKENS_DIR)
        if committed:
            self.index = max(committed)
            self.length = committed[self.index]

    def append(self, tokens: np.ndarray) -> tuple[int, int]:
        """Write one book (plus its end-of-book id); returns (shard, offset)."""
        need = (len(tokens) + 1) * self.dtype.itemsize
        if self.length and self.length * self.dtype.itemsize + need > self.shard_bytes:
            self._close()
            self.index += 1
            self.length = 0
        if self._fh is None:
            self._fh = open(shard_path(self.root, self.index), "ab")  # noqa: SIM115 - stays open across appends
        offset = self.length
        self._fh.write(np.ascontiguousarray(tokens, dtype=self.dtype).tobytes())
        self._fh.write(self.eob.tobytes())
        self.length += len(tokens) + 1
        return self.index, offset

    def sync(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def _close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None
            fsync_dir(self.root / TOKENS_DIR)

    def close(self) -> None:
        self._close()
