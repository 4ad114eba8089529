"""Latency-table prediction for a whole genome matrix at once (the search's hot path).

A table predicts one config by building its part keys (strings) and summing their entries, some
100 microseconds per config. A search asks for every new architecture of every generation, so
:meth:`evo_nas.latency.LatencyTable.batch_genomes` instead compiles the table once into arrays
indexed by gene options and maps an ``(n, n_var)`` genome matrix to latencies by fancy indexing
and a few sums:

* MobileNet tables: the stem (and OFA's fixed first block) by resolution; each block position
  by (resolution, input width, output width, kernel, expand), counted when the stage's depth
  reaches it; the tail by (resolution, last width). The arrays are filled from the part keys of
  the skeleton networks (:func:`evo_nas.nn.parts.mobilenet_skeletons`), with the very functions the
  per-config path uses, so a key format change cannot make the two disagree.
* Choice-block tables: stem + one entry per (layer, candidate) + head.
* Any other table (NAS-Bench-201 cells, user supernets): each distinct canonical genome is
  predicted once the per-config way and memoised (a dense array over the genome index when the
  space has at most :data:`DENSE_LIMIT` genomes, else a dict).

The parts are added in the per-config path's order and calibrated with the same arithmetic, so
both paths give the same float (tests check ``np.allclose`` at 1e-12 on every built-in space).
A compiled form is checked against the per-config path on random genomes when it is made; a part
the table lacks gives NaN here and the row is predicted the per-config way, which raises the
:class:`~evo_nas.latency.LatencyTableError` naming it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["DENSE_LIMIT", "GenomeLatency", "compile_genome_latency"]

DENSE_LIMIT = 1 << 22  # genomes; the memo of a larger space is a dict


class GenomeLatency(ABC):
    """Uncalibrated part sums (ms) of canonical genomes; NaN where the table lacks a part."""

    kind = "abstract"

    @abstractmethod
    def sums(self, X: np.ndarray) -> np.ndarray:
        """Part sums of genome batch ``X`` (n, n_var) -> (n,)."""


class _MobileNetSums(GenomeLatency):
    """Gathers over per-position arrays (see the module docstring)."""

    kind = "mobilenet"

    def __init__(self, table: Any) -> None:
        from evo_nas.nn.parts import mobilenet_skeletons, part_keys

        spec, space, entries = table.spec, table.space, table.entries
        idx = {n: i for i, n in enumerate(space.names)}
        n_res = len(spec.resolutions)
        self._res = idx["res"]
        self._stem = np.full(n_res, np.nan)
        self._first = np.full(n_res, np.nan) if spec.first_block else None
        # per stage: (width column, depth column, depth options, blocks); per block position:
        # (kernel column, expand column, input width column, array over the five indices)
        self._stages: list[tuple[int | None, int, np.ndarray,
                                 list[tuple[int, int, int | None, np.ndarray]]]] = []
        prev_widths: tuple[int, ...] = (spec.stem_channels,)
        prev_col: int | None = None
        slots: dict[str, tuple[np.ndarray, tuple[int | None, ...]]] = {}
        for i, st in enumerate(spec.stages):
            wcol = idx.get(f"s{i}.w")
            blocks = []
            for j in range(max(st.depths)):
                ins = prev_widths if j == 0 else st.widths
                arr = np.full((n_res, len(ins), len(st.widths), len(spec.kernels),
                               len(spec.expands)), np.nan)
                kcol, ecol = idx[f"s{i}.b{j}.k"], idx[f"s{i}.b{j}.e"]
                in_col = prev_col if j == 0 else wcol
                blocks.append((kcol, ecol, in_col, arr))
                slots[f"s{i}.b{j}"] = (arr, (self._res, in_col, wcol, kcol, ecol))
            self._stages.append((wcol, idx[f"s{i}.d"], np.array(st.depths), blocks))
            prev_widths, prev_col = st.widths, wcol
        self._head = np.full((n_res, len(prev_widths)), np.nan)
        self._head_col = prev_col
        slots["stem"] = (self._stem, (self._res,))
        if self._first is not None:
            slots["first"] = (self._first, (self._res,))
        slots["head"] = (self._head, (self._res, prev_col))
        seen: dict[tuple[str, tuple[int, ...]], str] = {}
        # every (resolution, widths) x (kernel, expand), full depth
        for cfg in mobilenet_skeletons(spec):
            x = space.encode(cfg)
            for name, key in part_keys(spec, spec.layout(space.decode(x))):
                arr, cols = slots[name]
                at = tuple(int(x[c]) if c is not None else 0 for c in cols)
                if seen.setdefault((name, at), key) != key:
                    raise _NotSeparable(f"{name} at {at}: keys {seen[name, at]!r}, {key!r}")
                arr[at] = entries.get(key, np.nan)

    def sums(self, X: np.ndarray) -> np.ndarray:
        n = len(X)
        zeros = np.zeros(n, dtype=np.int64)
        res = X[:, self._res]
        total = self._stem[res]  # a fresh array (fancy indexing copies)
        if self._first is not None:
            total += self._first[res]
        for wcol, dcol, depths, blocks in self._stages:
            w = X[:, wcol] if wcol is not None else zeros
            depth = depths[X[:, dcol]]
            for j, (kcol, ecol, in_col, arr) in enumerate(blocks):
                cin = X[:, in_col] if in_col is not None else zeros
                total += np.where(depth > j, arr[res, cin, w, X[:, kcol], X[:, ecol]], 0.0)
        last = X[:, self._head_col] if self._head_col is not None else zeros
        total += self._head[res, last]
        return total


class _ChoiceSums(GenomeLatency):
    """Stem + the chosen candidate's entry per layer + head (keys from ``latency_keys``)."""

    kind = "choice"

    def __init__(self, table: Any) -> None:
        net, space, entries = table.net, table.space, table.entries
        base = space.decode(space.smallest())
        keys = net.latency_keys(base)
        names = [name for name, _ in keys]
        if (len(keys) != len(space.names) + 2 or names[1:-1] != list(net.names)
                or set(net.names) != set(space.names)):
            raise _NotSeparable("parts are not stem, one per gene, head")
        self._stem = entries.get(keys[0][1], np.nan)
        self._head = entries.get(keys[-1][1], np.nan)
        self._layers: list[tuple[int, np.ndarray]] = []
        for pos, name in enumerate(names[1:-1], start=1):
            col = space.names.index(name)
            opts = space.choices[col].options
            arr = np.full(len(opts), np.nan)
            for o, value in enumerate(opts):
                arr[o] = entries.get(net.latency_keys({**base, name: value})[pos][1], np.nan)
            self._layers.append((col, arr))

    def sums(self, X: np.ndarray) -> np.ndarray:
        total = np.full(len(X), self._stem)
        for col, arr in self._layers:
            total += arr[X[:, col]]
        total += self._head
        return total


class _MemoSums(GenomeLatency):
    """Each distinct genome summed once the per-config way, then looked up."""

    kind = "memo"

    def __init__(self, table: Any) -> None:
        self._space = table.space
        self._sum = table.sum_parts
        n_opt = self._space.n_options
        size = float(np.prod(n_opt.astype(float)))
        # mixed-radix genome index: the last gene varies fastest
        self._radix = np.concatenate([np.cumprod(n_opt[::-1])[::-1][1:], [1]]).astype(np.int64)
        self._dense = np.full(int(size), np.nan) if size <= DENSE_LIMIT else None
        self._known = np.zeros(int(size), dtype=bool) if self._dense is not None else None
        self._memo: dict[bytes, float] = {}

    def sums(self, X: np.ndarray) -> np.ndarray:
        if self._dense is None:
            return np.array([self._lookup(row) for row in X], dtype=float)
        assert self._known is not None
        at = X @ self._radix
        for i in np.unique(at[~self._known[at]]):  # new genomes: the per-config path, once
            row = X[np.argmax(at == i)]
            self._dense[i] = self._sum(self._space.decode(row))
            self._known[i] = True
        return self._dense[at]

    def _lookup(self, row: np.ndarray) -> float:
        key = row.tobytes()
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._sum(self._space.decode(row))
        return hit


class _NotSeparable(Exception):
    """The table's parts do not have the structure a compiled form assumes."""


def compile_genome_latency(table: Any, check: int = 32, seed: int = 0) -> GenomeLatency:
    """The fastest exact form for ``table`` (a :class:`~evo_nas.latency.LatencyTable`), checked
    on ``check`` random genomes against the per-config sums; the memo when none applies."""
    from evo_nas.nn.choice import ChoiceSupernet

    makers: list[Callable[[Any], GenomeLatency]] = []
    if table.spec is not None:
        makers.append(_MobileNetSums)
    elif isinstance(table.net, ChoiceSupernet):
        makers.append(_ChoiceSums)
    space = table.space
    X = space.canonical(space.sample(check, seed)) if check else None
    for make in makers:
        try:
            fast = make(table)
        except _NotSeparable:
            continue
        if X is None:
            return fast
        got = fast.sums(X)
        ok = ~np.isnan(got)  # NaN: a part the table lacks (the per-config path raises there)
        want = np.array([table.sum_parts(c) for c in space.decode_many(X[ok])], dtype=float)
        if np.allclose(got[ok], want, rtol=1e-12, atol=1e-12):
            return fast
    return _MemoSums(table)
