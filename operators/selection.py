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
    tie = rng.random(P.shape)
    # only the members that compete are read (pymoo reads attributes member by member)
    members, P_local = np.unique(P, return_inverse=True)
    P_local = P_local.reshape(P.shape)
    sub = pop[members]
    n = len(sub)
    cv, rank, crowd = sub.get("CV", "rank", "crowding")
    cv = (np.zeros(n) if cv is None
          else np.maximum(np.asarray(cv, dtype=float).reshape(n, -1)[:, 0], 0.0))
    rank = np.asarray(rank, dtype=float)
    crowd = np.nan_to_num(np.asarray(crowd, dtype=float), nan=0.0, posinf=1e300)
    # one order for the competitors; members equal on all three keys share a place, and the
    # draw (in [0, 1)) breaks ties between them only
    order = np.lexsort((-crowd, rank, cv))
    keys = np.stack([cv[order], rank[order], crowd[order]], axis=1)
    new = np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)]
    place = np.empty(n)
    place[order] = np.cumsum(new) - 1
    return P[np.arange(len(P)), np.argmin(place[P_local] + tie, axis=1)]


class RankTournament(TournamentSelection):
    """Tournaments of ``size`` random members, won by NSGA-II's order (:func:`rank_and_crowding`).

    ``size`` 2 is NSGA-II's binary tournament (on rank rather than pairwise domination); larger
    tournaments push harder towards the current front, which pays off when the budget is a few
    hundred evaluations (``evo_nas.algorithms.nsga2``)."""

    def __init__(self, size: int = 3) -> None:
        if not isinstance(size, int | np.integer) or isinstance(size, bool) or size < 2:
            raise ConfigError(f"tournament size = {size!r}: must be an int >= 2")
        super().__init__(func_comp=rank_and_crowding, pressure=int(size))
