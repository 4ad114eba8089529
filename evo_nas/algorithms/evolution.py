"""Regularized (aging) and tournament evolution as pymoo algorithms.

Both keep a population, pick each parent by a tournament over ``sample_size`` random members,
mutate it (no crossover: the mutation-only scheme of Real et al.), and make room for the
children: *regularized* evolution removes the oldest members (aging, AmoebaNet, Real et al. 2019),
*tournament* evolution removes the worst (the non-aging baseline of the same paper). They run
under ``pymoo.optimize.minimize`` with any termination and callback.

They are single-objective searches on a chosen objective, or on a scalarisation of all
objectives (normalised by the ranges seen so far): fixed ``weights``, or ``weights="random"`` for
a fresh weight vector each generation (ParEGO-style), which spreads the search along the front.
Constraints are feasibility-first: a feasible member beats an infeasible one, and infeasible
members compare by total violation. Every random draw comes from pymoo's ``random_state``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.initialization import Initialization
from pymoo.core.population import Population
from pymoo.core.repair import Repair
from pymoo.util.optimum import filter_optimum

from evo_nas.errors import ConfigError
from evo_nas.space import SearchSpace
from operators import CanonicalDuplicateElimination, CanonicalRepair, ChoiceMutation, ChoiceSampling

__all__ = [
    "RegularizedEvolution",
    "TournamentEvolution",
    "make_regularized",
    "make_tournament",
    "scalarize",
]

SCALARIZATIONS = ("weighted_sum", "tchebycheff")


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


class _MutationEvolution(Algorithm):
    """Shared machinery; subclasses choose which members leave (``_remove``)."""

    removal = "oldest"

    def __init__(
        self,
        space: SearchSpace,
        pop_size: int = 50,
        sample_size: int = 10,
        n_offsprings: int | None = None,
        objective: int | str | None = None,
        weights: Sequence[float] | str | None = None,
        scalarization: str = "weighted_sum",
        sampling: Any = None,
        mutation: Any = None,
        repair: Repair | None = None,
        max_retries: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(pop_size, int) or pop_size < 2:
            raise ConfigError(f"pop_size = {pop_size!r}: must be an int >= 2")
        if not isinstance(sample_size, int) or not 1 <= sample_size:
            raise ConfigError(f"sample_size = {sample_size!r}: must be an int >= 1")
        n_off = max(1, pop_size // 4) if n_offsprings is None else n_offsprings
        if not isinstance(n_off, int) or not 1 <= n_off <= pop_size:
            raise ConfigError(f"n_offsprings = {n_offsprings!r}: must be an int in 1..pop_size")
        if objective is not None and weights is not None:
            raise ConfigError("give either objective or weights, not both")
        if isinstance(weights, str) and weights != "random":
            raise ConfigError(f"weights = {weights!r}: a sequence of floats or 'random'")
        if scalarization not in SCALARIZATIONS:
            raise ConfigError(f"scalarization = {scalarization!r}: choose one of "
                              f"{SCALARIZATIONS}")
        self.space = space
        self.pop_size = pop_size
        self.sample_size = sample_size
        self.n_offsprings = n_off
        self.objective = objective
        self.weights = weights
        self.scalarization = scalarization
        self.mutation = mutation if mutation is not None else ChoiceMutation(space)
        self.repair = repair if repair is not None else CanonicalRepair(space)
        self.dedup = CanonicalDuplicateElimination(space)
        self.initialization = Initialization(
            sampling if sampling is not None else ChoiceSampling(space),
            repair=self.repair, eliminate_duplicates=self.dedup)
        self.max_retries = max_retries
        self.evaluated = Population.empty()  # every individual evaluated, for the optimum
        self._w: np.ndarray | None = None
        self.stats = {"children": 0, "duplicates_retried": 0, "duplicates_dropped": 0}

    # ----------------------------------------------------------------- setup
    def _setup(self, problem: Any, **kwargs: Any) -> None:
        n_obj = problem.n_obj
        names = list(getattr(problem, "objective_names", []))
        if self.weights is None:
            obj = 0 if self.objective is None else self.objective
            if isinstance(obj, str):
                if obj not in names:
                    raise ConfigError(f"objective = {obj!r}: the problem's objectives are "
                                      f"{names or list(range(n_obj))}")
                obj = names.index(obj)
            if not isinstance(obj, int | np.integer) or not 0 <= obj < n_obj:
                raise ConfigError(f"objective = {obj!r}: index out of 0..{n_obj - 1}")
            self._w = np.eye(n_obj)[int(obj)]
        elif not isinstance(self.weights, str):
            w = np.asarray(self.weights, dtype=float).reshape(-1)
            if w.shape != (n_obj,) or np.any(w < 0) or not np.any(w > 0):
                raise ConfigError(f"weights = {list(self.weights)}: need {n_obj} non-negative "
                                  f"values, not all zero")
            self._w = w / w.sum()

    # ----------------------------------------------------------------- fitness
    def _keys(self, pop: Population, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(violation, scalar) per member; smaller is better, violation first."""
        F = pop.get("F")
        cv = pop.get("CV")
        cv = np.zeros(len(pop)) if cv is None else np.asarray(cv, dtype=float).reshape(-1)
        ev = self.evaluated.get("F")
        ev = ev[np.all(np.isfinite(ev), axis=1)] if len(self.evaluated) else F
        lo = ev.min(axis=0) if len(ev) else np.zeros(F.shape[1])
        hi = ev.max(axis=0) if len(ev) else np.ones(F.shape[1])
        return cv, scalarize(F, w, lo, hi, self.scalarization)

    def _generation_weights(self) -> np.ndarray:
        if self._w is not None:
            return self._w
        return self.random_state.dirichlet(np.ones(self.problem.n_obj))

    # ----------------------------------------------------------------- the scheme
    def _initialize_infill(self) -> Population:
        return self.initialization.do(self.problem, self.pop_size, algorithm=self,
                                      random_state=self.random_state)

    def _initialize_advance(self, infills: Population | None = None, **kwargs: Any) -> None:
        self.evaluated = Population.merge(self.evaluated, infills)

    def _tournament(self, cv: np.ndarray, val: np.ndarray, n: int) -> np.ndarray:
        rng = self.random_state
        size = min(self.sample_size, len(cv))
        out = np.empty(n, dtype=np.int64)
        for i in range(n):
            S = rng.choice(len(cv), size=size, replace=False)
            out[i] = S[np.lexsort((val[S], cv[S]))[0]]
        return out

    def _children(self, n: int, cv: np.ndarray, val: np.ndarray) -> Population:
        parents = self._tournament(cv, val, n)
        off = Population.new(X=self.pop.get("X")[parents].copy())
        off = self.mutation.do(self.problem, off, random_state=self.random_state)
        return self.repair.do(self.problem, off, random_state=self.random_state)

    def _infill(self) -> Population | None:
        self._gen_w = self._generation_weights()
        cv, val = self._keys(self.pop, self._gen_w)
        off = self.dedup.do(self._children(self.n_offsprings, cv, val), self.pop)
        for _ in range(self.max_retries):  # bounded: a tiny space may run out of new children
            missing = self.n_offsprings - len(off)
            if missing <= 0:
                break
            self.stats["duplicates_retried"] += missing
            more = self.dedup.do(self._children(missing, cv, val), self.pop, off)
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
        if self.weights == "random":
            self.opt = filter_optimum(pool, least_infeasible=True)
        else:
            cv, val = self._keys(pool, self._w)
            self.opt = pool[[int(np.lexsort((val, cv))[0])]]
        if self.opt is not None and not isinstance(self.opt, Population):
            self.opt = Population.create(self.opt)


class RegularizedEvolution(_MutationEvolution):
    """Aging evolution: tournament parents, mutation, the oldest members leave.

    ``pop_size`` members, tournaments of ``sample_size``, ``n_offsprings`` children per
    generation (default ``pop_size // 4``; 1 is the strictly sequential original). ``objective``
    (index or name) or ``weights`` (sequence, or ``"random"``) choose what is minimised;
    ``scalarization`` is ``"weighted_sum"`` or ``"tchebycheff"``. ``repair`` defaults to the
    canonical repair; pass :class:`operators.BudgetRepair` for hard budgets.
    """


class TournamentEvolution(_MutationEvolution):
    """Non-aging tournament evolution: like :class:`RegularizedEvolution`, but the *worst*
    members leave (feasibility first), so good architectures live forever."""

    removal = "worst"

    def _remove(self, pop: Population, n_out: int) -> Population:
        cv, val = self._keys(pop, getattr(self, "_gen_w", None) if self._w is None else self._w)
        order = np.lexsort((-np.arange(len(pop)), val, cv))  # ties: the older leaves first
        keep = np.sort(order[: len(pop) - n_out])
        return pop[keep]


def make_regularized(space: SearchSpace, pop_size: int = 50, **kwargs: Any
                     ) -> RegularizedEvolution:
    """Registry builder for ``search.algorithm = "regularized"``."""
    return RegularizedEvolution(space, pop_size=pop_size, **kwargs)


def make_tournament(space: SearchSpace, pop_size: int = 50, **kwargs: Any
                    ) -> TournamentEvolution:
    """Registry builder for ``search.algorithm = "tournament"``."""
    return TournamentEvolution(space, pop_size=pop_size, **kwargs)
