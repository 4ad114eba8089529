"""Generic gene-interaction encodings and the default predictor that needs no hand-made features:
real fits on a synthetic table with known pairwise structure, and shape/meaning checks."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from evo_nas.predictors import (
    MAX_AUTO_FEATURES,
    CellInferenceRegressor,
    GenomeEncoder,
    LogTargetRegressor,
    RankTargetRegressor,
    as_predictor,
    auto_encoding,
    kendall_tau,
    make_predictor,
    make_regressor,
    pair_counts,
    pairwise_onehot,
)
from evo_nas.space import Choice, SearchSpace
from evo_nas.spaces.mobilenet import mobilenet_space

OPS = ("zero", "skip", "pool", "conv1", "conv3")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def interaction_table(seed: int = 0, n_genes: int = 6):
    """Every genome of a 6-gene categorical space with an error made mostly of gene-pair effects
    (the kind of structure a cell's edges have: an op matters only with what feeds it)."""
    space = SearchSpace([Choice(f"e{i}", OPS) for i in range(n_genes)], name="synthetic")
    rng = np.random.default_rng(seed)
    X = space.sample(3000, rng)
    X = np.unique(X, axis=0)
    main = rng.normal(0, 0.3, (n_genes, len(OPS)))
    y = main[np.arange(n_genes), X].sum(1)
    for i, j in [(0, 3), (1, 4), (2, 5), (0, 5)]:
        y += rng.normal(0, 1.0, (len(OPS), len(OPS)))[X[:, i], X[:, j]]
    y = np.exp(0.3 * y) + rng.normal(0, 0.02, len(y))  # a positive, skewed metric
    return space, X, y - y.min() + 1.0


def _tau(model, X, y, n=200, seed=0):
    idx = np.random.default_rng(seed).permutation(len(X))
    model.fit(X[idx[:n]], y[idx[:n]])
    return kendall_tau(y[idx[n:]], model.predict(X[idx[n:]]))


def test_pairwise_features_beat_onehot_on_interactions():
    space, X, y = interaction_table()
    ridge = RankTargetRegressor(make_regressor("ridge"))
    plain = _tau(as_predictor(clone(ridge), space, encoding="onehot"), X, y)
    pairs = _tau(as_predictor(clone(ridge), space, encoding=("onehot", "pairs")), X, y)
    assert pairs > plain + 0.1, (plain, pairs)  # measured: ~0.35 -> ~0.6


def test_default_beats_previous_default_without_features():
    space, X, y = interaction_table(seed=1)
    previous = make_predictor("gb_log", space, encoding=("onehot", "counts"), random_state=0)
    default = make_predictor(space=space, random_state=0)
    t_prev, t_new = _tau(previous, X, y), _tau(default, X, y)
    assert t_new > t_prev + 0.05, (t_prev, t_new)


def test_pairwise_onehot_layout_and_inactive_genes():
    space = SearchSpace([Choice("d", (1, 2)), Choice("k", (3, 5, 7), active_if=("d", (2,))),
                         Choice("w", (8, 16)), Choice("fixed", ("x",))])
    X = np.array([[0, 0, 1, 0], [1, 2, 0, 0]])
    P = pairwise_onehot(space, X)
    # pairs of genes with > 1 option: (d,k) 6, (d,w) 4, (k,w) 6 columns; "fixed" is skipped
    assert P.shape == (2, 16)
    assert P[0].sum() == 1  # k inactive in row 0: only the (d, w) pair is on
    assert P[0, 6 + 0 * 2 + 1] == 1  # (d=option 0, w=option 1)
    assert P[1].sum() == 3 and P[1, 1 * 3 + 2] == 1  # (d=1, k=2)


def test_pair_counts_count_shared_value_pairs():
    space = SearchSpace([Choice(f"e{i}", OPS[:3]) for i in range(4)])
    X = np.array([[2, 2, 0, 1], [0, 0, 0, 0]])
    C = pair_counts(space, X)
    assert C.shape == (2, 6)  # unordered pairs of 3 shared values
    assert C.sum(1).tolist() == [6, 6]  # every pair of 4 genes counted once
    # columns in upper-triangle order: (0,0) (0,1) (0,2) (1,1) (1,2) (2,2)
    assert C[0].tolist() == [0, 1, 2, 0, 2, 1]
    assert C[1].tolist() == [6, 0, 0, 0, 0, 0]


def test_auto_encoding_is_generic_and_bounded():
    nb = SearchSpace([Choice(f"op{i}", (0, 1, 2, 3, 4)) for i in range(6)])
    assert auto_encoding(nb) == ("onehot", "counts", "ordinal", "pair_counts", "pairs")
    cat = SearchSpace([Choice(f"e{i}", OPS) for i in range(6)])
    assert auto_encoding(cat) == ("onehot", "counts", "pair_counts", "pairs")
    for preset in ("tiny", "cifar", "imagenet"):
        space = mobilenet_space(preset)
        enc = GenomeEncoder(space, encoding="auto").fit(space.sample(4, 0))
        assert "ordinal" in enc.encodings_  # numeric genes (kernel, expand, depth)
        assert enc.n_features_out_ <= MAX_AUTO_FEATURES
    assert auto_encoding(mobilenet_space("imagenet"), max_features=10**6)[-1] == "pairs"


def test_default_fits_a_numeric_space_quickly_and_ranks():
    space = mobilenet_space("cifar")
    X = space.canonical(space.sample(300, np.random.default_rng(0)))
    vals = [np.array(c.options, dtype=float) for c in space.choices]
    act = space.active(X)
    size = sum(np.where(act[:, g], vals[g][X[:, g]], 0.0) for g in range(space.n_var))
    y = 100.0 - 0.05 * size - 2.0 * (X[:, 1] * X[:, 2])  # numeric trend + one interaction
    model = make_predictor(space=space, random_state=0)
    assert _tau(model, X, y, n=150) > 0.5


def test_rank_target_keeps_units_and_order():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = np.exp(X[:, 0]) * 10 + 90  # skewed, far from zero
    model = RankTargetRegressor(make_regressor("ridge")).fit(X, y)
    pred = model.predict(X)
    assert y.min() - 1e-9 <= pred.min() and pred.max() <= y.max() + 1e-9  # back in units
    assert kendall_tau(y, pred) > 0.8
    assert not hasattr(clone(model), "regressor_")


def test_default_with_hand_features_keeps_trees_on_them():
    space = SearchSpace([Choice(f"e{i}", OPS) for i in range(3)])
    model = make_predictor(space=space, features=lambda g: g.sum(1))
    assert isinstance(model[-1], LogTargetRegressor)
    assert model[0].encoding == ("onehot", "counts")
    plain = make_predictor(space=space, infer_cell=False)
    assert isinstance(plain[-1], RankTargetRegressor) and plain[0].encoding == "auto"
    # three genes sharing options could be a 3-node cell: the default tries graphs first
    assert isinstance(make_predictor(space=space)[-1], CellInferenceRegressor)


def test_pairs_cover_every_gene_pair_once():
    space = SearchSpace([Choice(f"e{i}", OPS[:2]) for i in range(4)])
    X = space.sample(10, 0)
    P = pairwise_onehot(space, X)
    assert P.shape[1] == len(list(combinations(range(4), 2))) * 4
    assert np.all(P.sum(1) == 6)
