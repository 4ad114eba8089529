"""Search algorithms assembled from pymoo parts and evo-nas operators.

``ALGORITHMS`` maps the names accepted in configs and on the CLI (``search.algorithm``) to
builders ``(space, pop_size, **kwargs) -> algorithm``. Most return a pymoo ``Algorithm``; the
surrogate-assisted search is a loop around pymoo and returns an object with ``run_search``,
which :func:`evo_nas.search.search` calls instead of ``minimize``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evo_nas.algorithms.evolution import (
    RegularizedEvolution,
    TournamentEvolution,
    make_regularized,
    make_tournament,
)
from evo_nas.algorithms.nsga2 import make_nsga2
from evo_nas.errors import ConfigError
from evo_nas.space import SearchSpace


def make_surrogate(space: SearchSpace, pop_size: int = 20, **kwargs: Any) -> Any:
    """Builder for ``"surrogate"``, imported on first use (it pulls in scikit-learn)."""
    from evo_nas.algorithms.surrogate import make_surrogate as build

    return build(space, pop_size=pop_size, **kwargs)


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

# Skipped when listing a class's options: pymoo plumbing, not search settings.
_NOT_OPTIONS = {"self", "space", "pop_size", "budget", "batch_size"}


def _option_source(name: str) -> Callable[..., Any]:
    """The callable whose signature lists the options of algorithm ``name``."""
    if name == "surrogate":
        from evo_nas.algorithms.surrogate import SurrogateAssistedSearch

        return SurrogateAssistedSearch
    return {"regularized": RegularizedEvolution,
            "tournament": TournamentEvolution}.get(name, ALGORITHMS[name])


def algorithm_options(name: str) -> list[str] | None:
    """Option names algorithm ``name`` takes in ``search.options`` (``None``: a builder that
    takes any keyword, so the options cannot be checked up front)."""
    import inspect

    params = inspect.signature(_option_source(name)).parameters.values()
    if name not in ("regularized", "tournament") and any(
            p.kind is p.VAR_KEYWORD for p in params):
        return None
    return sorted(p.name for p in params if p.name not in _NOT_OPTIONS
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


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


def build_algorithm(name: str, problem: Any, pop_size: int, /, **kwargs: Any) -> Any:
    """The algorithm registered under ``name`` for ``problem.space``; options are checked by
    name first, so a typo or a misplaced ``pop_size`` is a ConfigError with a did-you-mean."""
    if name not in ALGORITHMS:
        raise ConfigError(f"search.algorithm = {name!r}: choose one of {sorted(ALGORITHMS)}")
    check_options(name, kwargs)
    space: SearchSpace = problem.space
    try:
        return ALGORITHMS[name](space, pop_size=pop_size, **kwargs)
    except TypeError as e:  # an option the builder rejects by type
        raise ConfigError(f"search.options {sorted(kwargs)} for algorithm {name!r}: {e}") from None


__all__ = [
    "ALGORITHMS",
    "SEARCH_ARGUMENTS",
    "RegularizedEvolution",
    "SurrogateAssistedSearch",
    "TournamentEvolution",
    "algorithm_options",
    "build_algorithm",
    "check_options",
    "make_nsga2",
    "make_regularized",
    "make_surrogate",
    "make_tournament",
]
