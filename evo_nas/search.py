"""One function that runs a search on a NASProblem and returns a SearchResult.

With an archive attached to the problem (:meth:`NASProblem.attach`), the population, the RNG
state and the counters are saved at every generation boundary, and a later call with the same
run resumes from the last saved generation: evaluations committed after it are read back from
the archive rather than recomputed, so a killed run ends exactly as an uninterrupted one would.
"""

from __future__ import annotations

import time

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.callback import Callback
from pymoo.core.population import Population
from tqdm.auto import tqdm

from evo_nas.algorithms import build_algorithm
from evo_nas.errors import ConfigError
from evo_nas.result import SearchResult, pareto_rows
from operators.budget import operator_stats
from problems.nas import NASProblem

_INF = "inf"  # infinite crowding distance, which JSON cannot hold


class _Progress(Callback):
    """Per generation: a tqdm bar (evaluations, front size) and, with an archive, a checkpoint."""

    def __init__(self, total: int, problem: NASProblem, enabled: bool, settings: dict) -> None:
        super().__init__()
        self.problem = problem
        self.settings = settings
        self.bar = tqdm(total=total, desc="search", unit="gen", disable=not enabled, leave=False)

    def notify(self, algorithm: Algorithm) -> None:
        if self.problem.archive is not None:
            self.problem.archive.save_state(self.problem.run, algorithm.n_iter,
                                            _state(algorithm, self.settings))
        front = pareto_rows(self.problem.history, self.problem.objective_names)
        self.bar.set_postfix(evals=len(self.problem.history), front=len(front))
        self.bar.update(1)


def _state(algo: Algorithm, settings: dict) -> dict:
    pop = algo.pop
    state = {"n_iter": int(algo.n_iter), "n_eval": int(algo.evaluator.n_eval),
             "X": np.asarray(pop.get("X")).astype(int).tolist(),
             "rng": algo.random_state.bit_generator.state, "settings": settings}
    for attr in ("rank", "crowding"):
        # infeasible members carry no rank/crowding (None); keep that, as pymoo would
        state[attr] = [None if v is None else (_INF if np.isposinf(v) else float(v))
                       for v in pop.get(attr)]
    return state


def _restore(algo: Algorithm, problem: NASProblem, state: dict) -> None:
    """Put a set-up algorithm back at the generation boundary described by ``state``."""
    pop = Population.new(X=np.asarray(state["X"], dtype=np.int64))
    algo.evaluator.eval(problem, pop, algorithm=algo)  # cached: nothing is recomputed
    for attr in ("rank", "crowding"):
        values = [None if v is None else (np.inf if v == _INF else v) for v in state[attr]]
        if attr == "rank":
            values = [None if v is None else int(v) for v in values]
        pop.set(attr, np.array(values, dtype=object))
    algo._initialize()
    algo.pop = pop
    algo.is_initialized = True
    algo.n_iter = state["n_iter"]
    algo.evaluator.n_eval = state["n_eval"]
    algo.random_state.bit_generator.state = state["rng"]
    algo._set_optimum()
    algo.termination.update(algo)
    algo.n_iter += 1  # the saved boundary ran its callback; pymoo increments right after


def search(
    problem: NASProblem,
    algorithm: str | Algorithm = "nsga2",
    pop_size: int = 20,
    generations: int = 10,
    seed: int = 0,
    progress: bool = False,
    options: dict | None = None,
) -> SearchResult:
    """Run a constrained multi-objective search and return every feasible non-dominated
    architecture it evaluated. ``options`` go to the named algorithm's builder (e.g.
    ``{"predictor": "rf", "batch_size": 10}`` for ``"surrogate"``). Raises :class:`BudgetError`
    if the budgets are impossible (checked up front for cheap metrics) or if no evaluated
    architecture met them."""
    if pop_size < 2:
        raise ConfigError(f"search.pop_size = {pop_size}: must be at least 2")
    if generations < 1:
        raise ConfigError(f"search.generations = {generations}: must be at least 1")
    problem.check_budgets()
    name = algorithm if isinstance(algorithm, str) else type(algorithm).__name__
    algo = algorithm
    if isinstance(algorithm, str):
        algo = build_algorithm(algorithm, problem, pop_size, **(options or {}))
    if hasattr(algo, "run_search"):  # a loop around pymoo (surrogate-assisted), not an Algorithm
        return algo.run_search(problem, pop_size=pop_size, generations=generations, seed=seed,
                               progress=progress)
    settings = {"algorithm": name, "pop_size": pop_size, "generations": generations, "seed": seed}
    saved = problem.archive.last_state(problem.run) if problem.archive is not None else None
    if saved is not None and saved[1].get("settings") != settings:
        raise ConfigError(f"run {problem.run!r} was started with {saved[1].get('settings')}; "
                          f"resuming it with {settings} would not continue the same search")
    cb = _Progress(generations, problem, progress, settings)
    t0 = time.perf_counter()
    algo.setup(problem, termination=("n_gen", generations), seed=seed, callback=cb,
               verbose=False)
    if saved is not None:
        _restore(algo, problem, saved[1])
        cb.bar.update(saved[1]["n_iter"])
    try:
        while algo.has_next():
            algo.next()
    finally:
        cb.bar.close()
    seconds = time.perf_counter() - t0
    front = pareto_rows(problem.history, problem.objective_names)
    failures = problem.failures()
    info = {**settings, "failed_evaluations": len(failures),
            "resumed_from_generation": saved[1]["n_iter"] if saved else None,
            **operator_stats(algo)}
    result = SearchResult(problem.objective_names, dict(problem.budgets), problem.history, front,
                          seconds, info)
    if not front:
        raise problem.no_front_error(f"{len(problem.history)} evaluations")
    return result
