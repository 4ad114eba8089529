"""What the registered algorithms take in ``search.options``, checked without building one.

Each algorithm has an :class:`OptionSchema`: its option names (unknown ones get a did-you-mean in
:func:`evo_nas.algorithms.check_options`) and a function that checks the values (types, ranges,
choices) against an :class:`OptionContext`: what is known where the check runs. At config-load
time that is the search space, ``search.pop_size``, the objective names and which budgets can be
on cheap metrics; inside a builder it is the problem itself. The builders run the same checks, so
a value is judged the same way from a config file, the CLI and Python.

The operator options ``repair`` and ``sampling`` name an operator built from the problem:

* ``repair``: ``"canonical"`` (:class:`~operators.CanonicalRepair`, the default) or ``"budget"``
  (:class:`~operators.BudgetRepair` against every budget of the problem on a cheap metric: every
  child is moved into the budget before it is evaluated);
* ``sampling``: ``"choice"`` (:class:`~operators.ChoiceSampling`, the default) or ``"budget"``
  (:class:`~operators.BudgetSampling`: the initial population drawn inside the cheap budgets).

From Python an operator object (a pymoo ``Repair`` / ``Sampling``) is accepted as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling

from evo_nas.errors import ConfigError
from evo_nas.metrics import is_cheap
from evo_nas.space import SearchSpace

__all__ = [
    "REPAIRS",
    "SAMPLINGS",
    "OptionContext",
    "OptionSchema",
    "make_repair",
    "make_sampling",
    "problem_and_space",
]

REPAIRS = ("canonical", "budget")
SAMPLINGS = ("choice", "budget")


@dataclass(frozen=True)
class OptionContext:
    """What an option check may compare values with; ``None`` fields are not known there.

    ``cheap_budgets``: names of the budgets that can be on cheap metrics (config-load time, before
    the metrics exist); with ``problem`` set, the problem's own budgets are read instead.
    ``budget``: the real evaluations the search may spend (``search.budget``).
    ``path``: where the options come from, named in messages (``"search.options"``); without
    it a message names the algorithm (``nsga2 option crossover_prob = 5: ...``).
    """

    algorithm: str
    pop_size: int | None = None
    space: SearchSpace | None = None
    objectives: tuple[str, ...] | None = None
    cheap_budgets: tuple[str, ...] | None = None
    problem: Any = None
    budget: int | None = None
    path: str | None = None

    def where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else f"{self.algorithm} option {name}"

    def fail(self, name: str, value: Any, what: str) -> NoReturn:
        raise ConfigError(f"{self.where(name)} = {value!r}: {what}")

    def budgets_of_cheap_metrics(self) -> list[str] | None:
        """The budgets a budget operator can use (``None``: not known here)."""
        if self.problem is not None:
            budgets = getattr(self.problem, "budgets", None) or {}
            metrics = getattr(self.problem, "metrics", None) or {}
            return [n for n in budgets if n in metrics and is_cheap(metrics[n])]
        return None if self.cheap_budgets is None else list(self.cheap_budgets)


@dataclass(frozen=True)
class OptionSchema:
    """The options of one algorithm: ``names`` (``None``: any keyword, checked by the builder
    only) and ``check(options, context)``, which raises :class:`ConfigError` on a bad value."""

    names: tuple[str, ...] | None
    check: Callable[[Mapping[str, Any], OptionContext], None]


# --------------------------------------------------------------------------- value checks
def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def check_unit(ctx: OptionContext, name: str, v: Any, what: str = "") -> None:
    if not is_number(v) or not 0 <= v <= 1:
        ctx.fail(name, v, f"must be a number in 0..1{what}")


def check_int(ctx: OptionContext, name: str, v: Any, low: int, what: str = "") -> None:
    if not is_int(v) or v < low:
        ctx.fail(name, v, f"must be an int >= {low}{what}")


def check_in_pop(ctx: OptionContext, name: str, v: Any, low: int, pop_size: Any,
                 why: str) -> None:
    """``v`` (unless None) is an int from ``low`` to the population size, where that is known."""
    top = pop_size if is_int(pop_size) else None
    if v is not None and (not is_int(v) or v < low or (top is not None and v > top)):
        span = f"{low}..pop_size" + (f" ({top})" if top is not None else "")
        ctx.fail(name, v, f"must be an int in {span}{why}")


def check_operator(ctx: OptionContext, name: str, value: Any) -> None:
    """``repair`` / ``sampling``: one of the names, or (Python) an operator object; ``"budget"``
    needs a budget on a cheap metric wherever the problem's budgets are known."""
    names, base = (REPAIRS, Repair) if name == "repair" else (SAMPLINGS, Sampling)
    if isinstance(value, base):
        return
    if not isinstance(value, str) or value not in names:
        ctx.fail(name, value, f"choose one of {list(names)}" +
                 ("" if isinstance(value, str) else f" (or a pymoo {base.__name__} object)"))
    if value == "budget" and ctx.budgets_of_cheap_metrics() == []:
        if ctx.problem is not None:
            given = sorted(getattr(ctx.problem, "budgets", {}) or {})
            where = (f"the problem's budgets {given} are on no cheap metric (mark a cost metric "
                     f"with `cheap = True`)" if given else "the problem has no budgets")
        else:
            where = ("search.budgets has none on flops, params or latency (e.g. --budget "
                     "flops=N)")
        ctx.fail(name, value, f"needs a budget on a cheap metric to keep, and {where}; or use "
                              f"{name} = {names[0]!r}")


# --------------------------------------------------------------------------- building
def problem_and_space(target: Any) -> tuple[Any, SearchSpace]:
    """``(problem, space)`` of a builder's first argument: a problem with a ``space`` (the
    registry's call), or a bare :class:`SearchSpace` (``problem`` is then ``None``)."""
    if isinstance(target, SearchSpace):
        return None, target
    space = getattr(target, "space", None)
    if isinstance(space, SearchSpace):
        return target, space
    raise ConfigError(f"an algorithm is built for a problem with a search space (or for the "
                      f"SearchSpace itself), not for {type(target).__name__}")


def _needs_problem(ctx: OptionContext, name: str, value: Any) -> NoReturn:
    ctx.fail(name, value, f"needs the problem, whose cheap budgets it keeps: build the algorithm "
                          f"from the problem (make_{ctx.algorithm}(problem, ...), or "
                          f"search(problem, {ctx.algorithm!r}, options={{{name!r}: 'budget'}}))"
                          f", not from its space")


def make_repair(value: Any, space: SearchSpace, problem: Any, ctx: OptionContext) -> Repair:
    """The repair named by option ``repair`` (an operator object passes through)."""
    check_operator(ctx, "repair", value)
    if isinstance(value, Repair):
        return value
    from operators import BudgetRepair, CanonicalRepair

    if value == "canonical":
        return CanonicalRepair(space)
    if problem is None:
        _needs_problem(ctx, "repair", value)
    return BudgetRepair.from_problem(problem)


def make_sampling(value: Any, space: SearchSpace, problem: Any, ctx: OptionContext,
                  anchors: int = 0) -> Sampling:
    """The sampling named by option ``sampling`` (an operator object passes through);
    ``anchors``: :class:`~operators.ChoiceSampling`'s ``candidates`` for ``choice``."""
    check_operator(ctx, "sampling", value)
    if isinstance(value, Sampling):
        return value
    from operators import BudgetSampling, ChoiceSampling

    if value == "choice":
        return ChoiceSampling(space, candidates=anchors)
    if problem is None:
        _needs_problem(ctx, "sampling", value)
    return BudgetSampling.from_problem(problem)


def check_objective(ctx: OptionContext, objective: Any, weights: Any) -> None:
    """``objective`` / ``weights`` of the mutation-only evolutions, against the objective names
    where they are known (the problem's are checked again when the algorithm is set up)."""
    if objective is not None and weights is not None:
        raise ConfigError(f"{ctx.path or ctx.algorithm}: give either objective or weights, not "
                          f"both")
    names = ctx.objectives
    if objective is not None:
        if not (isinstance(objective, str) or is_int(objective)):
            ctx.fail("objective", objective, "an objective's name or index")
        if names is not None:
            if isinstance(objective, str) and objective not in names:
                ctx.fail("objective", objective, f"the objectives are {list(names)}")
            if is_int(objective) and not 0 <= objective < len(names):
                ctx.fail("objective", objective, f"index out of 0..{len(names) - 1}")
    if weights is None or isinstance(weights, str) and weights == "random":
        return
    if isinstance(weights, str) or not hasattr(weights, "__len__"):
        ctx.fail("weights", weights, "a sequence of floats or 'random'")
    w = list(weights)
    if not all(is_number(x) for x in w) or any(x < 0 for x in w) or not any(x > 0 for x in w):
        ctx.fail("weights", weights, "non-negative numbers, not all zero (or 'random')")
    if names is not None and len(w) != len(names):
        ctx.fail("weights", weights, f"need {len(names)} values, one per objective "
                                     f"{list(names)}")
