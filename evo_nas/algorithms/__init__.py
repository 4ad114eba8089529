"""Search algorithms assembled from pymoo parts and evo-nas operators.

``ALGORITHMS`` maps the names accepted in configs and on the CLI (``search.algorithm``) to
builders ``(problem, pop_size, **options) -> algorithm``; they take the problem, not only its
space, so operators built from the problem (``repair``/``sampling = "budget"``: the budget
operators on its cheap budgets) are options like any other. NSGA-II and the evolutions also take
a bare :class:`SearchSpace` for everything else. Most return a pymoo ``Algorithm``; the
surrogate-assisted search is a loop around pymoo and returns an object with ``run_search``,
which :func:`evo_nas.search.search` calls instead of ``minimize``.

``OPTIONS`` holds each algorithm's option schema (:mod:`evo_nas.algorithms.options`):
:func:`check_algorithm_options` checks names (with a did-you-mean), types and ranges at
config-load time without building anything, against what the config knows (the space,
``search.pop_size``, the objectives, the budgets).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from evo_nas.algorithms.evolution import (
    EVOLUTION_OPTIONS,
    RegularizedEvolution,
    TournamentEvolution,
    make_regularized,
    make_tournament,
)
from evo_nas.algorithms.nsga2 import NSGA2_OPTIONS, make_nsga2
from evo_nas.algorithms.options import OptionContext, OptionSchema
from evo_nas.errors import ConfigError
from evo_nas.space import SearchSpace


def make_surrogate(problem: Any = None, pop_size: int = 20, **kwargs: Any) -> Any:
    """Builder for ``"surrogate"``, imported on first use (it pulls in scikit-learn). The loop
    reads the problem when it runs; its budget repair is automatic with cheap budgets."""
    from evo_nas.algorithms.surrogate import make_surrogate as build

    space = problem if problem is None or isinstance(problem, SearchSpace) else problem.space
    return build(space, pop_size=pop_size, **kwargs)


def _check_surrogate_options(options: Mapping[str, Any], ctx: OptionContext) -> None:
    """The surrogate's own checks, on an unbuilt loop (it needs no problem to hold its
    settings): the predictor's name, then, with the budget known, every count and choice."""
    loop = make_surrogate(ctx.space, ctx.pop_size or 20, **options)
    if ctx.budget is not None:
        loop._settings(ctx.budget)


def __getattr__(name: str) -> Any:
    if name == "SurrogateAssistedSearch":
        from evo_nas.algorithms.surrogate import SurrogateAssistedSearch

        return SurrogateAssistedSearch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


ALGORITHMS: dict[str, Callable[..., Any]] = {
    "nsga2": make_nsga2,
    "regularized": make_regularized,
    "tournament": make_tournament,
    "surrogate": make_surrogate,
}


# Options that are not the algorithm's: they are arguments of ``search`` (config ``search.*``)
# and mean the same for every algorithm, so giving them in ``options`` is a mistake to name.
SEARCH_ARGUMENTS: dict[str, str] = {
    "pop_size": "search.pop_size (search(pop_size=...))",
    "generations": "search.generations (the most generations, search(generations=...))",
    "budget": "search.budget (real evaluations, search(budget=...))",
    "seed": "the run's seed (search(seed=...))",
    "progress": "search(progress=...)",
}

# Options misplaced on one algorithm: what the user meant instead.
_MISPLACED: dict[str, dict[str, str]] = {
    "surrogate": {
        "pop_size": "for the surrogate it sets the real architectures evaluated per round; the "
                    "NSGA-II run on the predictors is option inner_pop_size",
        "generations": "for the surrogate it caps the rounds; the NSGA-II run on the predictors "
                       "is option inner_generations",
        "batch_size": "the real architectures evaluated per round are search.pop_size",
        "surrogate_pop_size": "the NSGA-II population on the predictors is option inner_pop_size",
    },
}

# Skipped when listing options from a signature: not search settings.
_NOT_OPTIONS = {"self", "space", "problem", "pop_size", "budget", "batch_size"}


def _signature_options(fn: Callable[..., Any]) -> tuple[str, ...] | None:
    """Option names from the signature of ``fn`` (``None`` when it takes any keyword)."""
    import inspect

    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return tuple(p.name for p in params if p.name not in _NOT_OPTIONS
                 and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _no_value_checks(options: Mapping[str, Any], ctx: OptionContext) -> None:
    """Values of an algorithm registered without a schema: its builder checks them."""


# Each built-in algorithm's options (the surrogate's are read from its loop on first use, so
# scikit-learn is imported only when it is asked for).
OPTIONS: dict[str, OptionSchema] = {
    "nsga2": NSGA2_OPTIONS,
    "regularized": EVOLUTION_OPTIONS,
    "tournament": EVOLUTION_OPTIONS,
}


def option_schema(name: str) -> OptionSchema:
    """The :class:`OptionSchema` of registered algorithm ``name``. One added to ``ALGORITHMS``
    without an ``OPTIONS`` entry has its names read from its builder's signature (any keyword
    when it takes ``**kwargs``) and its values checked by the builder alone."""
    if name in OPTIONS:
        return OPTIONS[name]
    if name == "surrogate":
        from evo_nas.algorithms.surrogate import SurrogateAssistedSearch

        return OptionSchema(_signature_options(SurrogateAssistedSearch),
                            _check_surrogate_options)
    return OptionSchema(_signature_options(ALGORITHMS[name]), _no_value_checks)


def algorithm_options(name: str) -> list[str] | None:
    """Option names algorithm ``name`` takes in ``search.options`` (``None``: a builder that
    takes any keyword, so the options cannot be checked up front)."""
    names = option_schema(name).names
    return None if names is None else sorted(names)


def check_options(name: str, options: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the first option ``name`` does not take, with what the
    user meant: the ``search`` argument it belongs to, or the closest option (did you mean)."""
    import difflib

    known = algorithm_options(name)
    for key in options:
        where = f"search.options.{key}"
        hint = _MISPLACED.get(name, {}).get(key)
        if hint is None and key in SEARCH_ARGUMENTS:
            hint = f"it is {SEARCH_ARGUMENTS[key]}, the same for every algorithm"
        if known is None or (key in known and hint is None):
            continue
        close = difflib.get_close_matches(key, known, n=1)
        mean = f"; did you mean {close[0]!r}?" if close else ""
        if hint is not None:
            raise ConfigError(f"{where}: not an option of algorithm {name!r}: {hint}{mean}")
        raise ConfigError(f"{where}: algorithm {name!r} has no option {key!r}{mean} "
                          f"(its options: {', '.join(known)})")


def check_algorithm_options(name: str, options: Mapping[str, Any], *,
                            space: SearchSpace | None = None, pop_size: int | None = None,
                            objectives: Sequence[str] | None = None,
                            cheap_budgets: Sequence[str] | None = None,
                            budget: int | None = None, problem: Any = None) -> None:
    """Check ``search.options`` of algorithm ``name`` without building it: names first (a typo
    or a misplaced ``pop_size`` is a ConfigError with a did-you-mean), then each value's type and
    range against what is known here: the space, ``pop_size`` (``sample_size <= pop_size``), the
    objective names, ``cheap_budgets`` (the budgets that can be on cheap metrics, for
    ``repair``/``sampling = "budget"``) and the real-evaluation ``budget``; with ``problem``,
    its own budgets. Messages name the field, ``search.options.NAME = VALUE: ...``."""
    if name not in ALGORITHMS:
        raise ConfigError(f"search.algorithm = {name!r}: choose one of {sorted(ALGORITHMS)}")
    check_options(name, options)
    ctx = OptionContext(name, pop_size=pop_size, space=space,
                        objectives=None if objectives is None else tuple(objectives),
                        cheap_budgets=None if cheap_budgets is None else tuple(cheap_budgets),
                        budget=budget, problem=problem, path="search.options")
    option_schema(name).check(options, ctx)


def build_algorithm(name: str, problem: Any, pop_size: int, /, **kwargs: Any) -> Any:
    """The algorithm registered under ``name`` for ``problem``; options are checked by name
    first, so a typo or a misplaced ``pop_size`` is a ConfigError with a did-you-mean, then by
    value against the problem (:func:`check_algorithm_options`)."""
    names = getattr(problem, "objective_names", None)
    check_algorithm_options(name, kwargs, space=getattr(problem, "space", None),
                            pop_size=pop_size, problem=problem,
                            objectives=None if names is None else list(names))
    try:
        return ALGORITHMS[name](problem, pop_size=pop_size, **kwargs)
    except TypeError as e:  # an option the builder rejects by type
        raise ConfigError(f"search.options {sorted(kwargs)} for algorithm {name!r}: {e}") from None


__all__ = [
    "ALGORITHMS",
    "OPTIONS",
    "SEARCH_ARGUMENTS",
    "OptionContext",
    "OptionSchema",
    "RegularizedEvolution",
    "SurrogateAssistedSearch",
    "TournamentEvolution",
    "algorithm_options",
    "build_algorithm",
    "check_algorithm_options",
    "check_options",
    "make_nsga2",
    "make_regularized",
    "make_surrogate",
    "make_tournament",
    "option_schema",
]
