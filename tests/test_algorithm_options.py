"""Algorithm builders take the problem, so the budget operators are options like any other
(``search.options.repair: budget``), and ``search.options`` are checked at config-load time by
each algorithm's option schema, without building an algorithm."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TOY8, toy_cost, toy_error, toy_problem
from threadpoolctl import threadpool_limits

import evo_nas.algorithms as algorithms
from evo_nas.algorithms import (
    check_algorithm_options,
    make_nsga2,
    make_regularized,
    make_tournament,
)
from evo_nas.cli import main
from evo_nas.config import load_config
from evo_nas.errors import ConfigError
from evo_nas.search import search
from evo_nas.space import Choice, SearchSpace
from operators import BudgetRepair, BudgetSampling, CanonicalRepair, ChoiceSampling
from problems import NASProblem

ALGOS = ["nsga2", "regularized", "tournament"]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """An untrained tiny supernet: the budget does not depend on the weights."""
    from evo_nas.nn import Supernet
    from evo_nas.train import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "supernet.pt"
    save_checkpoint(path, Supernet("tiny"))
    return path


# --------------------------------------------------------------------------- Python API
@pytest.mark.parametrize("algorithm", ALGOS)
def test_budget_repair_option_keeps_every_evaluated_architecture_in_budget(algorithm):
    problem = toy_problem()  # cost <= 40 on a cheap metric; random genomes reach 72
    res = search(problem, algorithm, pop_size=8, budget=40, seed=1,
                 options={"repair": "budget", "sampling": "budget"})
    assert res.info["real_evaluations"] == 40
    assert all(h["cost"] <= 40.0 for h in problem.history)
    assert res.info["budget_repair"]["children"] > 0
    assert res.info["budget_sampling"]["drawn"] >= 8
    # the default operators do evaluate over-budget architectures: the option is what did it
    plain = toy_problem()
    search(plain, algorithm, pop_size=8, budget=40, seed=1)
    assert any(h["cost"] > 40.0 for h in plain.history)


@pytest.mark.parametrize("build", [make_nsga2, make_regularized, make_tournament])
def test_builders_take_the_problem_or_a_bare_space(build):
    problem = toy_problem()
    algo = build(problem, pop_size=8, repair="budget", sampling="budget")
    assert isinstance(algo.repair, BudgetRepair)
    assert isinstance(algo.initialization.sampling, BudgetSampling)
    algo = build(TOY8, pop_size=8)  # the space-only call path: default operators
    assert isinstance(algo.repair, CanonicalRepair)
    assert isinstance(algo.initialization.sampling, ChoiceSampling)
    mine = CanonicalRepair(TOY8)
    assert build(TOY8, pop_size=8, repair=mine).repair is mine  # objects pass through
    with pytest.raises(ConfigError, match=r"repair = 'budget': needs the problem"):
        build(TOY8, pop_size=8, repair="budget")
    with pytest.raises(ConfigError, match=r"not for int"):
        build(3, pop_size=8)


@pytest.mark.parametrize("algorithm", ALGOS)
def test_budget_operators_without_a_cheap_budget_are_named(algorithm):
    error = toy_error
    no_budget = NASProblem(TOY8, {"error": error, "cost": toy_cost})
    with pytest.raises(ConfigError, match=r"^search.options.repair = 'budget': needs a budget on "
                                          r"a cheap metric.*the problem has no budgets"):
        search(no_budget, algorithm, pop_size=8, budget=10, options={"repair": "budget"})
    measured = NASProblem(TOY8, {"error": error, "cost": toy_cost}, budgets={"error": 50.0})
    with pytest.raises(ConfigError, match=r"search.options.sampling = 'budget'.*budgets "
                                          r"\['error'\] are on no cheap metric"):
        search(measured, algorithm, pop_size=8, budget=10, options={"sampling": "budget"})


@pytest.mark.parametrize(("algorithm", "options", "match"), [
    ("nsga2", {"repair": "budgett"},
     r"search.options.repair = 'budgett': choose one of \['canonical', 'budget'\]"),
    ("regularized", {"sampling": "uniform"},
     r"search.options.sampling = 'uniform': choose one of \['choice', 'budget'\]"),
    ("tournament", {"repiar": "budget"}, r"has no option 'repiar'; did you mean 'repair'\?"),
    ("nsga2", {"sampling": 3}, r"sampling = 3: choose one of .* \(or a pymoo Sampling object\)"),
    ("regularized", {"sample_size": 9}, r"sample_size = 9: must be an int in 1..pop_size \(8\)"),
    ("regularized", {"objective": "acc"},
     r"search.options.objective = 'acc': the objectives are \['error', 'cost'\]"),
    ("tournament", {"weights": [1.0]}, r"weights = \[1.0\]: need 2 values"),
    ("regularized", {"mutation": "swap"}, r"mutation = 'swap': a pymoo Mutation object"),
    ("tournament", {"max_retries": -1}, r"max_retries = -1: must be an int >= 0"),
    ("nsga2", {"crossover_prob": 2}, r"search.options.crossover_prob = 2: must be a number"),
    ("nsga2", {"crossover_categorical": "uniform"},
     r"search.options.crossover_categorical = 'uniform': choose one of \('swap', 'sbx'\)"),
    ("nsga2", {"n_offsprings": 9}, r"n_offsprings = 9: must be an int in 1..pop_size \(8\)"),
    ("nsga2", {"n_offsprings": 0}, r"n_offsprings = 0: must be an int in 1..pop_size"),
    ("nsga2", {"tournament_size": 1}, r"tournament_size = 1: must be an int in 2..pop_size"),
    ("nsga2", {"tournament_siz": 3}, r"did you mean 'tournament_size'\?"),
])
def test_bad_option_values_from_search_are_named(algorithm, options, match):
    with pytest.raises(ConfigError, match=match):
        search(toy_problem(), algorithm, pop_size=8, budget=10, options=options)


def test_crossover_categorical_option_reaches_the_crossover():
    """NSGA-II crosses categorical genes by SBX by default; one option brings back swaps, and
    the two give different searches on a space of categorical genes."""
    ops = ("none", "skip", "pool", "conv1", "conv3")  # cheapest first, as by convention
    space = SearchSpace([Choice(f"g{i}", ops) for i in range(6)], name="cat6")
    assert not space.ordered.any()

    def idx(configs):
        return np.array([[ops.index(c[f"g{i}"]) for i in range(6)] for c in configs])

    metrics = {"error": lambda c: list(100.0 / (1 + idx(c) @ np.arange(1, 7))),
               "cost": lambda c: list((idx(c) ** 2).sum(axis=1).astype(float))}
    assert make_nsga2(space).mating.crossover.categorical == "sbx"
    assert make_nsga2(space, crossover_categorical="swap").mating.crossover.categorical == "swap"
    runs = {}
    for mode in ("sbx", "swap"):
        p = NASProblem(space, metrics)
        search(p, "nsga2", pop_size=8, budget=40, seed=0,
               options={"crossover_categorical": mode})
        assert p.n_real == 40
        runs[mode] = [tuple(h["genome"]) for h in p.history]
    assert runs["sbx"] != runs["swap"]
    assert runs["sbx"][:8] == runs["swap"][:8]  # the same first population


# --------------------------------------------------------------------------- config / CLI
def test_config_checks_options_without_building_an_algorithm(monkeypatch):
    import evo_nas.config

    assert "SimpleNamespace" not in Path(evo_nas.config.__file__).read_text()

    def built(*a, **k):
        raise AssertionError("an algorithm was built to check its options")

    for name in ("nsga2", "regularized", "tournament"):
        monkeypatch.setitem(algorithms.ALGORITHMS, name, built)
    for name in ("nsga2", "regularized", "tournament"):
        cfg = load_config({"search": {"algorithm": name, "pop_size": 8,
                                      "budgets": {"flops": 1.0},
                                      "options": {"repair": "budget", "sampling": "budget"}}})
        assert cfg.search.options == {"repair": "budget", "sampling": "budget"}
    with pytest.raises(ConfigError, match=r"search.options.sample_size = 9: must be an int in "
                                          r"1..pop_size \(8\)"):
        load_config({"search": {"algorithm": "regularized", "pop_size": 8,
                                "options": {"sample_size": 9}}})
    with pytest.raises(ConfigError, match=r"search.options.objective = 'latency': the "
                                          r"objectives are \['error', 'flops'\]"):
        load_config({"search": {"algorithm": "tournament", "options": {"objective": "latency"}}})
    with pytest.raises(ConfigError, match=r"search.options.repair = 'budget': needs a budget on "
                                          r"a cheap metric.*--budget flops=N"):
        load_config({"search": {"options": {"repair": "budget"}}})
    with pytest.raises(ConfigError, match=r"search.options.sampling = 'budget'"):
        load_config({"search": {"algorithm": "regularized", "budgets": {"error": 10},
                                "options": {"sampling": "budget"}}})
    # the surrogate's own checks run on its unbuilt loop, with search.budget known
    with pytest.raises(ConfigError, match=r"surrogate inner_pop_size = 0: must be a positive"):
        load_config({"search": {"algorithm": "surrogate", "budget": 30,
                                "options": {"inner_pop_size": 0}}})
    with pytest.raises(ConfigError, match=r"search.options.predictor = 'xgboost'"):
        load_config({"search": {"algorithm": "surrogate", "budget": 30,
                                "options": {"predictor": "xgboost"}}})


def test_check_algorithm_options_without_a_space():
    check_algorithm_options("nsga2", {"repair": "canonical", "mutation_genes": 1})
    check_algorithm_options("regularized", {"sample_size": 50})  # pop_size unknown: no bound
    with pytest.raises(ConfigError, match="search.algorithm = 'annealing'"):
        check_algorithm_options("annealing", {})


@pytest.mark.parametrize("algorithm", ALGOS)
def test_cli_search_with_budget_repair_from_a_config_file(ckpt, tmp_path, capsys, algorithm):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"search:\n  algorithm: {algorithm}\n  pop_size: 8\n  generations: 2\n"
                   f"  budgets: {{flops: 0.8}}\n"
                   f"  options: {{repair: budget, sampling: budget}}\n"
                   f"eval: {{calib_images: 50}}\n")
    code, out, err = run(capsys, "search", "--config", cfg, "--checkpoint", ckpt,
                         "--runs-dir", tmp_path / "runs", "--name", "r", "--quiet")
    assert code == 0, err
    run_dir = tmp_path / "runs" / "r"
    with (run_dir / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 8
    # every evaluated architecture met the budget: children were repaired, not rejected
    flops = np.array([float(r["MFLOPs"]) for r in rows])
    assert np.all(flops <= 0.8), flops.max()
    info = json.loads((run_dir / "pareto.json").read_text())["info"]
    assert info["budget_repair"]["children"] > 0 and info["budget_sampling"]["drawn"] >= 8


@pytest.mark.parametrize(("config", "expect"), [
    ("search: {budgets: {flops: 1.0}, options: {repair: budgte}}\n",
     "search.options.repair = 'budgte': choose one of ['canonical', 'budget']"),
    ("search: {algorithm: tournament, options: {sampling: budget}}\n",
     "search.options.sampling = 'budget': needs a budget on a cheap metric"),
    ("search: {algorithm: regularized, options: {repair: 7}}\n",
     "search.options.repair = 7: choose one of ['canonical', 'budget']"),
])
def test_cli_bad_operator_option_is_one_line_before_work(ckpt, tmp_path, capsys, monkeypatch,
                                                         config, expect):
    def started(*a, **k):
        raise AssertionError("the search started before the error was found")

    monkeypatch.setattr("evo_nas.search.search", started)
    (tmp_path / "c.yaml").write_text(config)
    code, _, err = run(capsys, "search", "--config", tmp_path / "c.yaml", "--checkpoint", ckpt,
                       "--runs-dir", tmp_path / "runs", "--name", "r", "--quiet")
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("evo-nas: error: "), err
    assert expect in lines[0]
    assert not (tmp_path / "runs").exists()
