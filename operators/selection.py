"""Parent selection for evo-nas NSGA-II: tournaments of any size on NSGA-II's own order."""

from __future__ import annotations

import numpy as np
from pymoo.operators.selection.tournament import TournamentSelection

from evo_nas.errors import ConfigError


def rank_and_crowding(pop, P: np.ndarray, random_state=None, **kwargs) -> np.ndarray:
    """Winner of each row of ``P`` (indices into ``pop``): feasible first (least constraint
    violation), then lowest non-dominated rank, then largest crowding distance, then a random
    draw. pymoo's own comparator (``binary_tournament``) takes only two competitors."""
    rng = random_state if random_state is not None else np.random.default_rng()
    n = len(pop)
    cv = pop.get("CV")
    cv = (np.zeros(n) if cv is None
          else np.maximum(np.asarray(cv, dtype=float).reshape(n, -1)[:, 0], 0.0))
    rank = np.asarray(pop.get("rank"), dtype=float)
    crowd = np.nan_to_num(np.asarray(pop.get("crowding"), dtype=float), nan=0.0, posinf=1e300)
    tie = rng.random(P.shape)
    out = np.empty(len(P), dtype=np.int64)
    for i, row in enumerate(P):
        out[i] = row[np.lexsort((tie[i], -crowd[row], rank[row], cv[row]))[0]]
    return out


class RankTournament(TournamentSelection):
    """Tournaments of ``size`` random members, won by NSGA-II's order (:func:`rank_and_crowding`).

    ``size`` 2 is NSGA-II's binary tournament (on rank rather than pairwise domination); larger
    tournaments push harder towards the current front, which pays off when the budget is a few
    hundred evaluations (``evo_nas.algorithms.nsga2``)."""

    def __init__(self, size: int = 3) -> None:
        if not isinstance(size, int | np.integer) or isinstance(size, bool) or size < 2:
            raise ConfigError(f"tournament size = {size!r}: must be an int >= 2")
        super().__init__(func_comp=rank_and_crowding, pressure=int(size))
