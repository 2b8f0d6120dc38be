"""Recipe features: the settings of each recipe and what its books are like, as one numeric matrix.

Two halves. The *settings* (order strategy, sparsity keep / pattern / grain, epochs, set size) come from the recipe.
The *composition* (mean year, difficulty and length of the books, shares of each language, subject, genre and
cluster) comes from the library catalog, averaged over the recipe's books with one sparse product
``inclusion / set_size @ book_features``. Every column is standardised, so a factor effect reads "per +1 SD", and
every category drops its most common level, which is the reference the other levels are compared with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from bookmix.analysis.table import CATEGORICAL_SETTINGS, NUMERIC_SETTINGS, TrialTable

# Most subjects/languages/clusters are rare; shares of the commonest few carry the signal, the tail is noise and
# would only widen every interval. Eight levels per category keep the factor model small next to ~100 trials.
MAX_LEVELS = 8


@dataclass(frozen=True)
class BookInfo:
    """Catalog facts for the table's book columns (same order as ``TrialTable.book_ids``)."""

    ids: np.ndarray
    titles: np.ndarray  # str, '' where unknown
    tokens: np.ndarray | None = None  # (p,) float tokens per book, NaN where unknown; None without a catalog
    numeric: dict[str, np.ndarray] = field(default_factory=dict)  # (p,) float, NaN where unknown
    categorical: dict[str, np.ndarray] = field(default_factory=dict)  # (p,) str, '' where unknown
    multi: dict[str, list[list[str]]] = field(default_factory=dict)  # e.g. subjects: several labels per book
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # other sidecar columns (e.g. storyworld 'kind')


def _parse_json_list(v: Any) -> list[str]:
    if isinstance(v, list | tuple):
        return [str(x) for x in v]
    if isinstance(v, str) and v.startswith("["):
        try:
            return [str(x) for x in json.loads(v)]
        except ValueError:
            return []
    return [] if not v else [str(v)]


def _parse_json_dict(v: Any) -> dict[str, Any]:
    if isinstance(v, Mapping):
        return dict(v)
    if isinstance(v, str) and v.startswith("{"):
        try:
            return dict(json.loads(v))
        except ValueError:
            return {}
    return {}


def book_info(library: Any, book_ids: np.ndarray) -> BookInfo:
    """Facts about ``book_ids`` from a Library (one ``lib.table`` query) or from a columnar catalog mapping.

    ``library`` may be None (then only ids are known), an open :class:`bookmix.library.Library`, or a mapping of
    columns like ``lib.table()`` returns (``id`` plus any of ``title, lang, year, tokens, cluster, subjects,
    difficulty, extra``). Books missing from the catalog keep NaN / '' facts.
    """
    p = len(book_ids)
    if library is None:
        return BookInfo(ids=book_ids, titles=np.full(p, "", dtype=object))
    if isinstance(library, Mapping):
        cols = dict(library)
    else:
        have = set(library.columns())
        wanted = ["id", "title", "author", "lang", "year", "tokens", "cluster", "subjects", "difficulty", "extra"]
        cols = library.table(columns=[c for c in wanted if c in have])
    ids = np.asarray(cols["id"]).astype(str)
    order = np.argsort(ids)
    pos = np.searchsorted(ids[order], book_ids)
    pos = np.clip(pos, 0, max(len(ids) - 1, 0))
    found = (ids[order][pos] == book_ids) if len(ids) else np.zeros(p, bool)
    src = order[pos]

    def take(name: str, fill: Any, dtype: Any) -> np.ndarray | None:
        if name not in cols:
            return None
        out = np.full(p, fill, dtype=dtype)
        vals = np.asarray(cols[name])[src[found]]
        out[found] = vals
        return out

    titles = take("title", "", object)
    numeric: dict[str, np.ndarray] = {}
    year = take("year", np.nan, np.float64)
    if year is not None:
        numeric["year"] = year
    diff = take("difficulty", np.nan, np.float64)
    if diff is not None:
        numeric["difficulty"] = diff
    tokens = take("tokens", np.nan, np.float64)
    if tokens is not None:
        numeric["log_tokens"] = np.log10(np.maximum(tokens, 1.0))  # length acts multiplicatively
    categorical: dict[str, np.ndarray] = {}
    lang = take("lang", "", object)
    if lang is not None:
        categorical["lang"] = np.array([str(x or "") for x in lang], dtype=object)
    cluster = take("cluster", -1, np.int64)
    if cluster is not None:
        categorical["cluster"] = np.array(["" if c < 0 else str(c) for c in cluster], dtype=object)
    multi: dict[str, list[list[str]]] = {}
    subjects = take("subjects", "[]", object)
    if subjects is not None:
        multi["subject"] = [_parse_json_list(s) for s in subjects]
    extra_cols: dict[str, np.ndarray] = {}
    extra = take("extra", "{}", object)
    if extra is not None:
        parsed = [_parse_json_dict(e) for e in extra]
        for key in sorted({k for d in parsed for k in d}):
            extra_cols[key] = np.array([str(d.get(key, "")) for d in parsed], dtype=object)
    for name in cols:  # a plain mapping may carry other label columns (e.g. 'kind' in tests)
        if name not in ("id", "title", "lang", "year", "tokens", "cluster", "subjects", "difficulty", "extra"):
            col = take(name, "", object)
            if col is not None:
                extra_cols[name] = np.array([str(x) for x in col], dtype=object)
    if "genre" in extra_cols:  # a sidecar genre is a factor; other extra columns (e.g. storyworld 'kind') are not
        categorical["genre"] = extra_cols["genre"]
    return BookInfo(
        ids=book_ids,
        tokens=tokens,
        titles=np.array(["" if t is None else str(t) for t in titles], dtype=object) if titles is not None
        else np.full(p, "", dtype=object),
        numeric=numeric,
        categorical=categorical,
        multi=multi,
        extra=extra_cols,
    )  # fmt: skip


def _levels(labels: np.ndarray, counts_weight: np.ndarray | None = None) -> list[str]:
    """Commonest non-empty levels, most common first (the first is the reference and gets no column)."""
    lab, cnt = np.unique(labels[labels != ""], return_counts=True)
    order = np.lexsort((lab, -cnt))
    return [str(x) for x in lab[order][:MAX_LEVELS]]


@dataclass(frozen=True)
class Featurizer:
    """Turns (inclusion rows, settings) into the standardised recipe-feature matrix; fitted on one TrialTable."""

    names: list[str]  # column names, e.g. 'sparsity_keep', 'order=curriculum:difficulty', 'share lang=ru'
    kinds: list[str]  # 'numeric' | 'level' | 'share' | 'mean'
    book_matrix: sp.csr_matrix  # (p, f) per-book values of the composition columns (0 where unknown)
    known_matrix: sp.csr_matrix  # (p, f) 1 where the book's value is known
    comp_names: list[str]
    setting_levels: dict[str, list[str]]  # categorical setting -> levels (reference first)
    mean: np.ndarray  # (q,) standardisation
    scale: np.ndarray  # (q,)
    keep: np.ndarray  # (q_all,) bool: columns that vary in the fitted table and are not aliases
    aliases: dict[str, str] = field(default_factory=dict)  # dropped column -> the kept column it duplicates

    def raw(self, inclusion: sp.csr_matrix, settings: Mapping[str, np.ndarray]) -> np.ndarray:
        """Unstandardised features (n, q_all)."""
        n = inclusion.shape[0]
        cols: list[np.ndarray] = []
        size = np.diff(inclusion.indptr).astype(np.float64)
        for k in NUMERIC_SETTINGS:
            cols.append(np.asarray(settings[k], dtype=np.float64))
        cols.append(size)
        for k in CATEGORICAL_SETTINGS:
            lab = np.asarray(settings[k]).astype(str)
            for level in self.setting_levels[k][1:]:
                cols.append((lab == level).astype(np.float64))
        if self.book_matrix.shape[1]:
            sums = np.asarray((inclusion @ self.book_matrix).todense())  # (n, f)
            known = np.asarray((inclusion @ self.known_matrix).todense())
            comp = np.divide(sums, known, out=np.zeros_like(sums), where=known > 0)
            cols.extend(comp.T)
        return np.column_stack(cols) if cols else np.zeros((n, 0))

    def transform(self, inclusion: sp.csr_matrix, settings: Mapping[str, np.ndarray]) -> np.ndarray:
        """Standardised features (n, q) with the columns that varied in the fitted table."""
        return (self.raw(inclusion, settings)[:, self.keep] - self.mean) / self.scale

    def table_features(self, table: TrialTable) -> np.ndarray:
        return self.transform(table.inclusion, table.settings)


def fit_featurizer(table: TrialTable, info: BookInfo) -> Featurizer:
    """Choose the columns (levels, composition features) from ``table`` and the standardisation."""
    names: list[str] = [*NUMERIC_SETTINGS, "set_size"]
    kinds: list[str] = ["numeric"] * len(names)
    setting_levels: dict[str, list[str]] = {}
    for k in CATEGORICAL_SETTINGS:
        levels = _levels(table.settings[k])
        setting_levels[k] = levels
        names += [f"{k}={lv}" for lv in levels[1:]]
        kinds += ["level"] * max(len(levels) - 1, 0)

    # Composition: per-book columns, weighted by how often each book is used so the levels reflect the campaign.
    used = np.asarray(table.inclusion.sum(axis=0)).ravel() > 0
    comp_cols: list[np.ndarray] = []
    comp_names: list[str] = []
    for name, values in info.numeric.items():
        if np.isfinite(values[used]).sum() >= 2:
            comp_cols.append(values)
            comp_names.append(f"mean {name}")
    for name, labels in info.categorical.items():
        for level in _levels(labels[used])[1:]:
            comp_cols.append(np.where(labels == "", np.nan, (labels == level).astype(np.float64)))
            comp_names.append(f"share {name}={level}")
    for name, lists in info.multi.items():
        flat = np.array([s for i, ls in enumerate(lists) if used[i] for s in ls] or [""], dtype=object)
        for level in _levels(flat.astype(str))[:MAX_LEVELS]:  # multi-label: no reference level, shares overlap
            comp_cols.append(np.array([1.0 if level in ls else 0.0 for ls in lists]))
            comp_names.append(f"share {name}={level}")
    p = len(table.book_ids)
    if comp_cols:
        m = np.column_stack(comp_cols)  # (p, f)
        known = np.isfinite(m)
        book_matrix = sp.csr_matrix(np.where(known, m, 0.0))
        known_matrix = sp.csr_matrix(known.astype(np.float64))
    else:
        book_matrix = sp.csr_matrix((p, 0))
        known_matrix = sp.csr_matrix((p, 0))
    names += comp_names
    kinds += ["mean" if c.startswith("mean ") else "share" for c in comp_names]

    proto = Featurizer(
        names=names, kinds=kinds, book_matrix=book_matrix, known_matrix=known_matrix, comp_names=comp_names,
        setting_levels=setting_levels, mean=np.zeros(0), scale=np.ones(0), keep=np.ones(len(names), bool),
    )  # fmt: skip
    raw = proto.raw(table.inclusion, table.settings)
    sd = raw.std(axis=0)
    keep = sd > 1e-12  # a setting every recipe shares has no effect to estimate
    # Aliased columns (e.g. keep < 1 always comes with pattern 'stride' and a chunk size) cannot be told apart;
    # keeping both would split one effect between them arbitrarily. Keep the first, name the alias.
    aliases: dict[str, str] = {}
    idx = np.flatnonzero(keep)
    if len(idx) > 1:
        corr = np.corrcoef(raw[:, idx], rowvar=False)
        for a in range(len(idx)):
            if not keep[idx[a]]:
                continue
            for b in range(a + 1, len(idx)):
                if keep[idx[b]] and abs(corr[a, b]) > 0.999:
                    keep[idx[b]] = False
                    aliases[names[idx[b]]] = names[idx[a]]
    return Featurizer(
        names=[n for n, k in zip(names, keep, strict=True) if k],
        kinds=[t for t, k in zip(kinds, keep, strict=True) if k],
        book_matrix=book_matrix,
        known_matrix=known_matrix,
        comp_names=comp_names,
        setting_levels=setting_levels,
        mean=raw.mean(axis=0)[keep],
        scale=sd[keep],
        keep=keep,
        aliases=aliases,
    )
