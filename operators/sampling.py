"""Initial populations drawn from a search space."""

from __future__ import annotations

import numpy as np
from pymoo.core.sampling import Sampling

from evo_nas.space import SearchSpace


class ChoiceSampling(Sampling):
    """Each gene uniform over its options, then canonicalised; draws from pymoo's Generator."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs) -> np.ndarray:
        return self.space.sample(n_samples, random_state)
