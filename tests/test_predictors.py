"""Predictors: encodings, built-in sklearn surrogates, plug-in regressors, metrics, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from data_paths import NB201_CSV
from nb201_slice import SLICE
from scipy import stats
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsRegressor
from threadpoolctl import threadpool_limits

from evo_nas.errors import EvoNasError, GenomeError
from evo_nas.predictors import (
    PREDICTORS,
    AdaptivePredictor,
    GenomeEncoder,
    PredictorError,
    as_predictor,
    kendall_tau,
    mae,
    make_predictor,
    onehot,
    option_counts,
    ordinal,
    pearson_r,
    predictor_report,
    rmse,
    spearman_rho,
    top_k_precision,
)
from evo_nas.space import Choice, SearchSpace
from problems.tabular import load_nb201, nb201_features, nb201_space


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):  # tiny matrices: BLAS threads only fight over the two cores
        yield


@pytest.fixture(scope="module")
def table():
    problem = load_nb201(SLICE)
    return problem, problem.genomes, problem.values["error"]


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_builtin_predictors_fit_and_predict(table, name):
    problem, X, y = table
    model = make_predictor(name, problem.space, features=problem.features, random_state=0)
    if name == "adaptive":
        model.set_params(model__cv=2)  # sklearn's nested parameters reach the selector
    pred = model.fit(X[:40], y[:40]).predict(X[40:])
    assert pred.shape == (len(X) - 40,)
    assert np.all(np.isfinite(pred))
    # sklearn conventions: clone gives an unfitted twin with the same parameters
    twin = clone(model)
    assert repr(twin.steps[-1][1]) == repr(model.steps[-1][1])
    assert not hasattr(twin.steps[-1][1], "n_features_in_")


def test_any_sklearn_regressor_plugs_in_unchanged(table):
    problem, X, y = table
    knn = KNeighborsRegressor(n_neighbors=3)
    model = as_predictor(knn, problem.space)
    assert model.steps[-1][1] is knn  # used as is, behind an encoder
    pred = model.fit(X, y).predict(X)
    assert pred.shape == y.shape and kendall_tau(y, pred) > 0.3


def test_encodings_shapes_and_features():
    space = SearchSpace([Choice("d", (1, 2)), Choice("k", (3, 5, 7), active_if=("d", (2,))),
                         Choice("k2", (3, 5, 7))])
    X = np.array([[0, 2, 1], [1, 2, 1]])
    oh = onehot(space, X)
    assert oh.shape == (2, 8)
    assert oh[0].sum() == 2  # inactive gene k encodes as zeros
    assert np.all(ordinal(space, X)[0] == [0.0, -1.0, 0.5])
    # option value 3/5/7 shared by k and k2: counted over active genes only
    assert option_counts(space, X).tolist() == [[0, 1, 0], [0, 1, 1]]
    enc = GenomeEncoder(space, encoding=("onehot", "ordinal"), features=lambda g: g.sum(1),
                        costs=lambda cfgs: [c["d"] * 10.0 for c in cfgs])
    out = enc.fit_transform(X)
    assert out.shape == (2, 8 + 3 + 1 + 1)
    assert out[1, -1] == 20.0
    # "genome": the canonical indices as they are (k parked at 0 where d makes it inactive)
    assert GenomeEncoder(space, encoding="genome").fit_transform(X).tolist() == \
        [[0.0, 0.0, 1.0], [1.0, 2.0, 1.0]]


def test_encoding_not_matching_space_is_named():
    space = nb201_space()
    enc = GenomeEncoder(space)
    with pytest.raises(GenomeError, match="nb201"):
        enc.fit(np.zeros((3, 4), dtype=int))
    other = SearchSpace([Choice("a", (1, 2))], name="other")
    model = make_predictor("gb", other)
    with pytest.raises(PredictorError, match="'other'.*'nb201'"):
        as_predictor(model, space)
    with pytest.raises(PredictorError, match="encoding = 'bogus'"):
        GenomeEncoder(space, encoding="bogus").fit(space.sample(3, 0))


def test_predictor_without_fit_or_predict_is_rejected():
    space = nb201_space()
    with pytest.raises(PredictorError, match="object lacks fit and predict"):
        as_predictor(object(), space)
    with pytest.raises(PredictorError, match="class KNeighborsRegressor.*instance"):
        as_predictor(KNeighborsRegressor, space)
    assert issubclass(PredictorError, EvoNasError)


def test_nan_targets_are_named(table):
    problem, X, y = table
    bad = y.copy()
    bad[[3, 7]] = np.nan
    with pytest.raises(PredictorError, match=r"2 non-finite values \(first y\[3\] = nan\)"):
        make_predictor("gb", problem.space).fit(X, bad)
    with pytest.raises(PredictorError, match="AdaptivePredictor.fit"):
        AdaptivePredictor().fit(np.ones((4, 2)), [1.0, np.inf, 2.0, 3.0])


def test_rank_metrics_agree_with_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    b = a + rng.normal(scale=0.7, size=50)
    assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)
    assert spearman_rho(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
    assert pearson_r(a, b) == pytest.approx(stats.pearsonr(a, b).statistic)
    assert mae(a, b) == pytest.approx(np.mean(np.abs(a - b)))
    assert rmse(a, b) == pytest.approx(np.sqrt(np.mean((a - b) ** 2)))
    # precision@k: the 2 smallest truths are rows 0, 1; prediction ranks rows 0 and 2 best
    assert top_k_precision([1, 2, 3, 4], [1, 9, 2, 8], k=2) == 0.5
    assert top_k_precision([1, 2, 3, 4], [1, 9, 2, 8], k=2, greater_is_better=True) == 0.5
    rep = predictor_report(a, b)
    assert set(rep) == {"kendall_tau", "spearman_rho", "pearson_r", "mae", "rmse",
                        "precision@10", "precision@20"}
    assert kendall_tau([1, 1, 1], [1, 2, 3]) == 0.0  # constant side: no ranking, not NaN
    with pytest.raises(PredictorError, match="3 values but y_pred has 2"):
        kendall_tau([1, 2, 3], [1, 2])


def test_adaptive_predictor_picks_best_by_cv_kendall():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, -2.0, 0.5]
    model = AdaptivePredictor({"linear": LinearRegression(), "dummy": DummyRegressor()},
                              cv=3, random_state=0).fit(X, y)
    assert model.best_name_ == "linear"
    assert model.scores_["linear"] > model.scores_["dummy"]
    assert kendall_tau(y, model.predict(X)) > 0.99


@pytest.mark.skipif(NB201_CSV is None, reason="shared NB201 table not present")
def test_default_predictor_ranks_nb201_with_cell_features():
    """The issue's bar: Kendall tau >= 0.6 on CIFAR-10 accuracy from 100 random archs."""
    problem = load_nb201(NB201_CSV)
    X, y = problem.genomes, problem.values["error"]
    idx = np.random.default_rng(0).permutation(len(X))
    model = make_predictor("default", problem.space, features=nb201_features(problem.space),
                           random_state=0)
    pred = model.fit(X[idx[:100]], y[idx[:100]]).predict(X[idx[100:]])
    assert kendall_tau(y[idx[100:]], pred) >= 0.6
