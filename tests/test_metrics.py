"""The metric catalogue (evo_nas/metrics.py): one dispatch helper for every consumer, one table
of names and units."""

from __future__ import annotations

import numpy as np
import pytest

from evo_nas.errors import ConfigError
from evo_nas.metrics import CATALOGUE, Metric, is_cheap, metric_values, user_column, user_value
from evo_nas.result import user_column as result_user_column
from evo_nas.space import Choice, SearchSpace
from operators.budget import BudgetRepair
from problems import NASProblem
from problems.surrogate import SurrogateProblem

SPACE = SearchSpace([Choice("w", (1, 2, 3, 4)), Choice("d", (1, 2, 3))], name="toy")


class Costs:
    """One callable feeding two names, with a vectorised genome path that counts its calls."""

    cheap = True

    def __init__(self) -> None:
        self.config_calls = 0
        self.genome_calls = 0

    def __call__(self, configs):
        self.config_calls += 1
        return {"flops": [c["w"] * c["d"] for c in configs],
                "params": [c["w"] + c["d"] for c in configs]}

    def batch_genomes(self, X):
        self.genome_calls += 1
        w = np.asarray(SPACE["w"].options)[X[:, 0]]
        d = np.asarray(SPACE["d"].options)[X[:, 1]]
        return {"flops": w * d, "params": w + d}


def test_one_call_per_callable_and_genome_path_gives_the_same_values():
    costs = Costs()
    X = SPACE.sample(7, 0)
    configs = SPACE.decode_many(X)
    by_config = metric_values({"flops": costs, "params": costs}, configs)
    assert costs.config_calls == 1  # two names, one call
    by_genome = metric_values({"flops": costs, "params": costs}, configs, X)
    assert costs.genome_calls == 1 and costs.config_calls == 1
    for name in ("flops", "params"):
        np.testing.assert_array_equal(by_config[name], by_genome[name])
    assert by_config["flops"].tolist() == [c["w"] * c["d"] for c in configs]


@pytest.mark.parametrize("bad, words", [
    (lambda cs: None, "returned None"),
    (lambda cs: ["1.5"] * len(cs), "returned '1.5' (str)"),
    (lambda cs: [1.0], "returned 1 values for 3 configs"),
    (lambda cs: {"other": [1.0] * len(cs)}, "not for 'm'"),
])
def test_a_broken_metric_is_a_config_error_naming_it(bad, words):
    configs = SPACE.decode_many(SPACE.sample(3, 1))
    with pytest.raises(ConfigError, match="metric 'm'") as e:
        metric_values({"m": bad}, configs)
    assert words in str(e.value)


def test_every_consumer_dispatches_through_the_catalogue_helper():
    """NASProblem, the surrogate problem and budget repair compute the same cheap values."""
    costs = Costs()

    def error(configs):
        return [10.0 / (c["w"] * c["d"]) for c in configs]

    problem = NASProblem(SPACE, {"error": error, "flops": costs}, budgets={"params": 5},
                         metrics={"params": costs})
    X = np.array([[0, 0], [3, 2], [1, 1]])
    measured = problem.measure(X)
    surrogate = SurrogateProblem(problem, {"error": _Const(1.0)})
    exact = surrogate.values(X)
    repair_costs = BudgetRepair.from_problem(problem).budget.costs(X)[:, 0]
    for i, rec in enumerate(measured):
        assert exact["flops"][i] == rec["flops"]
        assert repair_costs[i] == rec["params"]


class _Const:
    def predict(self, X):
        return np.full(len(X), self.value)

    def __init__(self, value: float) -> None:
        self.value = value


def test_catalogue_names_units_and_protocol():
    assert {"error", "loss", "flops", "params", "latency", "synflow", "nwot"} <= set(CATALOGUE)
    assert user_column("error") == "accuracy_%" and user_value("error", 3.0) == 97.0
    assert user_value("nwot", -5.0) == 5.0 and user_column("mine") == "mine"
    assert result_user_column is user_column  # result re-exports, does not redefine
    assert is_cheap(Costs()) and not is_cheap(lambda cs: cs)
    assert isinstance(Costs(), Metric)
