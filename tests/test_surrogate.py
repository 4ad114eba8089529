"""SurrogateProblem and the surrogate-assisted loop on the NB201 test slice."""

from __future__ import annotations

import numpy as np
import pytest
from nb201_slice import SLICE, SUB
from sklearn.neighbors import KNeighborsRegressor
from threadpoolctl import threadpool_limits

from evo_nas.algorithms.surrogate import (
    SurrogateAssistedSearch,
    hypervolume,
    select_batch,
    surrogate_search,
)
from evo_nas.errors import ConfigError
from evo_nas.predictors import PredictorError, make_predictor
from evo_nas.search import search
from problems.surrogate import SurrogateProblem
from problems.tabular import load_nb201, nb201_space


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def make_problem(**kw):
    return load_nb201(SLICE, space=nb201_space(SUB), **kw)


def quick(**kw):
    return SurrogateAssistedSearch(n_initial=10, batch_size=5, inner_pop_size=20,
                                   inner_generations=5, **kw)


def test_surrogate_problem_predicts_expensive_and_keeps_cheap_exact():
    problem = make_problem(objectives=("error", "flops"), budgets={"flops": 150.0})
    X, y = problem.genomes, problem.values["error"]
    model = make_predictor("default", problem.space, features=problem.features).fit(X, y)
    sp = SurrogateProblem(problem, {"error": model})
    out = sp.evaluate(X, return_values_of=["F", "G"])
    assert np.array_equal(out[0][:, 1], problem.values["flops"])  # exact, from the table
    assert np.allclose(out[1][:, 0], problem.values["flops"] - 150.0)
    assert not problem.history  # predictions are not evaluations
    with pytest.raises(ConfigError, match=r"\['error'\] are neither cheap nor predicted"):
        SurrogateProblem(problem, {})
    with pytest.raises(ConfigError, match="no such metric"):
        SurrogateProblem(problem, {"acc": model})


def test_loop_spends_exactly_the_budget_and_never_reevaluates():
    problem = make_problem(objectives=("error", "latency_raspi4"))
    res = quick(budget=30).run(problem, seed=0)
    genomes = [tuple(h["genome"]) for h in problem.history]
    assert len(genomes) == 30 == len(set(genomes)) == res.n_evals
    assert res.info["algorithm"] == "surrogate" and res.info["expensive"] == [
        "error", "latency_raspi4"]
    curve = res.info["hv_curve"]
    assert curve[0][0] == 10 and curve[-1][0] == 30
    assert all(b[1] >= a[1] for a, b in zip(curve, curve[1:], strict=False))
    assert res.pareto and all(r["feasible"] for r in res.pareto)


def test_loop_is_reproducible_and_respects_cheap_budgets():
    runs = []
    for _ in range(2):
        problem = make_problem(objectives=("error", "flops"), budgets={"flops": 120.0})
        surrogate_search(problem, budget=20, seed=3, n_initial=8, batch_size=4,
                         inner_pop_size=16, inner_generations=4, local_fraction=0.5)
        runs.append([h["genome"] for h in problem.history])
        assert all(h["flops"] <= 120.0 for h in problem.history)
    assert runs[0] == runs[1]


def test_loop_continues_after_earlier_evaluations_and_stops_when_space_is_exhausted():
    problem = make_problem()
    problem.measure(problem.genomes[:12])
    quick(budget=100).run(problem, seed=1)  # 54 cells: only 42 are left to evaluate
    genomes = [tuple(h["genome"]) for h in problem.history]
    assert len(genomes) == 54 == len(set(genomes))


def test_any_regressor_plugs_into_the_loop_and_search_dispatch():
    problem = make_problem()
    res = quick(budget=20, predictor=KNeighborsRegressor(n_neighbors=3)).run(problem, seed=0)
    assert res.info["predictor"] == "KNeighborsRegressor" and res.n_evals == 20
    problem = make_problem()
    res = search(problem, "surrogate", budget=20, pop_size=5, seed=0)  # 5 per round
    assert res.n_evals == 20 and res.info["algorithm"] == "surrogate"
    assert res.info["real_evaluations"] == 20 and res.info["batch_size"] == 5


def test_bad_loop_settings_are_named():
    problem = make_problem()
    with pytest.raises(ConfigError, match="budget = 5 is smaller than the initial design "
                                          "n_initial = 10"):
        quick(budget=5).run(problem)
    with pytest.raises(PredictorError, match="lacks fit and predict"):
        quick(budget=20, predictor=object()).run(problem)
    with pytest.raises(PredictorError, match="predictor = 'xgb'"):
        quick(budget=20, predictor="xgb").run(problem)
    with pytest.raises(ConfigError, match="selection = 'best'"):
        quick(budget=20, selection="best").run(problem)
    assert not problem.history


def test_batch_selection_and_hypervolume():
    F = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0], [0.6, 0.6], [0.9, 0.9]])
    assert sorted(select_batch(F, 3, "hv")) == [0, 1, 2]
    assert sorted(select_batch(F, 4, "crowding")) == [0, 1, 2, 3]
    two = select_batch(F, 2, "hv")
    assert 1 in two and len(set(two)) == 2  # the knee adds the most hypervolume alone
    # staircase with reference (1.1, 1.1): 0.5 * 0.1 + 0.5 * 0.6 + 0.1 * 1.1
    assert hypervolume(F, [0, 0], [1, 1]) == pytest.approx(0.46)
    assert hypervolume([[2.0, 2.0]], [0, 0], [1, 1]) == 0.0  # beyond the reference: nothing
