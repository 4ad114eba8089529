"""One function that runs a search on a NASProblem and returns a SearchResult.

``budget`` means one thing for every algorithm: distinct real evaluations (archive and cache
hits are free), and the search stops at exactly that many. pymoo algorithms are driven by
ask/tell: each generation's offspring keep every genome already known plus only as many unseen
ones as the budget has left, in the order the algorithm proposed them.

With an archive attached to the problem (:meth:`NASProblem.attach`), the population, the RNG
state and the counters are saved at every generation boundary, and a later call with the same
run resumes from the last saved generation: evaluations committed after it are read back from
the archive rather than recomputed, so a killed run ends exactly as an uninterrupted one would
(the budget cut is the same, since the committed genomes are the first of the cut's unseen).
"""

from __future__ import annotations

import time

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.callback import Callback
from pymoo.core.population import Population
from tqdm.auto import tqdm

from evo_nas.algorithms import build_algorithm
from evo_nas.algorithms.lookups import counting_cheap_lookups
from evo_nas.errors import ConfigError, GenomeError
from evo_nas.result import SearchResult, pareto_rows
from operators.budget import operator_stats
from problems.nas import NASProblem

_INF = "inf"  # infinite crowding distance, which JSON cannot hold
DEFAULT_GENERATIONS = 10  # without a budget or generations
STALL_GENERATIONS = 50  # generations in a row that propose nothing new: the search has stalled


class _Progress(Callback):
    """A tqdm bar and, with an archive, a checkpoint per generation. Under a budget the bar
    counts real evaluations and moves as each one finishes (an evaluation of a supernet takes
    seconds); otherwise it counts generations and shows the evaluations so far."""

    def __init__(self, total: int, problem: NASProblem, enabled: bool, settings: dict,
                 base_real: int, by_evals: bool) -> None:
        super().__init__()
        self.problem = problem
        self.settings = settings
        self.base_real = base_real
        self.by_evals = by_evals
        self.stall = 0  # generations in a row without a new genome (saved, for an exact resume)
        # real evaluations and history rows at the last generation boundary: a resumed run
        # decides from these, not from rows its interrupted generation had already committed
        self.mark_real = problem.n_real
        self.mark_hist = len(problem.history)
        self.bar = tqdm(total=total, desc="search", unit="eval" if by_evals else "gen",
                        disable=not enabled, leave=False)
        if enabled:
            problem.on_evaluated = self.evaluated

    def evaluated(self) -> None:
        """One more real evaluation (called by the problem as it finishes)."""
        real = self.problem.n_real - self.base_real
        if self.by_evals:
            self.bar.update(min(real, self.bar.total) - self.bar.n)
        else:
            self.bar.set_postfix(evals=real, refresh=False)

    def close(self) -> None:
        self.problem.on_evaluated = None
        self.bar.close()

    def notify(self, algorithm: Algorithm) -> None:
        self.mark_real, self.mark_hist = self.problem.n_real, len(self.problem.history)
        if self.problem.archive is not None:
            state = {**_state(algorithm, self.settings), "stall": self.stall,
                     "n_real": self.mark_real, "n_history": self.mark_hist}
            self.problem.archive.save_state(self.problem.run, algorithm.n_iter, state)
        real = self.problem.n_real - self.base_real
        self.bar.update(min(real, self.bar.total) - self.bar.n if self.by_evals else 1)
        if not self.bar.disable:  # the front costs O(n^2) per generation: only for a shown bar
            front = pareto_rows(self.problem.history, self.problem.objective_names)
            self.bar.set_postfix(gen=algorithm.n_iter, evals=real, front=len(front))


def _state(algo: Algorithm, settings: dict) -> dict:
    pop = algo.pop
    state = {"n_iter": int(algo.n_iter), "n_eval": int(algo.evaluator.n_eval),
             "X": np.asarray(pop.get("X")).astype(int).tolist(),
             "rng": algo.random_state.bit_generator.state, "settings": settings}
    for attr in ("rank", "crowding"):
        # infeasible members carry no rank/crowding (None); keep that, as pymoo would
        state[attr] = [None if v is None else (_INF if np.isposinf(v) else float(v))
                       for v in pop.get(attr)]
    evaluated = getattr(algo, "evaluated", None)  # regularized/tournament: all ever evaluated
    if isinstance(evaluated, Population):
        state["evaluated"] = np.asarray(evaluated.get("X")).astype(int).tolist()
    extra = getattr(algo, "extra_state", None)  # e.g. an adaptive crossover rate
    if callable(extra):
        state["extra"] = extra()
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
    if "evaluated" in state:
        X = np.asarray(state["evaluated"], dtype=np.int64).reshape(-1, problem.n_var)
        evaluated = Population.new(X=X)
        if len(evaluated):
            algo.evaluator.eval(problem, evaluated, algorithm=algo)  # cached as well
        algo.evaluated = evaluated
    if "extra" in state:
        algo.load_extra_state(state["extra"])
    algo.is_initialized = True
    algo.n_iter = state["n_iter"]
    algo.evaluator.n_eval = state["n_eval"]
    algo.random_state.bit_generator.state = state["rng"]
    algo._set_optimum()
    algo.termination.update(algo)
    algo.n_iter += 1  # the saved boundary ran its callback; pymoo increments right after


def _within_budget(problem: NASProblem, off: Population, left: int) -> Population:
    """The offspring that keep the budget: every genome already known (free) and the first
    ``left`` unseen ones in the order proposed (duplicates of a kept one stay)."""
    X = np.atleast_2d(np.asarray(off.get("X")))
    unseen = problem.unseen(X)
    if len(unseen) <= left:
        return off
    drop = set(unseen[max(left, 0):])
    canon = problem.space.canonical(np.round(X).astype(np.int64))
    keep = [i for i, row in enumerate(np.atleast_2d(canon)) if problem.space.key(row) not in drop]
    return off[keep]


def _exhausted(problem: NASProblem) -> bool:
    """Whether this run knows every distinct canonical genome of the space (when countable)."""
    try:
        return len(problem.history) >= problem.space.cardinality()
    except GenomeError:  # too many genomes to enumerate their classes: not exhausted
        return False


def _check_count(name: str, value: int | None, low: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer)
                              or value < low):
        raise ConfigError(f"search.{name} = {value!r}: must be an int >= {low}")


def search(
    problem: NASProblem,
    algorithm: str | Algorithm = "nsga2",
    pop_size: int = 20,
    generations: int | None = None,
    seed: int = 0,
    progress: bool = False,
    options: dict | None = None,
    budget: int | None = None,
) -> SearchResult:
    """Run a constrained multi-objective search and return every feasible non-dominated
    architecture it evaluated.

    ``budget``: distinct real evaluations the search spends, for every algorithm (archive and
    cache hits are free); it stops at exactly that many, or earlier when the space is exhausted
    or nothing new appears for ``STALL_GENERATIONS`` generations (``info["stop_reason"]``).
    ``pop_size``: architectures per generation (for ``"surrogate"``: real evaluations per
    round). ``generations``: the most generations (rounds); without a budget it defaults to 10.
    ``options`` go to the named algorithm's builder, which is given ``problem`` (e.g.
    ``{"predictor": "rf", "n_initial": 30}`` for ``"surrogate"``; ``{"repair": "budget"}`` or
    ``{"sampling": "budget"}`` for NSGA-II and the evolutions: the budget operators on the
    problem's cheap budgets, see :mod:`evo_nas.algorithms.options`); unknown or misplaced ones,
    and bad values, are a :class:`ConfigError` naming ``search.options.NAME``.
    Raises :class:`BudgetError` if the budgets are impossible (checked up front for cheap
    metrics) or if no evaluated architecture met them.

    ``info`` of the result reports ``real_evaluations`` (this run's distinct real evaluations)
    and ``cheap_lookups`` (cheap metrics computed by operators on genomes not evaluated); an
    NSGA-II with the learnt crossover rate (the default) adds ``crossover_rate``, the rate it
    ended with."""
    _check_count("pop_size", pop_size, 2)
    _check_count("generations", generations, 1)
    _check_count("budget", budget, 1)
    problem.check_budgets()
    name = algorithm if isinstance(algorithm, str) else type(algorithm).__name__
    algo = algorithm
    if isinstance(algorithm, str):
        algo = build_algorithm(algorithm, problem, pop_size, **(options or {}))
    elif options:
        raise ConfigError(f"search options {sorted(options)}: give them to the algorithm "
                          f"object {name} itself (options only go with an algorithm name)")
    if hasattr(algo, "run_search"):  # a loop around pymoo (surrogate-assisted), not an Algorithm
        return algo.run_search(problem, budget=budget, generations=generations, seed=seed,
                               progress=progress)
    if budget is None and generations is None:
        generations = DEFAULT_GENERATIONS
    settings = {"algorithm": name, "pop_size": pop_size, "generations": generations,
                "seed": seed, **({"budget": budget} if budget is not None else {})}
    saved = problem.archive.last_state(problem.run) if problem.archive is not None else None
    if saved is not None and saved[1].get("settings") != settings:
        raise ConfigError(f"run {problem.run!r} was started with {saved[1].get('settings')}; "
                          f"resuming it with {settings} would not continue the same search")
    # an archived run counts all its rows (a resumed run has spent some already); a bare
    # problem may have been searched before, so count from here
    base_real = 0 if problem.archive is not None else problem.n_real
    t0 = time.perf_counter()
    with counting_cheap_lookups(problem) as lookups:
        stop = _drive(problem, algo, settings, saved, base_real, budget, generations, seed,
                      progress)
    seconds = time.perf_counter() - t0
    front = pareto_rows(problem.history, problem.objective_names)
    failures = problem.failures()
    info = {**settings, "failed_evaluations": len(failures),
            "real_evaluations": problem.n_real - base_real, "cheap_lookups": lookups.n,
            "stop_reason": stop,
            "resumed_from_generation": saved[1]["n_iter"] if saved else None,
            **operator_stats(algo), **(algo.run_info() if hasattr(algo, "run_info") else {})}
    result = SearchResult(problem.objective_names, dict(problem.budgets), problem.history, front,
                          seconds, info)
    if not front:
        raise problem.no_front_error(f"{len(problem.history)} evaluations")
    return result


def _drive(problem: NASProblem, algo: Algorithm, settings: dict, saved: tuple | None,
           base_real: int, budget: int | None, generations: int | None, seed: int,
           progress: bool) -> str:
    """Ask/tell ``algo`` until the budget, the generations or new genomes run out; returns why
    it stopped (``budget``, ``generations``, ``exhausted``, ``stalled``, ``terminated``)."""
    by_evals = budget is not None
    cb = _Progress(budget if by_evals else generations, problem, progress, settings, base_real,
                   by_evals)
    algo.setup(problem, termination=("n_gen", generations or 10**9), seed=seed, callback=cb,
               verbose=False)
    if problem.archive is not None:  # every row of an archived run came after its start
        cb.mark_real, cb.mark_hist = 0, 0
    if saved is not None:
        _restore(algo, problem, saved[1])
        cb.stall = int(saved[1].get("stall", 0))
        cb.mark_real = int(saved[1].get("n_real", problem.n_real))
        cb.mark_hist = int(saved[1].get("n_history", len(problem.history)))
        cb.bar.update(min(problem.n_real - base_real, budget) if by_evals else saved[1]["n_iter"])
    try:
        while True:
            if by_evals and cb.mark_real - base_real >= budget:
                return "budget"
            if cb.stall and _exhausted(problem):
                return "exhausted"
            if cb.stall >= STALL_GENERATIONS:
                return "stalled"
            if not algo.has_next():
                return "generations" if algo.n_iter > (generations or 10**9) else "terminated"
            off = algo.ask()
            if off is None:  # the algorithm has nothing left to propose
                return "exhausted" if _exhausted(problem) else "terminated"
            if by_evals:  # the live count: rows this generation committed before a kill
                off = _within_budget(problem, off, budget - (problem.n_real - base_real))
            if len(off):
                algo.evaluator.eval(problem, off, algorithm=algo)
            new = len(problem.history) - cb.mark_hist  # genomes first learnt this generation
            cb.stall = 0 if new else cb.stall + 1
            algo.tell(infills=off)
    finally:
        cb.close()
