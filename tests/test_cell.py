"""Cell spaces declared as graphs (evo_nas.cell): validation with one-line errors, live-path
features checked against the hand-made NB201 cell features on all 15,625 cells, and a real fit
showing the declared structure is what lets a predictor rank a path-defined target."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from evo_nas.cell import CellGraph, cell_features, dead_edges
from evo_nas.errors import GenomeError
from evo_nas.predictors import (
    LogTargetRegressor,
    RankTargetRegressor,
    auto_encoding,
    kendall_tau,
    make_predictor,
)
from evo_nas.space import Choice, SearchSpace
from evo_nas.spaces.nb201 import NB201_EDGES, nb201_cell_space
from problems.tabular import NB201_OPS, nb201_features, nb201_space

EDGES = {f"op{i}": e for i, e in enumerate(NB201_EDGES)}
CODES = (0, 1, 2, 3, 4)  # a user's CSV codes: 0 none, 1 skip, 2 conv1x1, 3 conv3x3, 4 pool


def csv_space(zero=0) -> SearchSpace:
    """NB201 as a user writes it over a CSV's op codes, plus the one-line cell declaration."""
    return SearchSpace([Choice(g, CODES) for g in EDGES], name="my_nb201",
                       cell=CellGraph(EDGES, zero=zero))


def all_cells() -> np.ndarray:
    return np.indices((5,) * 6).reshape(6, -1).T


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"edges": {}}, "non-empty mapping"),
    ({"edges": {"op0": (1,)}}, "pair of node numbers"),
    ({"edges": {"op0": (2, 1)}}, "lower to a higher node"),
    ({"edges": {"op0": (0, 1)}, "input": 5}, "input = 5"),
    ({"edges": {"op0": (0, 1), "op1": (2, 3)}, "output": 3}, "no path of edges"),
])
def test_malformed_graphs_name_the_field_and_value(kwargs, words):
    with pytest.raises(GenomeError, match=words):
        CellGraph(**kwargs)


def test_a_graph_that_does_not_fit_the_space_is_refused():
    genes = [Choice(g, CODES) for g in EDGES]
    with pytest.raises(GenomeError, match="'op9'.*lacks"):
        SearchSpace(genes, cell=CellGraph({**EDGES, "op9": (0, 3)}))
    with pytest.raises(GenomeError, match="zero = 'none' is an option of no edge gene"):
        SearchSpace(genes, cell=CellGraph(EDGES, zero="none"))
    with pytest.raises(GenomeError, match="must be a CellGraph"):
        SearchSpace(genes, cell={"op0": (0, 1)})
    cond = [Choice("width", (8, 16)), Choice("op0", CODES, active_if=("width", (16,)))]
    with pytest.raises(GenomeError, match="unconditional"):
        SearchSpace(cond, cell=CellGraph({"op0": (0, 1)}))


def test_paths_of_the_nb201_cell():
    assert CellGraph(EDGES).paths() == [("op3",), ("op0", "op4"), ("op1", "op5"),
                                        ("op0", "op2", "op5")]


def test_live_path_features_match_the_hand_made_nb201_features_on_every_cell():
    space = nb201_space()  # op names in NB201_OPS order, declares its cell
    X = all_cells()
    F, H = cell_features(space, X), nb201_features(space)(X)
    P, V, E = 4, 5, 6
    assert F.shape == (len(X), P + 2 + V + E * V + P * V + V + 1 + 4 * V)
    # hand-made layout: counts(5) alive(4) any(1) n_alive(1) live counts of ops 1..4, ...
    assert np.array_equal(F[:, :P], H[:, 5:9])
    assert np.array_equal(F[:, P:P + 2], H[:, 9:11])
    live_counts = F[:, P + 2:P + 2 + V]
    assert np.array_equal(live_counts[:, 1:], H[:, 11:15])
    assert not live_counts[:, 0].any()  # the zero op is never on a live edge
    per_path = F[:, P + 2 + V + E * V:P + 2 + V + E * V + P * V].reshape(len(X), P, V)
    convs = [NB201_OPS.index("nor_conv_1x1"), NB201_OPS.index("nor_conv_3x3")]
    dead = per_path[:, :, 0] < 0
    path_conv = np.where(dead, -1, per_path[:, :, convs].sum(2))
    assert np.array_equal(path_conv, H[:, 15:19])
    assert (dead == ~F[:, :P].astype(bool)).all()


def test_codes_or_names_give_the_same_features():
    """The declaration works on whatever the options are: CSV codes with zero=0 describe the
    same cells as op names with zero='none' (columns follow the option order)."""
    X = all_cells()
    by_code = cell_features(csv_space(), X)
    named = SearchSpace([Choice(g, ("none", "skip", "c1", "c3", "pool")) for g in EDGES],
                        cell=CellGraph(EDGES, zero="none"))
    assert np.array_equal(by_code, cell_features(named, X))


def test_without_a_zero_op_every_path_is_alive():
    F = cell_features(csv_space(zero=None), all_cells()[:50])
    assert F[:, :4].all() and (F[:, 5] == 4).all()


def test_dead_edges_are_the_ops_that_never_reach_the_output():
    space = csv_space()
    #               op0 op1 op2 op3 op4 op5   (0-1, 0-2, 1-2, 0-3, 1-3, 2-3)
    X = np.array([[0, 0, 0, 0, 0, 0],   # nothing alive: every edge dead
                  [3, 2, 1, 4, 0, 0],   # only the direct edge reaches node 3
                  [3, 0, 0, 0, 2, 0],   # path 0-1-3 alive
                  [1, 0, 2, 0, 0, 3]])  # path 0-1-2-3 alive
    assert dead_edges(space, X).tolist() == [
        [True] * 6,
        [True, True, True, False, True, True],
        [False, True, True, True, False, True],
        [False, True, False, True, True, False]]
    assert not dead_edges(csv_space(zero=None), X).any()  # no zero op: nothing is cut
    with pytest.raises(GenomeError, match="declares no cell graph"):
        dead_edges(SearchSpace([Choice(g, CODES) for g in EDGES]), X)


def test_genomes_differing_only_on_dead_edges_have_the_same_features():
    """Dead-edge twins (the same live edges carrying the same ops) are one network: every one of
    the 15,625 cells has the features of its class's first member, and 9,445 classes remain."""
    space, X = csv_space(), all_cells()
    _, first, inverse = np.unique(np.where(dead_edges(space, X), -1, X), axis=0,
                                  return_index=True, return_inverse=True)
    assert len(first) == 9445
    F = cell_features(space, X)
    assert np.array_equal(F, F[first[inverse]])
    assert len(np.unique(F, axis=0)) == 9445  # and the features tell the classes apart


def test_a_space_with_a_cell_survives_pickling():
    space = csv_space()
    X = all_cells()[::97]
    assert np.array_equal(cell_features(pickle.loads(pickle.dumps(space)), X),
                          cell_features(space, X))


def test_auto_encoding_and_the_default_predictor_use_the_declared_cell():
    # the edges' numeric codes are operations, not magnitudes (no ordinal); the live paths
    # carry the interactions (no pair blocks)
    assert auto_encoding(csv_space()) == ("onehot", "counts", "cell")
    plain = SearchSpace([Choice(g, CODES) for g in EDGES])
    assert "cell" not in auto_encoding(plain)
    assert "cell" in auto_encoding(nb201_cell_space())
    model = make_predictor(space=csv_space(), random_state=0)
    # raw genomes in; boosting over the auto code votes with ridge over it plus the pair blocks
    assert isinstance(model, Pipeline) and model[0].encoding == "genome"
    gb, ridge = (est for _, est in model[-1].estimators)
    assert isinstance(gb[-1], LogTargetRegressor) and gb[0].encoding == "auto"
    assert isinstance(ridge[-1], RankTargetRegressor)
    assert ridge[0].encoding == ("auto", "pair_counts", "pairs")
    X = all_cells()[::50]
    y = _depth_error(X)
    fitted = model.fit(X, y)
    assert ridge[0].fit(X).encodings_ == ("onehot", "counts", "cell", "pair_counts", "pairs")
    again = pickle.loads(pickle.dumps(fitted))
    assert np.array_equal(again.predict(X), fitted.predict(X))
    with pytest.raises(GenomeError, match="declares no cell graph"):
        cell_features(plain, all_cells()[:2])


def _depth_error(X: np.ndarray) -> np.ndarray:
    """A path-defined error: 30 % for cells cut from their output, else falling with the most
    3x3 convolutions any live path stacks and, less, with 1x1 ones on live edges."""
    space = csv_space()
    F = cell_features(space, X)
    per_path = F[:, 41:61].reshape(len(X), 4, 5)
    alive = F[:, :4].astype(bool)
    deepest = np.where(alive, per_path[:, :, 3], 0).max(1)
    live_c1 = F[:, 6 + 2]
    err = 12.0 - 2.0 * deepest - 0.5 * live_c1
    return np.where(alive.any(1), err, 30.0) + np.random.default_rng(0).normal(0, 0.2, len(X))


def test_the_declared_cell_lets_a_predictor_rank_a_path_defined_target():
    X = all_cells()
    y = _depth_error(X)
    idx = np.random.default_rng(1).permutation(len(X))
    tr, te = idx[:100], idx[100:3100]
    with threadpool_limits(1):
        taus = {}
        for name, space in (("cell", csv_space()),
                            ("plain", SearchSpace([Choice(g, CODES) for g in EDGES]))):
            # plain: the one-hot code alone (no graph inferred; tests/test_structure.py)
            model = make_predictor(space=space, random_state=0, infer_cell=False)
            model.fit(X[tr], y[tr])
            taus[name] = kendall_tau(y[te], model.predict(X[te]))
    assert taus["cell"] > 0.75, taus
    assert taus["cell"] > taus["plain"] + 0.1, taus
