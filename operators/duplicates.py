"""Duplicate elimination on canonical genomes, so two encodings of one network count once."""

from __future__ import annotations

import numpy as np
from pymoo.core.duplicate import DuplicateElimination

from evo_nas.space import SearchSpace


class CanonicalDuplicateElimination(DuplicateElimination):
    """Marks an individual duplicate when its canonical genome was seen earlier or in ``other``."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space

    def _keys(self, pop) -> list[bytes]:
        X = np.round(pop.get("X")).astype(np.int64)  # repaired: in range already
        X = np.ascontiguousarray(np.atleast_2d(X if self.space.plain else self.space.canonical(X)))
        return X.view(np.dtype((np.void, X.shape[1] * X.itemsize))).ravel().tolist()

    def _do(self, pop, other, is_duplicate):
        seen = set(self._keys(other)) if other is not None else set()
        for i, k in enumerate(self._keys(pop)):
            if k in seen:
                is_duplicate[i] = True
            seen.add(k)
        return is_duplicate
