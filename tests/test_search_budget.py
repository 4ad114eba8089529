"""``budget`` means distinct real evaluations for every algorithm, and the search stops at
exactly that many; options are checked by name; the result counts real evaluations and cheap
lookups apart."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import Stop, dies_at
from nb201_slice import SLICE, SUB
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.algorithm import Algorithm
from pymoo.core.population import Population
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from threadpoolctl import threadpool_limits

import evo_nas.search as search_module
from evo_nas.archive import Archive
from evo_nas.errors import ConfigError
from evo_nas.search import search
from evo_nas.space import Choice, SearchSpace
from problems import NASProblem
from problems.tabular import TabularProblem, load_nb201, nb201_space

SPACE = SearchSpace([Choice(f"g{i}", tuple(range(4))) for i in range(8)], name="toy8")
SURROGATE = {"n_initial": 10, "predictor": "rf", "inner_pop_size": 16, "inner_generations": 4}


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


class Counting:
    """A metric that counts the configs it really computes."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, configs):
        self.n += len(configs)
        return [100.0 / (1 + sum(c[f"g{i}"] * (i + 1) for i in range(8))) for c in configs]


def cost(configs):
    return [float(sum(c[f"g{i}"] ** 2 for i in range(8))) for c in configs]


cost.cheap = True


def toy(error=None, budgets=None) -> NASProblem:
    return NASProblem(SPACE, {"error": error or Counting(), "cost": cost}, budgets=budgets)


def table_problem() -> TabularProblem:
    """A user's own table: every genome of a 3 x 4 x 4 x 3 space, one row each."""
    space = SearchSpace([Choice("depth", (2, 3, 4)), Choice("width", (16, 32, 48, 64)),
                         Choice("kernel", (3, 5, 7, 9)), Choice("expand", (3, 4, 6))], name="t")
    grid = np.indices((3, 4, 4, 3)).reshape(4, -1).T
    table = {"depth": [], "width": [], "kernel": [], "expand": [], "acc": [], "ms": []}
    for d, w, k, e in grid:
        dv, wv, kv, ev = (space.choices[i].options[j] for i, j in enumerate((d, w, k, e)))
        table["depth"].append(dv)
        table["width"].append(wv)
        table["kernel"].append(kv)
        table["expand"].append(ev)
        table["acc"].append(90 - 30 / (dv * wv * ev) ** 0.5 - 0.1 * abs(kv - 5))
        table["ms"].append(0.01 * dv * wv * ev * kv / 9)
    return TabularProblem(space, table, objectives=["error", "ms"],
                          metrics={"error": lambda t: [100 - a for a in t["acc"]], "ms": "ms"},
                          cheap=["ms"])


def pymoo_default(pop_size: int = 10) -> NSGA2:
    """What a user brings: pymoo's own integer NSGA-II."""
    return NSGA2(pop_size=pop_size, sampling=IntegerRandomSampling(),
                 crossover=SBX(vtype=float, repair=RoundingRepair()),
                 mutation=PM(vtype=float, repair=RoundingRepair()), eliminate_duplicates=True)


@pytest.mark.parametrize("algorithm", ["nsga2", "regularized", "tournament", "surrogate",
                                       "pymoo"])
@pytest.mark.parametrize("budget", [13, 37])
def test_budget_is_exact_for_every_algorithm(algorithm, budget):
    error = Counting()
    problem = toy(error)
    options = SURROGATE if algorithm == "surrogate" else None
    algo = pymoo_default() if algorithm == "pymoo" else algorithm
    res = search(problem, algo, pop_size=10, budget=budget, seed=2, options=options)
    assert error.n == budget == problem.n_real == res.info["real_evaluations"]
    assert res.n_evals == budget and res.info["stop_reason"] == "budget"
    assert res.info["budget"] == budget


@pytest.mark.parametrize("algorithm", ["nsga2", "regularized", "surrogate"])
def test_budget_is_exact_on_a_users_table(algorithm):
    problem = table_problem()
    options = SURROGATE if algorithm == "surrogate" else None
    res = search(problem, algorithm, pop_size=8, budget=41, seed=0, options=options)
    assert problem.n_real == res.info["real_evaluations"] == len(problem.history) == 41


def test_generations_cap_a_budget_and_keep_their_meaning():
    problem = toy()
    res = search(problem, "nsga2", pop_size=10, generations=3, budget=500, seed=0)
    assert res.info["stop_reason"] == "generations" and res.info["real_evaluations"] <= 30
    problem = toy()  # without a budget: generations as before, pop_size * generations at most
    res = search(problem, "nsga2", pop_size=10, generations=3, seed=0)
    assert res.info["stop_reason"] == "generations" and "budget" not in res.info
    problem = toy(budgets={"cost": 40.0})  # surrogate: generations caps the rounds
    res = search(problem, "surrogate", pop_size=5, generations=2, budget=40, seed=0,
                 options=SURROGATE)
    assert res.info["stop_reason"] == "rounds" and res.info["real_evaluations"] == 10 + 2 * 5


@pytest.mark.parametrize("algorithm", ["nsga2", "regularized", "tournament", "surrogate"])
def test_cache_hits_from_an_earlier_run_are_free(tmp_path, algorithm):
    options = SURROGATE if algorithm == "surrogate" else None
    with Archive(tmp_path / "a.db") as archive:
        first = toy().attach(archive, "r1")
        search(first, algorithm, pop_size=10, budget=25, seed=4, options=options)
        error = Counting()
        second = toy(error).attach(archive, "r2", scope=first.scope)
        res = search(second, algorithm, pop_size=10, budget=40, seed=4, options=options)
        # the same seed proposes the same first genomes: archive hits, not evaluations
        hits = len(second.history) - second.n_real
        assert hits > 0
        assert error.n == 40 == res.info["real_evaluations"] == second.n_real
        assert archive.count("r2") == 40 + hits


@pytest.mark.parametrize("algorithm", ["nsga2", "regularized", "tournament", "surrogate"])
def test_an_exhausted_space_ends_the_search(algorithm):
    problem = load_nb201(SLICE, space=nb201_space(SUB), objectives=("error", "flops"),
                         cheap=("flops",))
    options = SURROGATE if algorithm == "surrogate" else None
    res = search(problem, algorithm, pop_size=8, budget=100, seed=0, options=options)
    info = res.info
    if algorithm != "surrogate" and info["stop_reason"] == "stalled":
        # evolution with a population of 8 may never reach the last corners (NSGA-II: 4 of 6
        # seeds miss 1-2 of the 54 genomes): no hang, and it says so
        assert info["real_evaluations"] < 54
        return
    assert info["stop_reason"] == "exhausted"
    assert info["real_evaluations"] == problem.space.cardinality() == 54


class Repeats(Algorithm):
    """A user's algorithm that proposes the same three genomes every generation."""

    def _propose(self) -> Population:
        return Population.new(X=np.repeat(np.arange(3)[:, None], 8, axis=1))

    def _initialize_infill(self) -> Population:
        return self._propose()

    def _infill(self) -> Population:
        return self._propose()

    def _advance(self, infills=None, **kwargs) -> None:
        self.pop = infills


def test_a_stalled_search_ends_and_says_so(monkeypatch):
    monkeypatch.setattr(search_module, "STALL_GENERATIONS", 5)
    res = search(toy(), Repeats(), budget=50, seed=0)
    assert res.info["stop_reason"] == "stalled" and res.info["real_evaluations"] == 3
    # NSGA-II inside a budget only one genome meets: it gives up by itself, no hang
    problem = toy(budgets={"cost": 0.0})
    from operators import BudgetRepair

    algo = NSGA2(pop_size=6, sampling=IntegerRandomSampling(),
                 repair=BudgetRepair.from_problem(problem))
    res = search(problem, algo, budget=50, seed=0)
    assert res.info["stop_reason"] in ("stalled", "terminated")
    assert res.info["real_evaluations"] == 1


def test_result_counts_real_evaluations_and_cheap_lookups_apart():
    problem = toy(budgets={"cost": 40.0})
    res = search(problem, "surrogate", pop_size=5, budget=20, seed=0, options=SURROGATE)
    info = res.info
    assert info["real_evaluations"] == 20
    # the surrogate knows each genome's cost exactly without evaluating it: many lookups
    assert info["cheap_lookups"] > 10 * info["real_evaluations"]
    assert info["budget_repair"]["children"] > 0
    res = search(toy(), "nsga2", pop_size=10, budget=20, seed=0)
    # NSGA-II looks up only the pool its first population's cost anchors come from: 50 per member
    assert res.info["real_evaluations"] == 20 and res.info["cheap_lookups"] == 50 * 10


@pytest.mark.parametrize(("algorithm", "options", "match"), [
    ("surrogate", {"pop_size": 50}, r"search.options.pop_size: not an option of algorithm "
                                    r"'surrogate'.*did you mean 'inner_pop_size'\?"),
    ("surrogate", {"generations": 5}, r"did you mean 'inner_generations'\?"),
    ("surrogate", {"batch_size": 5}, r"search.options.batch_size.*search.pop_size"),
    ("surrogate", {"n_inital": 5}, r"algorithm 'surrogate' has no option 'n_inital'; "
                                   r"did you mean 'n_initial'\?"),
    ("regularized", {"sampel_size": 3}, r"did you mean 'sample_size'\?"),
    ("tournament", {"budget": 30}, r"search.options.budget.*search.budget"),
    ("nsga2", {"pop_size": 30}, r"search.options.pop_size.*search.pop_size"),
    ("nsga2", {"crossover_prb": 0.5}, r"did you mean 'crossover_prob'\?"),
])
def test_unknown_or_misplaced_options_are_named(algorithm, options, match):
    with pytest.raises(ConfigError, match=match):
        search(toy(), algorithm, budget=20, options=options)


def test_bad_budget_values_are_named():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match=r"search.budget = "):
            search(toy(), "nsga2", budget=bad)
    with pytest.raises(ConfigError, match="surrogate budget: not set"):
        search(toy(), "surrogate", options=SURROGATE)


def test_config_and_cli_carry_the_budget():
    from evo_nas.cli import _config, build_parser
    from evo_nas.config import load_config

    args = build_parser().parse_args(["search", "--budget", "40", "--budget", "flops=1.0",
                                      "--algorithm", "surrogate"])
    cfg = _config(args)
    assert cfg.search.budget == 40 and cfg.search.budgets == {"flops": 1.0}
    assert cfg.search.generations is None
    with pytest.raises(ConfigError, match="algorithm 'surrogate' needs a budget"):
        load_config({"search": {"algorithm": "surrogate"}})
    with pytest.raises(ConfigError, match=r"search.options.pop_size.*inner_pop_size"):
        load_config({"search": {"algorithm": "surrogate", "budget": 30,
                                "options": {"pop_size": 50}}})
    with pytest.raises(ConfigError, match=r"search.budget = 0: too small"):
        load_config({"search": {"budget": 0}})


@pytest.mark.parametrize("algorithm", ["nsga2", "regularized"])
@pytest.mark.parametrize("stop_at", [5, 14, 29])
def test_an_interrupted_budgeted_run_resumes_to_the_same_end(tmp_path, algorithm, stop_at):
    full_problem = toy()
    full = search(full_problem, algorithm, pop_size=8, budget=33, seed=5)
    dying = dies_at(stop_at, Counting())
    with Archive(tmp_path / "a.db") as archive:
        with pytest.raises(Stop):
            search(toy(dying).attach(archive, "r"), algorithm, pop_size=8, budget=33, seed=5)
        problem = toy().attach(archive, "r")
        resumed = search(problem, algorithm, pop_size=8, budget=33, seed=5)
        assert archive.count("r") == 33 == resumed.info["real_evaluations"]
    assert [r["genome"] for r in resumed.history] == [r["genome"] for r in full.history]
    assert sorted(SPACE.key(r["genome"]) for r in resumed.pareto) == \
        sorted(SPACE.key(r["genome"]) for r in full.pareto)
