"""Hard-budget operators: repair into the budget, sample inside it, count what happened."""

from __future__ import annotations

import numpy as np
import pytest
from nb201_slice import SLICE

from evo_nas.algorithms import RegularizedEvolution
from evo_nas.errors import BudgetError, ConfigError
from evo_nas.search import search
from operators import BudgetRepair, BudgetSampling, budget_cost
from problems.tabular import NB201_OPS, load_nb201, nb201_space

# NB201's FLOPs are linear in the op counts (shared data README): a cheap analytic cost
_PER_OP = {"none": 0.0, "skip_connect": 0.0, "avg_pool_3x3": 1.29024, "nor_conv_1x1": 4.36224,
           "nor_conv_3x3": 35.81952}
SPACE = nb201_space()


def flops(configs):
    return [7.943872 + sum(_PER_OP[c[f"op{i}"]] for i in range(6)) for c in configs]


def cost_of(X):
    return np.asarray(flops(SPACE.decode_many(X)))


def test_repair_always_returns_feasible_children_and_counts():
    X = SPACE.sample(300, np.random.default_rng(0))
    over = cost_of(X) > 60.0
    assert over.sum() > 50
    rep = BudgetRepair(SPACE, flops, 60.0)
    Y = rep._do(None, X)
    assert np.all(cost_of(Y) <= 60.0)
    assert np.array_equal(Y[~over], X[~over])  # feasible children are untouched
    assert rep.stats["children"] == 300
    assert rep.stats["repaired"] + rep.stats["fallback"] == over.sum()
    assert rep.stats["fallback"] == 0  # greedy single-gene moves suffice on this cost


def test_repair_changes_few_genes_most_expensive_first():
    x = SPACE.encode({"op0": "nor_conv_3x3", "op1": "nor_conv_3x3", "op2": "nor_conv_1x1",
                      "op3": "skip_connect", "op4": "none", "op5": "avg_pool_3x3"})
    budget = cost_of(x[None])[0] - 1.0  # just over: one conv3x3 -> something cheaper suffices
    y = BudgetRepair(SPACE, flops, budget)._do(None, x[None])[0]
    assert cost_of(y[None])[0] <= budget
    changed = np.flatnonzero(x != y)
    assert len(changed) == 1 and SPACE.choices[changed[0]].options[x[changed[0]]] == NB201_OPS[4]


def test_repair_is_bounded_and_falls_back_to_cheapest():
    rep = BudgetRepair(SPACE, flops, 8.0, max_tries=1)  # only cells without conv/pool fit
    X = np.full((5, 6), 4)  # all conv3x3: one move cannot fix it
    Y = rep._do(None, X)
    assert np.all(cost_of(Y) <= 8.0)
    assert rep.stats["fallback"] == 5


def test_impossible_budget_raises_naming_it():
    rep = BudgetRepair(SPACE, lambda cfgs: {"flops": flops(cfgs)}, {"flops": 5.0})
    with pytest.raises(BudgetError, match=r"flops <= 5 cannot be met"):
        rep._do(None, SPACE.sample(3, 0))
    with pytest.raises(ConfigError, match="max_tries"):
        BudgetRepair(SPACE, flops, 10.0, max_tries=0)
    with pytest.raises(ConfigError, match="callable"):
        BudgetRepair(SPACE, 42, 10.0)


def test_budget_sampling_is_feasible_and_counts_rejections():
    rng = np.random.default_rng(1)
    samp = BudgetSampling(SPACE, flops, 50.0)
    X = samp._do(None, 100, random_state=rng)
    assert X.shape == (100, 6) and np.all(cost_of(X) <= 50.0)
    assert samp.stats["rejected"] > 0 and samp.stats["drawn"] >= 100
    # a feasible set so small that rejection cannot fill it: repair tops up, time stays bounded
    tiny = BudgetSampling(SPACE, flops, 7.95, max_rounds=2)
    Y = tiny._do(None, 20, random_state=rng)
    assert np.all(cost_of(Y) <= 7.95) and tiny.stats["repaired"] > 0


def test_budget_operators_from_problem_and_reported_in_result_info():
    problem = load_nb201(SLICE, budgets={"flops": 60.0})
    rep = BudgetRepair.from_problem(problem)
    assert rep.budget.names == ["flops"]
    assert budget_cost(problem, ["flops"])([SPACE.decode(SPACE.smallest())])["flops"][0] < 8
    algo = RegularizedEvolution(problem.space, pop_size=6, sample_size=3, repair=rep,
                                sampling=BudgetSampling.from_problem(problem))
    res = search(problem, algo, pop_size=6, generations=3, seed=0)
    assert res.info["budget_repair"]["children"] > 0
    assert "rejected" in res.info["budget_sampling"]
    # every architecture the search evaluated met the budget (lookups outside the slice fail
    # and are recorded as failures, never as over-budget architectures)
    assert all(h["flops"] <= 60.0 for h in problem.history if h["status"] == "ok")


def test_from_problem_needs_a_cheap_budget():
    problem = load_nb201(SLICE, budgets={"error": 10.0})  # error is measured, not cheap
    with pytest.raises(ConfigError, match="no budget is on a cheap metric"):
        BudgetRepair.from_problem(problem)


@pytest.mark.parametrize("algorithm", ["nsga2", "regularized", "tournament"])
def test_budget_operators_are_search_options(algorithm):
    """``options={"repair": "budget", "sampling": "budget"}``: the builders take the problem, so
    the same operators come from a config's ``search.options`` as from objects above."""
    problem = load_nb201(SLICE, budgets={"flops": 60.0})
    res = search(problem, algorithm, pop_size=6, generations=3, seed=0,
                 options={"repair": "budget", "sampling": "budget"})
    assert res.info["budget_repair"]["children"] > 0
    assert res.info["budget_sampling"]["drawn"] >= 6
    assert all(h["flops"] <= 60.0 for h in problem.history if h["status"] == "ok")
    with pytest.raises(ConfigError, match=r"search.options.repair = 'budget': needs a budget on "
                                          r"a cheap metric.*\['error'\]"):
        search(load_nb201(SLICE, budgets={"error": 10.0}), algorithm, pop_size=6,
               generations=1, options={"repair": "budget"})
