"""An adaptive crossover rate: how often NSGA-II crosses, learnt from which children survive.

Whether recombination helps depends on how a space's option indices relate: SBX on an index
listed cheapest first makes useful children of intermediate cost, while on codes numbered by a
benchmark's convention (NB201's 0 none, 1 skip, 2 1x1, 3 3x3, 4 pool) mutation-only children
did better (``bench_search``'s user-defined space). Rather than guess per space, the rate follows
the children: probability matching (Goldberg 1990; Thierens 2005) on survival, with forgetting.
Measured so far, runs on both kinds of space end near 0.5 and a rate frozen there does as well
(README, ``make_nsga2``): the rule keeps either mode from dying out more than it picks one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evo_nas.errors import ConfigError

__all__ = ["AdaptiveRate"]


class AdaptiveRate:
    """The chance ``p`` that a mating crosses, updated after each survival.

    Each generation's children are split by whether their mating crossed; each mode's success
    rate is the share of its children that entered the population, counted with forgetting
    (``forget`` per generation; both modes start from 1 success in 2 children), and
    ``p = p_min + (1 - 2 p_min) * r_cross / (r_cross + r_copy)``, so neither mode dies out.
    ``p`` starts at ``start``.
    """

    def __init__(self, start: float = 0.5, p_min: float = 0.1, forget: float = 0.9) -> None:
        for name, v, lo, hi in (("start", start, 0.0, 1.0), ("p_min", p_min, 0.0, 0.5),
                                ("forget", forget, 0.0, 1.0)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                raise ConfigError(f"adaptive crossover {name} = {v!r}: must be a number in "
                                  f"{lo:g}..{hi:g}")
        self.p = float(start)
        self.p_min = float(p_min)
        self.forget = float(forget)
        self.successes = np.ones(2)  # [crossed, not crossed]
        self.children = np.full(2, 2.0)

    def update(self, crossed: np.ndarray, survived: np.ndarray) -> float:
        """Count one generation's children (``crossed``, ``survived``: one bool per child) and
        return the new ``p``."""
        crossed = np.asarray(crossed, dtype=bool)
        survived = np.asarray(survived, dtype=bool)
        self.successes = self.forget * self.successes + [np.sum(survived & crossed),
                                                          np.sum(survived & ~crossed)]
        self.children = self.forget * self.children + [np.sum(crossed), np.sum(~crossed)]
        r = self.successes / self.children
        self.p = self.p_min + (1.0 - 2.0 * self.p_min) * float(r[0] / max(r.sum(), 1e-12))
        return self.p

    def state(self) -> dict[str, Any]:
        """What a resumed search needs to continue exactly (JSON-safe)."""
        return {"p": self.p, "successes": self.successes.tolist(),
                "children": self.children.tolist()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.p = float(state["p"])
        self.successes = np.asarray(state["successes"], dtype=float)
        self.children = np.asarray(state["children"], dtype=float)
