"""A DEAP toolbox over a NASProblem, so DEAP users run ``eaMuPlusLambda`` (or any DEAP
algorithm) on our problems with DEAP's own operators.

DEAP draws from Python's ``random`` module: seed it with ``random.seed`` as DEAP users do (our
pymoo algorithms use pymoo's Generator instead). Evaluations go through ``problem.measure``, so
the problem's history and cache see every architecture, exactly as with pymoo.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
from deap import base, tools

from evo_nas.errors import ConfigError
from problems.nas import NASProblem

__all__ = ["deap_toolbox", "feasibility_first"]


def feasibility_first(select: Callable[..., list], **kwargs: Any) -> Callable[..., list]:
    """Wrap a DEAP selection so feasible individuals (``violation == 0``) always come first;
    infeasible ones fill up by smallest violation (constraints are never folded into fitness)."""

    def wrapped(individuals: list, k: int) -> list:
        feas = [i for i in individuals if getattr(i, "violation", 0.0) <= 0]
        if len(feas) >= k:
            return select(feas, k, **kwargs)
        rest = sorted((i for i in individuals if getattr(i, "violation", 0.0) > 0),
                      key=lambda i: i.violation)
        return feas + rest[: k - len(feas)]

    return wrapped


def deap_toolbox(problem: NASProblem, repair: Any = None, indpb: float | None = None,
                 tournsize: int = 3) -> base.Toolbox:
    """A ``deap.base.Toolbox`` for ``problem``.

    Registers ``individual``, ``population``, ``evaluate`` (minimised objectives; budgets set
    ``ind.violation``), ``mate`` (``tools.cxUniform``), ``mutate`` (``tools.mutUniformInt``),
    ``select`` (``tools.selNSGA2`` for several objectives, ``tools.selTournament`` for one, both
    feasibility-first) and ``decode`` (individual -> config). Children are canonicalised and, when
    ``repair`` (a pymoo Repair such as :class:`operators.BudgetRepair`) is given, repaired.
    """
    if not isinstance(problem, NASProblem):
        raise ConfigError(f"deap_toolbox needs a NASProblem, got {type(problem).__name__}")
    space = problem.space
    n_obj = problem.n_obj
    low, up = space.xl.tolist(), space.xu.tolist()
    prob = indpb if indpb is not None else 1.0 / space.n_var
    fitness_cls = type("NASFitness", (base.Fitness,), {"weights": (-1.0,) * n_obj})

    class Individual(list):
        """A genome (list of option indices) with a DEAP fitness and a budget violation."""

        def __init__(self, genes: Any = ()) -> None:
            super().__init__(int(g) for g in genes)
            self.fitness = fitness_cls()
            self.violation = 0.0

    def fix(ind: Individual) -> Individual:
        X = np.asarray([ind], dtype=np.int64)
        X = repair._do(problem, X) if repair is not None else space.canonical(X)
        ind[:] = [int(v) for v in np.atleast_2d(X)[0]]
        return ind

    def random_individual() -> Individual:
        return fix(Individual(random.randint(lo, hi) for lo, hi in zip(low, up, strict=True)))

    def evaluate(ind: Individual) -> tuple[float, ...]:
        rec = problem.measure(np.asarray([ind], dtype=np.int64))[0]
        F = tuple(float(rec[n]) for n in problem.objective_names)
        if not all(np.isfinite(F)):
            ind.violation = float("inf")
            return tuple(float("inf") for _ in F)
        ind.violation = float(sum(max(0.0, rec[n] - b) for n, b in problem.budgets.items()))
        return F

    def mate(a: Individual, b: Individual) -> tuple[Individual, Individual]:
        tools.cxUniform(a, b, indpb=0.5)
        return fix(a), fix(b)

    def mutate(ind: Individual) -> tuple[Individual]:
        tools.mutUniformInt(ind, low=low, up=up, indpb=prob)
        return (fix(ind),)

    tb = base.Toolbox()
    tb.register("individual", random_individual)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("evaluate", evaluate)
    tb.register("mate", mate)
    tb.register("mutate", mutate)
    if n_obj > 1:
        tb.register("select", feasibility_first(tools.selNSGA2))
    else:
        tb.register("select", feasibility_first(tools.selTournament, tournsize=tournsize))
    tb.register("decode", lambda ind: space.decode(np.asarray(ind, dtype=np.int64)))
    tb.Individual = Individual
    return tb
