"""One function that runs a search on a NASProblem and returns a SearchResult."""

from __future__ import annotations

import time

from pymoo.core.algorithm import Algorithm
from pymoo.core.callback import Callback
from pymoo.optimize import minimize
from tqdm.auto import tqdm

from evo_nas.algorithms import build_algorithm
from evo_nas.errors import BudgetError, ConfigError
from evo_nas.result import SearchResult, pareto_rows
from problems.nas import NASProblem


class _Progress(Callback):
    """A tqdm bar over generations that shows evaluations and the current front size."""

    def __init__(self, total: int, problem: NASProblem, enabled: bool) -> None:
        super().__init__()
        self.problem = problem
        self.bar = tqdm(total=total, desc="search", unit="gen", disable=not enabled, leave=False)

    def notify(self, algorithm: Algorithm) -> None:
        front = pareto_rows(self.problem.history, self.problem.objective_names)
        self.bar.set_postfix(evals=len(self.problem.history), front=len(front))
        self.bar.update(1)


def search(
    problem: NASProblem,
    algorithm: str | Algorithm = "nsga2",
    pop_size: int = 20,
    generations: int = 10,
    seed: int = 0,
    progress: bool = False,
) -> SearchResult:
    """Run a constrained multi-objective search and return every feasible non-dominated
    architecture it evaluated. Raises :class:`BudgetError` if the budgets are impossible (checked
    up front for cheap metrics) or if no evaluated architecture met them."""
    if pop_size < 2:
        raise ConfigError(f"search.pop_size = {pop_size}: must be at least 2")
    if generations < 1:
        raise ConfigError(f"search.generations = {generations}: must be at least 1")
    problem.check_budgets()
    algo = algorithm
    if isinstance(algorithm, str):
        algo = build_algorithm(algorithm, problem, pop_size)
    cb = _Progress(generations, problem, progress)
    t0 = time.perf_counter()
    try:
        minimize(problem, algo, ("n_gen", generations), seed=seed, callback=cb, verbose=False)
    finally:
        cb.bar.close()
    seconds = time.perf_counter() - t0
    front = pareto_rows(problem.history, problem.objective_names)
    result = SearchResult(problem.objective_names, dict(problem.budgets), problem.history, front,
                          seconds, {"algorithm": algorithm if isinstance(algorithm, str)
                                    else type(algorithm).__name__, "pop_size": pop_size,
                                    "generations": generations, "seed": seed})
    if not front:
        budget = ", ".join(f"{k} <= {v:g}" for k, v in problem.budgets.items())
        raise BudgetError(f"no evaluated architecture meets the budgets ({budget}) "
                          f"after {len(problem.history)} evaluations")
    return result
