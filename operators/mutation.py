"""Per-gene mutation that always changes the architecture and never leaves the space."""

from __future__ import annotations

import numpy as np
from pymoo.core.mutation import Mutation

from evo_nas.space import SearchSpace


class ChoiceMutation(Mutation):
    """Resample each *active* gene with probability ``prob_var`` (default ``1 / n_active``).

    A mutated gene always takes a different option (``(v + randint(1, n)) % n``), and at least
    one active gene of every mutated genome changes, so a mutation is never a silent copy.
    Genes with a single option and genes that another gene switched off are left alone.
    """

    def __init__(self, space: SearchSpace, prob: float = 1.0, prob_var: float | None = None):
        super().__init__(prob=prob)
        self.space = space
        self.var_prob = prob_var

    def _do(self, problem, X, *args, random_state=None, **kwargs) -> np.ndarray:
        rng = random_state if random_state is not None else np.random.default_rng()
        X = self.space.canonical(np.round(X).astype(np.int64))
        n_opt = self.space.n_options
        mutable = self.space.active(X) & (n_opt > 1)[None, :]
        n_mutable = mutable.sum(axis=1, keepdims=True)
        p = self.var_prob if self.var_prob is not None else 1.0 / np.maximum(n_mutable, 1)
        flip = (rng.random(X.shape) < p) & mutable
        # guarantee one change per row that has anything to change
        none = ~flip.any(axis=1) & (n_mutable[:, 0] > 0)
        for r in np.flatnonzero(none):
            flip[r, rng.choice(np.flatnonzero(mutable[r]))] = True
        shift = (rng.random(X.shape) * (n_opt - 1)).astype(np.int64) + 1
        Y = np.where(flip, (X + shift) % n_opt, X)
        return self.space.canonical(Y)
