"""Crossover that knows ordered genes: intermediate option indices for ordered genes, whole-gene
swaps for categorical ones, and no bias from the zeros that canonical genomes park in inactive
genes."""

from __future__ import annotations

import numpy as np
from pymoo.core.crossover import Crossover

from evo_nas.errors import ConfigError
from evo_nas.space import SearchSpace
from operators.mutation import draw_genes


class MixedCrossover(Crossover):
    """Two parents -> two children, gene by gene (the default of evo-nas NSGA-II).

    Each gene is first swapped between the children with probability ``prob_swap`` (uniform
    crossover). Categorical genes stop there. Ordered genes (``space.ordered``) then get SBX's
    contracting spread on their option indices: child 1 moves from its parent towards the other
    by a fraction ``1 - beta`` with ``beta`` of density ``(eta + 1) beta^eta`` (``eta`` 3: mostly
    a small move), rounded; child 2 is the mirror ``p1 + p2 - c1``. Both stay between the
    parents (kernel 5 from kernels 3 and 7 is possible, kernel 9 is not) and parents one step
    apart reduce to uniform crossover.

    A gene inactive in one parent (a block beyond its depth, parked at index 0) takes the other
    parent's value; genes active in a child but in neither parent get a random option
    (:func:`operators.mutation.draw_genes`). Children are canonical; every draw comes from
    pymoo's ``random_state``. ``prob`` is the chance a mating crosses at all (else the children
    are copies, which duplicate elimination then drops).
    """

    def __init__(self, space: SearchSpace, prob: float = 0.9, eta: float = 3.0,
                 prob_swap: float = 0.5) -> None:
        if isinstance(prob, bool) or not isinstance(prob, int | float) or not 0 <= prob <= 1:
            raise ConfigError(f"crossover prob = {prob!r}: must be a number in 0..1")
        if isinstance(eta, bool) or not isinstance(eta, int | float) or eta < 0:
            raise ConfigError(f"crossover eta = {eta!r}: must be a number >= 0")
        super().__init__(2, 2, prob=float(prob))
        self.space = space
        self.eta = float(eta)
        if isinstance(prob_swap, bool) or not isinstance(prob_swap, int | float) \
                or not 0 <= prob_swap <= 1:
            raise ConfigError(f"crossover prob_swap = {prob_swap!r}: must be a number in 0..1")
        self.prob_swap = float(prob_swap)

    def _do(self, problem, X, *args, random_state=None, **kwargs) -> np.ndarray:
        rng = random_state if random_state is not None else np.random.default_rng()
        space = self.space
        _, n, n_var = X.shape
        P1 = space.canonical(np.round(X[0]).astype(np.int64))
        P2 = space.canonical(np.round(X[1]).astype(np.int64))
        # an inactive gene carries no information: borrow the other parent's active value
        A1, A2 = space.active(P1), space.active(P2)
        P1 = np.where(~A1 & A2, P2, P1)
        P2 = np.where(~A2 & A1, P1, P2)
        swap = rng.random((n, n_var)) < self.prob_swap
        C1 = np.where(swap, P2, P1)
        C2 = np.where(swap, P1, P2)
        # ordered genes: SBX's contracting spread, beta in [0, 1] with density (eta+1) beta^eta,
        # so children stay near their parents; the child of the base parent is rounded and its
        # sibling mirrored (p1 + p2 - c1), which keeps both between the parents
        beta = rng.random((n, n_var)) ** (1.0 / (self.eta + 1.0))
        mean, half = (C1 + C2) / 2.0, (C2 - C1) / 2.0
        near = np.clip(np.rint(mean - beta * half), np.minimum(P1, P2), np.maximum(P1, P2))
        ordered = space.ordered[None, :]
        C1, C2 = (np.where(ordered, near.astype(np.int64), C1),
                  np.where(ordered, P1 + P2 - near.astype(np.int64), C2))
        either = A1 | A2
        C1 = space.canonical(draw_genes(space, C1, space.active(C1) & ~either, rng))
        C2 = space.canonical(draw_genes(space, C2, space.active(C2) & ~either, rng))
        return np.stack([C1, C2])
