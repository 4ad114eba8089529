"""Cell graphs inferred from data (evo_nas.predictors.structure): which hypotheses are tried, a
hidden, shuffled graph recovered from 150 labelled cells of a path-defined target, the default
predictor using it, fits that do not depend on what ran before, and the real NB201 table."""

from __future__ import annotations

import csv
import pickle

import numpy as np
import pytest
from data_paths import nb201_csv
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from evo_nas.cell import CellGraph, cell_features
from evo_nas.predictors import (
    MAX_CELL_EDGES,
    CellInferenceRegressor,
    cell_hypotheses,
    infer_cell,
    kendall_tau,
    make_predictor,
    scan_rows,
)
from evo_nas.predictors.structure import MIN_ROWS
from evo_nas.space import Choice, SearchSpace
from evo_nas.spaces.nb201 import NB201_EDGES

CODES = (0, 1, 2, 3, 4)
GENES = [f"op{i}" for i in range(6)]
# the hidden graph: genes shuffled over NB201's edges, and code 2 (not 0) cuts an edge
HIDDEN = CellGraph({g: NB201_EDGES[k] for g, k in zip(GENES, (4, 0, 5, 2, 1, 3), strict=True)},
                   zero=2)


def plain_space() -> SearchSpace:
    return SearchSpace([Choice(g, CODES) for g in GENES], name="my_cells")


def all_cells() -> np.ndarray:
    return np.indices((5,) * 6).reshape(6, -1).T


def hidden_error(X: np.ndarray) -> np.ndarray:
    """A path-defined error on the hidden graph: 30 for cells cut from their output, else falling
    with the most code-3 ops a live path stacks and, less, with code-1 ops on live edges."""
    space = SearchSpace([Choice(g, CODES) for g in GENES], cell=HIDDEN)
    F = cell_features(space, X)
    alive = F[:, :4].astype(bool)
    per_path = F[:, 41:61].reshape(len(X), 4, 5)
    deepest = np.where(alive, per_path[:, :, 3], 0).max(1)
    err = 12.0 - 2.0 * deepest - 0.5 * F[:, 6 + 1]
    return np.where(alive.any(1), err, 30.0) + np.random.default_rng(0).normal(0, 0.2, len(X))


def same_paths(a: CellGraph, b: CellGraph) -> bool:
    """Same input -> output paths as gene sets (a graph and its mirror image are one cell)."""
    return {frozenset(p) for p in a.paths()} == {frozenset(p) for p in b.paths()}


def test_which_graphs_are_tried():
    hyp = cell_hypotheses(plain_space())
    assert len(hyp) == 720 // 2 * 6  # edge orders (one per mirror pair) x (no zero op, 5 codes)
    assert {h.zero for h in hyp} == {None, *CODES}
    assert len({tuple(sorted(h.edges.items())) + (h.zero,) for h in hyp}) == len(hyp)
    # every graph is a complete DAG on 4 nodes over the six genes
    assert all(sorted(h.edges.values()) == sorted(NB201_EDGES) for h in hyp)
    # 3 genes sharing options: a 3-node DAG; other genes are left out of the graph
    mixed = SearchSpace([Choice("a", "xyz"), Choice("b", "xyz"), Choice("c", "xyz"),
                         Choice("width", (8, 16, 32))])
    three = cell_hypotheses(mixed)
    assert len(three) == 3 * 4 and all(set(h.edges) == {"a", "b", "c"} for h in three)
    # no group of a DAG's size (4 genes), too large a group, or conditional genes: nothing
    assert cell_hypotheses(SearchSpace([Choice(f"g{i}", "xyz") for i in range(4)])) == []
    assert MAX_CELL_EDGES == 6
    assert cell_hypotheses(SearchSpace([Choice(f"g{i}", "xy") for i in range(10)])) == []
    cond = [Choice("d", (1, 2))] + [Choice(f"g{i}", "xyz", active_if=("d", (2,)))
                                    for i in range(3)]
    assert cell_hypotheses(SearchSpace(cond)) == []


def test_a_hidden_shuffled_graph_and_its_zero_op_are_recovered():
    X = all_cells()
    y = hidden_error(X)
    tr = np.random.default_rng(3).permutation(len(X))[:150]
    with threadpool_limits(1):
        graph, score = infer_cell(plain_space(), X[tr], y[tr])
    assert graph is not None and graph.zero == 2
    assert same_paths(graph, HIDDEN), graph
    assert 0.5 < score <= 1.0
    # too few rows, or a space that declares its cell: no inference
    assert infer_cell(plain_space(), X[tr[:MIN_ROWS - 1]], y[tr[:MIN_ROWS - 1]])[0] is None
    declared = SearchSpace([Choice(g, CODES) for g in GENES], cell=HIDDEN)
    assert infer_cell(declared, X[tr], y[tr])[0] is None


def test_the_default_predictor_infers_the_graph_and_ranks_like_a_declared_one():
    X = all_cells()
    y = hidden_error(X)
    idx = np.random.default_rng(1).permutation(len(X))
    tr, te = idx[:150], idx[150:3150]
    declared = SearchSpace([Choice(g, CODES) for g in GENES], cell=HIDDEN)
    with threadpool_limits(1):
        taus = {}
        models = {"inferred": make_predictor(space=plain_space(), random_state=0),
                  "declared": make_predictor(space=declared, random_state=0),
                  "plain": make_predictor(space=plain_space(), random_state=0,
                                          infer_cell=False)}
        for name, model in models.items():
            taus[name] = kendall_tau(y[te], model.fit(X[tr], y[tr]).predict(X[te]))
    reg = models["inferred"][-1]
    assert isinstance(reg, CellInferenceRegressor) and same_paths(reg.cell_, HIDDEN)
    assert not isinstance(models["plain"][-1], CellInferenceRegressor)
    assert taus["inferred"] == pytest.approx(taus["declared"], abs=0.02), taus
    assert taus["inferred"] > taus["plain"] + 0.1, taus


def test_fits_depend_only_on_the_data():
    """The scan is memoised on its inputs, so a refit, a clone or a pickled copy predicts the
    same; rows beyond the scanned prefix change the model but not the scan."""
    assert [scan_rows(n) for n in (75, 149, 150, 299, 300, 1000)] == [75, 75, 150, 150, 300, 600]
    X = all_cells()
    y = hidden_error(X)
    tr = np.random.default_rng(5).permutation(len(X))[:160]
    with threadpool_limits(1):
        a = make_predictor(space=plain_space(), random_state=0).fit(X[tr], y[tr])
        b = clone(a).fit(X[tr], y[tr])
        c = pickle.loads(pickle.dumps(a))
        grown = clone(a).fit(X[tr[:155]], y[tr[:155]])  # same 150-row scan
    test = X[::41]
    assert np.array_equal(a.predict(test), b.predict(test))
    assert np.array_equal(a.predict(test), c.predict(test))
    assert grown[-1].cell_ == a[-1].cell_ and grown[-1].cell_score_ == a[-1].cell_score_


def test_spaces_that_cannot_be_a_cell_keep_the_plain_predictor():
    space = SearchSpace([Choice(f"g{i}", "xyz") for i in range(4)])
    X = np.random.default_rng(0).integers(0, 3, (80, 4))
    y = X.sum(1) + 0.1 * X[:, 0] * X[:, 1]
    graph, score = infer_cell(space, X, y)
    assert graph is None and np.isnan(score)
    model = make_predictor(space=space, random_state=0)
    assert not isinstance(model[-1], CellInferenceRegressor)


def test_the_real_nb201_graph_is_found_from_100_rows():
    """A user's plain CSV of NAS-Bench-201 (six op-code columns, no cell declared): the graph
    inferred from 100 rows is NB201's (or its mirror), code 0 the zero op, and the predictor
    ranks the rest as well as with the graph declared."""
    with open(nb201_csv()) as f:
        rows = list(csv.DictReader(f))
    X = np.array([[int(r[g]) for g in GENES] for r in rows])
    y = 100 - np.array([float(r["c10_test_acc"]) for r in rows])
    idx = np.random.default_rng(0).permutation(len(X))
    tr, te = idx[:100], idx[100:3100]
    truth = CellGraph(dict(zip(GENES, NB201_EDGES, strict=True)), zero=0)
    with threadpool_limits(1):
        model = make_predictor(space=plain_space(), random_state=0).fit(X[tr], y[tr])
        plain = make_predictor(space=plain_space(), random_state=0, infer_cell=False)
        tau_plain = kendall_tau(y[te], plain.fit(X[tr], y[tr]).predict(X[te]))
    assert same_paths(model[-1].cell_, truth) and model[-1].cell_.zero == 0
    tau = kendall_tau(y[te], model.predict(X[te]))
    assert tau > 0.74 and tau > tau_plain + 0.05, (tau, tau_plain)
