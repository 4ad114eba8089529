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


def build_algorithm(name: str, problem: Any, pop_size: int, **kwargs: Any) -> Any:
    """The algorithm registered under ``name`` for ``problem.space``."""
    if name not in ALGORITHMS:
        raise ConfigError(f"search.algorithm = {name!r}: choose one of {sorted(ALGORITHMS)}")
    space: SearchSpace = problem.space
    try:
        return ALGORITHMS[name](space, pop_size=pop_size, **kwargs)
    except TypeError as e:  # an option the algorithm does not take
        raise ConfigError(f"search.options {sorted(kwargs)} for algorithm {name!r}: {e}") from None


__all__ = [
    "ALGORITHMS",
    "RegularizedEvolution",
    "SurrogateAssistedSearch",
    "TournamentEvolution",
    "build_algorithm",
    "make_nsga2",
    "make_regularized",
    "make_surrogate",
    "make_tournament",
]
