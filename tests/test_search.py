"""NASProblem + NSGA-II on cheap analytic metrics (real pymoo runs, seconds)."""

import numpy as np
import pytest

from evo_nas.costs import CostModel
from evo_nas.errors import BudgetError, ConfigError
from evo_nas.search import search
from evo_nas.space import Choice, SearchSpace
from evo_nas.spaces import mobilenet_space
from problems import NASProblem


def _proxy_error(configs):
    """A cheap stand-in for accuracy that improves with capacity (so there is a trade-off)."""
    cm = CostModel(mobilenet_space("tiny"))
    return 100.0 / (1.0 + cm(configs)["params"] * 200)


def _problem(budget=None):
    space = mobilenet_space("tiny")
    costs = CostModel(space)
    return NASProblem(space, {"error": _proxy_error, "flops": costs},
                      budgets={"flops": budget} if budget else None)


def test_constrained_search_returns_only_feasible_non_dominated():
    problem = _problem(budget=1.0)
    result = search(problem, pop_size=16, generations=6, seed=0)
    assert len(result.pareto) >= 5
    assert all(r["flops"] <= 1.0 and r["feasible"] for r in result.pareto)
    F = np.array([[r["error"], r["flops"]] for r in result.pareto])
    for i, a in enumerate(F):
        dominated = ((F <= a).all(axis=1) & (F < a).any(axis=1))
        assert not dominated.any(), f"row {i} is dominated"
    # the budget binds: some evaluated architectures were over it and were excluded
    assert any(not r["feasible"] for r in result.history)
    # the front is drawn from everything evaluated, each distinct genome once
    keys = [tuple(r["genome"]) for r in result.history]
    assert len(keys) == len(set(keys)) == result.n_evals


def test_same_seed_same_result_and_other_seed_differs():
    a = search(_problem(1.0), pop_size=12, generations=4, seed=3)
    b = search(_problem(1.0), pop_size=12, generations=4, seed=3)
    c = search(_problem(1.0), pop_size=12, generations=4, seed=4)
    assert [r["genome"] for r in a.history] == [r["genome"] for r in b.history]
    assert [r["genome"] for r in a.history] != [r["genome"] for r in c.history]


def test_impossible_budget_is_reported_before_any_evaluation():
    problem = _problem(budget=0.01)
    with pytest.raises(BudgetError, match=r"budget flops <= 0.01 cannot be met: the smallest "
                                          r"architecture .* already has flops = 0.18"):
        search(problem, pop_size=8, generations=2)
    assert problem.history == []


def test_budget_unmet_by_search_raises_but_keeps_history():
    space = SearchSpace([Choice("a", (0, 1, 2)), Choice("b", (0, 1))])
    problem = NASProblem(space, {"f": lambda cs: [c["a"] + c["b"] for c in cs]},
                         budgets={"g": -1.0}, metrics={"g": lambda cs: [0.0] * len(cs)})
    with pytest.raises(BudgetError, match="no evaluated architecture meets the budgets"):
        search(problem, pop_size=4, generations=2)
    assert len(problem.history) > 0


def test_nan_objective_is_infeasible_not_a_score():
    space = SearchSpace([Choice("a", tuple(range(6)))])
    problem = NASProblem(space, {"f": lambda cs: [np.nan if c["a"] == 0 else c["a"] for c in cs]})
    result = search(problem, pop_size=6, generations=3, seed=0)
    assert [r["config"]["a"] for r in result.pareto] == [1]
    assert any(np.isnan(r["f"]) and not r["feasible"] for r in result.history)


def test_problem_rejects_unknown_budget_and_bad_metric_length():
    space = mobilenet_space("tiny")
    with pytest.raises(ConfigError, match=r"budgets.flopz: no metric named 'flopz'"):
        NASProblem(space, {"flops": CostModel(space)}, budgets={"flopz": 1})
    p = NASProblem(space, {"f": lambda cs: [1.0, 2.0]})
    with pytest.raises(ConfigError, match="metric 'f' returned 2 values for 1 configs"):
        p.measure(space.sample(3, 0))


def test_result_files(tmp_path):
    result = search(_problem(1.0), pop_size=12, generations=3, seed=0)
    written = result.save(tmp_path)
    assert {p.name for p in written} == {"pareto.csv", "pareto.json", "pareto.png", "history.csv"}
    import json

    doc = json.loads((tmp_path / "pareto.json").read_text())
    assert len(doc["pareto"]) == len(result.pareto)
    assert doc["pareto"][0]["accuracy_%"] == pytest.approx(100 - result.pareto[0]["error"])
    assert len((tmp_path / "history.csv").read_text().splitlines()) == result.n_evals + 1
    table = result.table()
    assert "accuracy_%" in table and "MFLOPs" in table


@pytest.mark.parametrize("objectives", [["error"], ["error", "flops"],
                                        ["error", "flops", "latency"]])
def test_pareto_png_says_what_it_plots(objectives, tmp_path):
    """One objective: against the evaluation number, not against itself; three: the first two,
    and the title names the one not drawn."""
    from evo_nas.result import SearchResult, pareto_plot_layout, pareto_rows

    rows = [{"eval": i, "genome": [i], "config": {}, "error": 10.0 - i, "flops": 1.0 + i,
             "latency": 3.0 - 0.5 * i, "feasible": True, "seconds": 0.1, "status": "ok",
             "fault": None} for i in range(4)]
    result = SearchResult(objectives, {}, rows, pareto_rows(rows, objectives))
    x, y, title = pareto_plot_layout(result)
    assert y == "error"
    if len(objectives) == 1:
        assert x is None and "by evaluation (one objective)" in title
    elif len(objectives) == 2:
        assert x == "flops" and "\n" not in title
    else:
        assert x == "flops" and "first 2 of 3 objectives" in title and "latency_ms" in title
    assert (tmp_path / "pareto.png") in result.save(tmp_path)
    assert (tmp_path / "pareto.png").stat().st_size > 0
