"""Search algorithms assembled from pymoo parts and evo-nas operators.

``ALGORITHMS`` maps the names accepted in configs and on the CLI (``search.algorithm``) to
builders ``(space, pop_size, **kwargs) -> pymoo Algorithm``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymoo.core.algorithm import Algorithm

from evo_nas.algorithms.nsga2 import make_nsga2
from evo_nas.errors import ConfigError
from evo_nas.space import SearchSpace

ALGORITHMS: dict[str, Callable[..., Algorithm]] = {"nsga2": make_nsga2}


def build_algorithm(name: str, problem: Any, pop_size: int, **kwargs: Any) -> Algorithm:
    """The pymoo algorithm registered under ``name`` for ``problem.space``."""
    if name not in ALGORITHMS:
        raise ConfigError(f"search.algorithm = {name!r}: choose one of {sorted(ALGORITHMS)}")
    space: SearchSpace = problem.space
    return ALGORITHMS[name](space, pop_size=pop_size, **kwargs)


__all__ = ["ALGORITHMS", "build_algorithm", "make_nsga2"]
