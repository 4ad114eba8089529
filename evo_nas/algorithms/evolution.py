"""Regularized (aging) and tournament evolution as pymoo algorithms.

Both keep a population, pick each parent by a tournament over ``sample_size`` random members,
mutate it (no crossover: the mutation-only scheme of Real et al.), and make room for the
children: *regularized* evolution removes the oldest members (aging, AmoebaNet, Real et al. 2019),
*tournament* evolution removes the worst (the non-aging baseline of the same paper). They run
under ``pymoo.optimize.minimize`` with any termination and callback.

They are multi-objective by default: a tournament picks the member of best non-dominated rank,
then largest crowding distance (``fitness="pareto"``). ``fitness="random_weights"`` (or
``weights="random"``) scores each tournament by its own random weight vector instead
(ParEGO-style); measured at 300 real evaluations on NB201 and a MobileNet table
(``benchmarks/bench_operators.py``), Pareto-rank tournaments scored higher on every table and
above random search, random weights fell below random search on one table, and the
single-objective form (``objective=...``, or fixed ``weights`` scalarising the objectives
normalised by the ranges seen so far) fell below random search on every table.
Constraints are feasibility-first: a feasible member beats an infeasible one, and infeasible
members compare by total violation. Every random draw comes from pymoo's ``random_state``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.initialization import Initialization
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from pymoo.util.optimum import filter_optimum

from evo_nas.algorithms.options import (
    OptionContext,
    OptionSchema,
    check_in_pop,
    check_int,
    check_objective,
    check_operator,
    is_int,
    make_repair,
    make_sampling,
    problem_and_space,
)
from evo_nas.errors import ConfigError
from evo_nas.space import SearchSpace
from operators import CanonicalDuplicateElimination, NeighbourMutation

__all__ = [
    "EVOLUTION_OPTIONS",
    "RegularizedEvolution",
    "TournamentEvolution",
    "check_evolution_options",
    "make_regularized",
    "make_tournament",
    "pareto_keys",
    "scalarize",
]

SCALARIZATIONS = ("weighted_sum", "tchebycheff")
FITNESS = ("pareto", "random_weights")


def scalarize(F: np.ndarray, weights: Sequence[float], lo: np.ndarray, hi: np.ndarray,
              method: str = "weighted_sum") -> np.ndarray:
    """One value per row of ``F`` (minimised): objectives normalised to ``[0, 1]`` by ``lo`` and
    ``hi``, then a weighted sum or a weighted Tchebycheff (max) norm."""
    if method not in SCALARIZATIONS:
        raise ConfigError(f"scalarization = {method!r}: choose one of {SCALARIZATIONS}")
    F = np.atleast_2d(np.asarray(F, dtype=float))
    w = np.asarray(weights, dtype=float)
    span = np.where(hi > lo, hi - lo, 1.0)
    Z = (F - lo) / span
    out = (Z * w).sum(axis=1) if method == "weighted_sum" else (Z * w).max(axis=1)
    out[~np.all(np.isfinite(F), axis=1)] = np.inf
    return out


def pareto_keys(F: np.ndarray) -> np.ndarray:
    """One value per row of ``F`` (minimised; smaller is better): the non-dominated rank, with
    crowding distance breaking ties inside a front (NSGA-II's order, as one sortable number).
    Rows with a non-finite objective (failed evaluations) come last."""
    F = np.atleast_2d(np.asarray(F, dtype=float))
    out = np.full(len(F), np.inf)
    ok = np.flatnonzero(np.all(np.isfinite(F), axis=1))
    if len(ok) == 0:
        return out
    fronts = NonDominatedSorting().do(F[ok])
    for r, front in enumerate(fronts):
        cd = calc_crowding_distance(F[ok[front]]) if len(front) > 2 else np.full(len(front),
                                                                                  np.inf)
        out[ok[front]] = r + 0.5 / (1.0 + np.nan_to_num(cd, posinf=1e12))  # r <= key < r + 1
    return out


def check_evolution_options(options: Mapping[str, Any], ctx: OptionContext) -> None:
    """Check the given options of regularized/tournament evolution (see
    :class:`RegularizedEvolution`); absent ones keep their defaults. ``sample_size`` and
    ``n_offsprings`` are checked against ``ctx.pop_size``, ``objective`` and ``weights`` against
    the objective names where the context knows them."""
    pop_size = options.get("pop_size", ctx.pop_size)
    if pop_size is not None and (not is_int(pop_size) or pop_size < 2):
        ctx.fail("pop_size", pop_size, "must be an int >= 2")
    for name, why in (("sample_size", ": a tournament draws that many distinct members"),
                      ("n_offsprings", ": the children of one generation")):
        check_in_pop(ctx, name, options.get(name), 1, pop_size, why)
    if isinstance(options.get("weights"), str) and options["weights"] != "random":
        ctx.fail("weights", options["weights"], "a sequence of floats or 'random'")
    check_objective(ctx, options.get("objective"), options.get("weights"))
    if "fitness" in options and options["fitness"] not in FITNESS:
        ctx.fail("fitness", options["fitness"], f"choose one of {FITNESS}")
    if "scalarization" in options and options["scalarization"] not in SCALARIZATIONS:
        ctx.fail("scalarization", options["scalarization"], f"choose one of {SCALARIZATIONS}")
    if "max_retries" in options:
        check_int(ctx, "max_retries", options["max_retries"], 0,
                  " (redraws of duplicate children per generation)")
    mutation = options.get("mutation")
    if mutation is not None and not isinstance(mutation, Mutation):
        ctx.fail("mutation", mutation, "a pymoo Mutation object (Python only; the default is "
                                       "NeighbourMutation with at least one change per child)")
    for name in ("repair", "sampling"):
        if options.get(name) is not None:
            check_operator(ctx, name, options[name])


EVOLUTION_OPTIONS = OptionSchema(
    ("fitness", "max_retries", "mutation", "n_offsprings", "objective", "repair", "sample_size",
     "sampling", "scalarization", "weights"), check_evolution_options)


class _MutationEvolution(Algorithm):
    """Shared machinery; subclasses choose which members leave (``_remove``)."""

    removal = "oldest"
    algorithm_name = "regularized"  # its name in the registry (and in error messages)

    def __init__(
        self,
        space: SearchSpace,
        pop_size: int = 50,
        sample_size: int | None = None,
        n_offsprings: int | None = None,
        objective: int | str | None = None,
        weights: Sequence[float] | str | None = None,
        fitness: str = "pareto",
        scalarization: str = "tchebycheff",
        sampling: str | Sampling | None = "choice",
        mutation: Mutation | None = None,
        repair: str | Repair | None = "canonical",
        max_retries: int = 10,
        problem: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        ctx = OptionContext(self.algorithm_name, pop_size=pop_size, space=space, problem=problem)
        check_evolution_options(
            {"pop_size": pop_size, "sample_size": sample_size, "n_offsprings": n_offsprings,
             "objective": objective, "weights": weights, "fitness": fitness,
             "scalarization": scalarization, "sampling": sampling, "mutation": mutation,
             "repair": repair, "max_retries": max_retries}, ctx)
        if sample_size is None:
            sample_size = max(2, pop_size // 4)
        n_off = max(1, pop_size // 4) if n_offsprings is None else n_offsprings
        self.space = space
        self.pop_size = pop_size
        self.sample_size = sample_size
        self.n_offsprings = n_off
        self.objective = objective
        self.weights = weights
        if weights == "random":
            fitness = "random_weights"
        self.fitness = fitness
        # multi-objective unless one objective or one fixed weight vector is asked for
        self.multi = objective is None and (weights is None or weights == "random")
        self.scalarization = scalarization
        self.mutation = (mutation if mutation is not None
                         else NeighbourMutation(space, at_least_once=True))
        self.repair = make_repair("canonical" if repair is None else repair, space, problem, ctx)
        self.dedup = CanonicalDuplicateElimination(space)
        self.initialization = Initialization(
            make_sampling("choice" if sampling is None else sampling, space, problem, ctx),
            repair=self.repair, eliminate_duplicates=self.dedup)
        self.max_retries = max_retries
        self.evaluated = Population.empty()  # every individual evaluated, for the optimum
        self._w: np.ndarray | None = None
        self.stats = {"children": 0, "duplicates_retried": 0, "duplicates_dropped": 0}

    # ----------------------------------------------------------------- setup
    def _setup(self, problem: Any, **kwargs: Any) -> None:
        n_obj = problem.n_obj
        names = list(getattr(problem, "objective_names", []))
        if self.multi:
            return
        if self.weights is None:
            obj = self.objective
            if isinstance(obj, str):
                if obj not in names:
                    raise ConfigError(f"objective = {obj!r}: the problem's objectives are "
                                      f"{names or list(range(n_obj))}")
                obj = names.index(obj)
            if not isinstance(obj, int | np.integer) or not 0 <= obj < n_obj:
                raise ConfigError(f"objective = {obj!r}: index out of 0..{n_obj - 1}")
            self._w = np.eye(n_obj)[int(obj)]
        else:
            w = np.asarray(self.weights, dtype=float).reshape(-1)
            if w.shape != (n_obj,) or np.any(w < 0) or not np.any(w > 0):
                raise ConfigError(f"weights = {list(self.weights)}: need {n_obj} non-negative "
                                  f"values, not all zero")
            self._w = w / w.sum()

    # ----------------------------------------------------------------- fitness
    def _violation(self, pop: Population) -> np.ndarray:
        cv = pop.get("CV")
        return np.zeros(len(pop)) if cv is None else np.asarray(cv, dtype=float).reshape(-1)

    def _scalar(self, F: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Scalarised ``F`` with objectives normalised by the ranges evaluated so far."""
        ev = self.evaluated.get("F") if len(self.evaluated) else F
        ev = ev[np.all(np.isfinite(ev), axis=1)]
        lo = ev.min(axis=0) if len(ev) else np.zeros(F.shape[1])
        hi = ev.max(axis=0) if len(ev) else np.ones(F.shape[1])
        return scalarize(F, w, lo, hi, self.scalarization)

    def _keys(self, pop: Population) -> tuple[np.ndarray, np.ndarray]:
        """(violation, value) per member, smaller better, violation first: the scalarised
        objective (single-objective forms) or the Pareto rank with crowding (multi-objective)."""
        F = pop.get("F")
        if self._w is not None:
            return self._violation(pop), self._scalar(F, self._w)
        return self._violation(pop), pareto_keys(F)

    # ----------------------------------------------------------------- the scheme
    def _initialize_infill(self) -> Population:
        return self.initialization.do(self.problem, self.pop_size, algorithm=self,
                                      random_state=self.random_state)

    def _initialize_advance(self, infills: Population | None = None, **kwargs: Any) -> None:
        self.evaluated = Population.merge(self.evaluated, infills)

    def _parents(self, n: int) -> np.ndarray:
        """``n`` tournament winners among ``sample_size`` distinct random members each. With
        ``fitness="random_weights"`` every tournament scores by its own random Tchebycheff (or
        weighted-sum) weights, which spreads the children along the front."""
        rng = self.random_state
        pop = self.pop
        size = min(self.sample_size, len(pop))
        cv = self._violation(pop)
        per_child = self.multi and self.fitness == "random_weights"
        if not per_child:
            val = self._keys(pop)[1]
        F = pop.get("F")
        out = np.empty(n, dtype=np.int64)
        for i in range(n):
            S = rng.choice(len(pop), size=size, replace=False)
            if per_child:
                w = rng.dirichlet(np.ones(F.shape[1]))
                v = self._scalar(F[S], w)
            else:
                v = val[S]
            out[i] = S[np.lexsort((v, cv[S]))[0]]
        return out

    def _children(self, n: int) -> Population:
        parents = self._parents(n)
        off = Population.new(X=self.pop.get("X")[parents].copy())
        off = self.mutation.do(self.problem, off, random_state=self.random_state)
        return self.repair.do(self.problem, off, random_state=self.random_state)

    def _infill(self) -> Population | None:
        off = self.dedup.do(self._children(self.n_offsprings), self.pop)
        for _ in range(self.max_retries):  # bounded: a tiny space may run out of new children
            missing = self.n_offsprings - len(off)
            if missing <= 0:
                break
            self.stats["duplicates_retried"] += missing
            more = self.dedup.do(self._children(missing), self.pop, off)
            off = Population.merge(off, more)
        self.stats["duplicates_dropped"] += max(0, self.n_offsprings - len(off))
        if len(off) == 0:
            self.termination.force_termination = True
            return None
        self.stats["children"] += len(off)
        return off

    def _advance(self, infills: Population | None = None, **kwargs: Any) -> None:
        if infills is None:
            return
        self.evaluated = Population.merge(self.evaluated, infills)
        pop = Population.merge(self.pop, infills)  # order = age: oldest first
        n_out = len(pop) - self.pop_size
        if n_out > 0:
            pop = self._remove(pop, n_out)
        self.pop = pop

    def _remove(self, pop: Population, n_out: int) -> Population:
        return pop[n_out:]  # aging: the oldest leave

    def _set_optimum(self, **kwargs: Any) -> None:
        pool = self.evaluated if len(self.evaluated) else self.pop
        if self.multi:
            self.opt = filter_optimum(pool, least_infeasible=True)
        else:
            cv, val = self._keys(pool)
            self.opt = pool[[int(np.lexsort((val, cv))[0])]]
        if self.opt is not None and not isinstance(self.opt, Population):
            self.opt = Population.create(self.opt)


class RegularizedEvolution(_MutationEvolution):
    """Aging evolution: tournament parents, mutation, the oldest members leave.

    ``pop_size`` members, tournaments of ``sample_size`` distinct members (default
    ``pop_size // 4``, at least 2: Real et al.'s ratio), ``n_offsprings`` children per
    generation (default ``pop_size // 4``; 1 is the strictly sequential original).
    Multi-objective by default: tournaments compare members by non-dominated rank, then
    crowding (``fitness="pareto"``), or each by its own random weight vector
    (``fitness="random_weights"``, ``scalarization`` ``"tchebycheff"`` or ``"weighted_sum"``;
    ``weights="random"`` says the same). ``objective`` (index or name) or fixed ``weights``
    make it single-objective. ``repair`` is ``"canonical"`` (the default) or ``"budget"`` (every
    child repaired into the problem's budgets on cheap metrics, :class:`operators.BudgetRepair`),
    ``sampling`` ``"choice"`` (the default) or ``"budget"`` (:class:`operators.BudgetSampling`);
    the budget operators need ``problem`` (the builders :func:`make_regularized` /
    :func:`make_tournament` pass it), and any pymoo ``Repair``/``Sampling`` object also works.
    ``mutation`` defaults to :class:`operators.NeighbourMutation` with at least one change per
    child; ``max_retries`` bounds the redraws of duplicate children per generation.
    """


class TournamentEvolution(_MutationEvolution):
    """Non-aging tournament evolution: like :class:`RegularizedEvolution`, but the *worst*
    members leave (feasibility first; multi-objective: highest non-dominated rank, then least
    crowding distance, as NSGA-II's survival), so good architectures live forever."""

    removal = "worst"
    algorithm_name = "tournament"

    def _remove(self, pop: Population, n_out: int) -> Population:
        cv, val = self._keys(pop)
        order = np.lexsort((-np.arange(len(pop)), val, cv))  # ties: the older leaves first
        keep = np.sort(order[: len(pop) - n_out])
        return pop[keep]


def make_regularized(problem: Any, pop_size: int = 50, **kwargs: Any
                     ) -> RegularizedEvolution:
    """Registry builder for ``search.algorithm = "regularized"``: ``problem`` is the problem to
    search (or its :class:`SearchSpace`, for everything but ``repair``/``sampling = "budget"``);
    options as :class:`RegularizedEvolution`."""
    problem, space = problem_and_space(problem)
    return RegularizedEvolution(space, pop_size=pop_size, problem=problem, **kwargs)


def make_tournament(problem: Any, pop_size: int = 50, **kwargs: Any
                    ) -> TournamentEvolution:
    """Registry builder for ``search.algorithm = "tournament"`` (see :func:`make_regularized`)."""
    problem, space = problem_and_space(problem)
    return TournamentEvolution(space, pop_size=pop_size, problem=problem, **kwargs)
