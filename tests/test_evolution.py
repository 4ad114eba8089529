"""Regularized and tournament evolution under pymoo's minimize, and the DEAP toolbox adapter."""

from __future__ import annotations

import random

import numpy as np
import pytest
from deap import algorithms as deap_algorithms
from nb201_slice import SLICE, SUB
from pymoo.optimize import minimize

from evo_nas.algorithms import (
    ALGORITHMS,
    RegularizedEvolution,
    TournamentEvolution,
    build_algorithm,
)
from evo_nas.algorithms.deap_adapter import deap_toolbox
from evo_nas.algorithms.evolution import scalarize
from evo_nas.errors import ConfigError
from evo_nas.search import search
from operators import BudgetRepair
from problems.tabular import load_nb201, nb201_space

BUDGET = 120.0  # MFLOPs: about half of the 54 sub-space cells fit


def make_problem(**kw):
    return load_nb201(SLICE, space=nb201_space(SUB), budgets={"flops": BUDGET}, **kw)


@pytest.mark.parametrize("cls", [RegularizedEvolution, TournamentEvolution])
def test_runs_under_minimize_deterministic_and_within_budget(cls):
    runs = []
    for _ in range(2):
        problem = make_problem()
        algo = cls(problem.space, pop_size=8, sample_size=3, n_offsprings=2,
                   repair=BudgetRepair.from_problem(problem))
        res = minimize(problem, algo, ("n_gen", 6), seed=3, verbose=False)
        runs.append([h["genome"] for h in problem.history])
        assert all(h["flops"] <= BUDGET for h in problem.history)
        assert res.F is not None and np.all(res.CV <= 0)
        best = np.atleast_2d(res.F)[:, 0].min()
        assert best == min(h["error"] for h in problem.history)  # optimum = best ever seen
    assert runs[0] == runs[1]


def test_aging_removes_oldest_and_tournament_removes_worst():
    problem = make_problem()
    reg = RegularizedEvolution(problem.space, pop_size=6, sample_size=2, n_offsprings=2)
    reg = minimize(problem, reg, ("n_gen", 4), seed=0).algorithm  # minimize works on a copy
    keys = [problem.space.key(x) for x in reg.pop.get("X")]
    newest = [problem.space.key(x) for x in reg.evaluated.get("X")[-6:]]
    assert keys == newest  # the population is exactly the six youngest
    problem = make_problem()
    tour = TournamentEvolution(problem.space, pop_size=6, sample_size=2, n_offsprings=2)
    tour = minimize(problem, tour, ("n_gen", 4), seed=0).algorithm
    ok = [h["error"] for h in problem.history if h["feasible"]]
    feasible = tour.pop.get("CV")[:, 0] <= 0
    assert tour.pop.get("F")[feasible, 0].min() == min(ok)  # the best is never removed


def test_registered_and_usable_through_search():
    assert {"regularized", "tournament"} <= set(ALGORITHMS)
    for name in ("regularized", "tournament"):
        problem = make_problem()
        res = search(problem, name, pop_size=6, generations=4, seed=1)
        assert res.pareto and all(r["flops"] <= BUDGET for r in res.pareto)
        assert res.info["algorithm"] == name


def test_objective_weights_and_random_scalarisation():
    problem = make_problem()
    algo = build_algorithm("regularized", problem, 6, objective="flops", sample_size=3)
    res = minimize(problem, algo, ("n_gen", 5), seed=0)
    assert np.atleast_2d(res.F)[0, 1] == min(h["flops"] for h in problem.history)
    problem = make_problem()
    algo = TournamentEvolution(problem.space, pop_size=6, weights="random",
                               scalarization="tchebycheff")
    res = minimize(problem, algo, ("n_gen", 5), seed=0)
    assert len(np.atleast_2d(res.F)) >= 1  # non-dominated set of everything evaluated
    assert scalarize(np.array([[1.0, 4.0]]), [0.5, 0.5], np.zeros(2), np.array([2.0, 8.0]),
                     "tchebycheff")[0] == 0.25


def test_bad_settings_are_named():
    space = nb201_space(SUB)
    with pytest.raises(ConfigError, match="either objective or weights"):
        RegularizedEvolution(space, objective=0, weights=[1, 1])
    with pytest.raises(ConfigError, match="n_offsprings"):
        RegularizedEvolution(space, pop_size=4, n_offsprings=9)
    problem = make_problem()
    with pytest.raises(ConfigError, match="objective = 'acc'"):
        minimize(problem, RegularizedEvolution(space, objective="acc"), ("n_gen", 2))
    with pytest.raises(ConfigError, match="weights = \\[1\\]"):
        minimize(problem, RegularizedEvolution(space, weights=[1]), ("n_gen", 2))


def test_deap_toolbox_runs_ea_mu_plus_lambda_deterministically():
    runs = []
    for _ in range(2):
        problem = make_problem()
        tb = deap_toolbox(problem, repair=BudgetRepair.from_problem(problem))
        random.seed(7)
        pop = tb.population(n=8)
        pop, _ = deap_algorithms.eaMuPlusLambda(pop, tb, mu=8, lambda_=8, cxpb=0.5,
                                                mutpb=0.5, ngen=4, verbose=False)
        assert all(ind.violation == 0 for ind in pop)
        assert all(tb.decode(ind)["op2"] == "nor_conv_3x3" for ind in pop)
        runs.append([h["genome"] for h in problem.history])
    assert runs[0] == runs[1]
    assert all(h["flops"] <= BUDGET for h in problem.history)
