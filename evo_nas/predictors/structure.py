"""Infer an undeclared cell DAG from labelled genomes, so a plain CSV space gets live-path features.

A user who loads a cell benchmark from a CSV (NAS-Bench-201: six operation columns) declares no
graph, and one-hot codes cannot see that the zero op switches other edges off: Kendall tau ~0.65
at 100 architectures against ~0.77 with the cell declared. Yet the hypotheses are few enough to
test one by one: genes that share one option list are the edges of a complete DAG on ``k`` nodes
(3 or 6 genes), in some order, with one of the options (or none) the zero op. Each hypothesis is
scored by the leave-one-out error of scikit-learn's ``RidgeCV`` on rank targets over its
live-path features; the plain space (over its own code) is a candidate too, and wins ties.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections import OrderedDict
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import RidgeCV

from evo_nas.cell import CellGraph, cell_features
from evo_nas.predictors.encoding import GenomeEncoder
from evo_nas.predictors.validation import check_targets
from evo_nas.space import SearchSpace

__all__ = ["MAX_CELL_EDGES", "MIN_ROWS", "cell_hypotheses", "edge_group", "hypothesis_scores",
           "infer_cell", "scan_rows"]

MAX_CELL_EDGES = 6
"""Largest group of edge genes tried: a complete DAG on 4 nodes (6!/2 edge orders per zero op).
Ten edges (5 nodes) would be 1.8 million orders; declare such a cell (``SearchSpace(cell=...)``)."""
MIN_ROWS = 75
"""Fewer labelled genomes than this: no inference, the plain code is used."""
_ALPHAS = (0.3, 3.0, 30.0, 300.0)
_MEMO: OrderedDict[str, np.ndarray] = OrderedDict()  # hypothesis_scores by input hash
_MEMO_SIZE = 64


def _complete_dag(k: int) -> list[tuple[int, int]]:
    """Edges of the complete DAG on nodes 0..k-1, in NB201's order ((0,1), (0,2), (1,2), ...)."""
    return [(a, b) for b in range(1, k) for a in range(b)]


def edge_group(space: SearchSpace) -> list[str]:
    """The largest group of unconditional genes sharing one option list whose size is the edge
    count of a complete DAG on 3 or more nodes (3, 6, ...), at most :data:`MAX_CELL_EDGES`."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for c in space.choices:
        if c.active_if is None and len(c.options) >= 2:
            groups.setdefault(tuple(c.options), []).append(c.name)
    sizes = {k * (k - 1) // 2 for k in range(3, 10)}
    fits = [g for g in groups.values() if len(g) in sizes and len(g) <= MAX_CELL_EDGES]
    return max(fits, key=len) if fits else []


def cell_hypotheses(space: SearchSpace) -> list[CellGraph]:
    """Every cell graph :func:`infer_cell` tries on ``space`` (empty when no gene group fits).

    Each order of the edge genes over the complete DAG's edges, one of each mirror pair (the
    reversed DAG has the same paths, hence the same features), times each zero op (an option
    of the genes, or none)."""
    genes = edge_group(space)
    if not genes:
        return []
    k = next(k for k in range(3, 10) if k * (k - 1) // 2 == len(genes))
    edges = _complete_dag(k)
    mirror = [edges.index((k - 1 - b, k - 1 - a)) for a, b in edges]
    zeros = (None, *space[genes[0]].options)
    out = []
    for perm in itertools.permutations(range(len(edges))):
        if tuple(mirror[p] for p in perm) < perm:
            continue
        graph = {g: edges[p] for g, p in zip(genes, perm, strict=True)}
        out.extend(CellGraph(graph, zero=z) for z in zeros)
    return out


def _loo_score(F: np.ndarray, t: np.ndarray) -> float:
    """Leave-one-out R^2 of ridge regression (scikit-learn's ``RidgeCV``) on targets ``t``."""
    sd = F.std(0)
    F = (F[:, sd > 0] - F.mean(0)[sd > 0]) / sd[sd > 0]
    model = RidgeCV(alphas=_ALPHAS).fit(F, t)
    return float(1.0 + model.best_score_ / t.var())


def hypothesis_scores(space: SearchSpace, X: Any, y: Any) -> np.ndarray:
    """Leave-one-out R^2 of ridge regression on rank targets for the plain space (entry 0, over
    its ``"auto"`` code) and each graph of :func:`cell_hypotheses` (over its live-path features
    alone, :func:`~evo_nas.cell.cell_features`: with the one-hot and count blocks beside them,
    graphs that fit the surrogate loop's clustered samples by memorising won more often).
    Memoised on the inputs (a pure function: results never depend on what ran before)."""
    X = space.canonical(np.asarray(X))
    y = check_targets(y, len(X), owner="hypothesis_scores")
    h = hashlib.sha1(repr([(c.name, c.options, c.active_if) for c in space.choices]).encode())
    h.update(np.ascontiguousarray(X, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(y, dtype=float).tobytes())
    key = h.hexdigest()
    if key not in _MEMO:
        t = rankdata(y) / len(y)
        plain = _loo_score(GenomeEncoder(space, "auto").fit_transform(X), t)
        _MEMO[key] = np.array([plain] + [
            _loo_score(cell_features(dataclasses.replace(space, cell=g), X), t)
            for g in cell_hypotheses(space)])
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    _MEMO.move_to_end(key)
    return _MEMO[key].copy()


def infer_cell(space: SearchSpace, X: Any, y: Any) -> tuple[CellGraph | None, float]:
    """The cell graph that best explains ``y`` over genomes ``X`` of ``space``, or ``None``.

    Rows count in the order given (the order they were evaluated): each candidate's
    :func:`hypothesis_scores` are summed over the nested prefixes of ``MIN_ROWS * 2**j`` rows
    that fit in ``X``, so the first rows (in a search, its random initial design) weigh most and
    a search's later, clustered picks cannot outvote them alone (on the surrogate loop's own
    training sets the true NB201 graph then wins 20 of 20 at 150 and 300 rows, 15 of 20 on the
    150-row prefix alone). Returns ``(graph, mean score)``; ``graph`` is ``None`` when the plain
    space scores at least as well, when ``space`` already declares a cell or has no gene group
    that could be one, or when ``X`` has fewer than :data:`MIN_ROWS` rows."""
    X = space.canonical(np.asarray(X))
    y = check_targets(y, len(X), owner="infer_cell")
    if space.cell is not None or len(X) < MIN_ROWS or not edge_group(space):
        return None, float("nan")
    prefixes = _prefixes(len(X))
    total = sum(hypothesis_scores(space, X[:p], y[:p]) for p in prefixes)
    best = int(np.argmax(total))  # the first maximum: the plain space wins ties
    graph = None if best == 0 else cell_hypotheses(space)[best - 1]
    return graph, float(total[best] / len(prefixes))


def scan_rows(n: int) -> int:
    """How many of ``n`` rows :class:`~evo_nas.predictors.CellInferenceRegressor` scans: the
    largest ``MIN_ROWS * 2**j`` not above ``n``. Refits on a growing archive then rescan only
    when it doubles (the surrogate loop refits every round), and earlier prefixes come from the
    memo."""
    return _prefixes(n)[-1]


def _prefixes(n: int) -> list[int]:
    """``MIN_ROWS * 2**j`` for every ``j`` that fits in ``n`` rows (at least ``MIN_ROWS``)."""
    out = [MIN_ROWS]
    while 2 * out[-1] <= n:
        out.append(2 * out[-1])
    return out
