"""Repairs that keep offspring inside the space and in canonical form."""

from __future__ import annotations

import numpy as np
from pymoo.core.repair import Repair

from evo_nas.space import SearchSpace


class CanonicalRepair(Repair):
    """Round to integers, clip to each gene's range, fix inactive genes (pymoo needs the rounding
    for ``vtype=int``: generic operators may hand back floats)."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space

    def _do(self, problem, X, **kwargs) -> np.ndarray:
        X = np.clip(np.round(np.asarray(X, dtype=float)), self.space.xl, self.space.xu)
        return self.space.canonical(X.astype(np.int64))
