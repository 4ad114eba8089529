"""Per-gene mutations that never leave the space: categorical (:class:`ChoiceMutation`) and
neighbour-aware for ordered genes (:class:`NeighbourMutation`)."""

from __future__ import annotations

import numpy as np
from pymoo.core.mutation import Mutation

from evo_nas.errors import ConfigError
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


def draw_activated(space: SearchSpace, before: np.ndarray, after: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Give genes that ``after`` switches on (inactive in ``before``) a uniformly random option.

    Canonical genomes park inactive genes at index 0, so without this a block that a depth
    change brings back would always get the smallest kernel and expand ratio: a silent bias
    towards cheap blocks that pymoo's non-canonical genomes (latent random values) do not have.
    """
    return draw_genes(space, after, space.active(after) & ~space.active(before), rng)


def draw_genes(space: SearchSpace, X: np.ndarray, mask: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """Copy of ``X`` with a uniformly random option wherever ``mask`` is set."""
    if not mask.any():
        return X
    out = X.copy()
    rows, cols = np.nonzero(mask)
    out[rows, cols] = (rng.random(len(rows)) * space.n_options[cols]).astype(np.int64)
    return out


def _neighbour_targets(values: np.ndarray, n_opt: np.ndarray, ordered: np.ndarray,
                       decay: float, rng: np.random.Generator) -> np.ndarray:
    """A new option per entry, never the current one: uniform for categorical genes; for ordered
    genes option ``t`` has weight ``decay ** (|t - v| - 1)`` (neighbours first)."""
    width = int(n_opt.max())
    t = np.arange(width)[None, :]
    dist = np.abs(t - values[:, None])
    w = np.where(ordered[:, None], decay ** np.maximum(dist - 1, 0), 1.0)
    w = np.where((dist == 0) | (t >= n_opt[:, None]), 0.0, w)
    cdf = np.cumsum(w, axis=1)
    u = rng.random(len(values))[:, None] * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), n_opt - 1)


def range_weights(space: SearchSpace, decay: float) -> np.ndarray:
    """Per gene, ``(n_options - 1) / E|step|`` for an ordered gene (the expected size of a
    :class:`NeighbourMutation` step from a uniformly random option, with ``decay``), 1 for a
    categorical gene or one of fewer than three options: how many steps cover as much of the
    gene's range as one jump of a categorical gene."""
    n_opt = space.n_options
    out = np.ones(space.n_var)
    for g in np.flatnonzero(space.ordered & (n_opt > 2)):
        n = int(n_opt[g])
        dist = np.abs(np.arange(n)[None, :] - np.arange(n)[:, None])
        w = np.where(dist == 0, 0.0, decay ** np.maximum(dist - 1, 0))
        step = ((w * dist).sum(axis=1) / w.sum(axis=1)).mean()
        out[g] = (n - 1) / step
    return out


class NeighbourMutation(Mutation):
    """Per-gene mutation that knows ordered genes (the default of evo-nas NSGA-II).

    Each active gene with more than one option mutates with probability ``prob_var``, by default
    ``n_genes / n_active`` (``n_genes`` genes per genome on average). An *ordered* gene
    (``space.ordered``: kernel, expand, width, depth) moves to option ``t`` with weight
    ``decay ** (|t - v| - 1)``, so mostly to a neighbour (with ``decay`` 0.5, a gene in the
    middle of 5 options steps by one 2/3 of the time); a *categorical* gene (operation names)
    takes any other option uniformly. Genes that a mutated depth switches on get a uniformly
    random option (:func:`draw_activated`) rather than the index 0 canonical genomes park there.

    ``range_rate`` (default False; True in evo-nas NSGA-II) makes an ordered gene mutate more
    often the less of its range a step covers: its probability is multiplied by
    ``(n_options - 1) / E|step|`` (:func:`range_weights`; with ``decay`` 0.5: 1 for two
    options, 1.6 for three, 2.7 for five, 4.1 for eight), so ``n_genes`` counts mutations by
    how far they move a genome, and categorical and two-option genes keep ``n_genes / n_active``.
    A gene of many ordered options (channel widths 8..64) would otherwise hardly move.

    ``at_least_once`` (default False) forces one change per genome. In NSGA-II, duplicate
    elimination already drops children identical to a member, at no cost in evaluations, so
    forcing a change only adds disruption; mutation-only searches (regularized evolution) need
    it. ``force_uncrossed`` forces it only on children tagged ``crossed = False`` (copies of a
    parent from a mating that did not cross, :class:`~operators.MixedCrossover` with a
    ``rate``): such a child must differ from its parent to be worth a draw. Output is
    canonical; every draw comes from pymoo's ``random_state``.
    """

    def __init__(self, space: SearchSpace, prob: float = 1.0, prob_var: float | None = None,
                 n_genes: float = 1.0, decay: float = 0.5, at_least_once: bool = False,
                 range_rate: bool = False, force_uncrossed: bool = False) -> None:
        super().__init__(prob=prob)
        if prob_var is not None and not (_is_number(prob_var) and 0.0 <= prob_var <= 1.0):
            raise ConfigError(f"mutation prob_var = {prob_var!r}: must be a number in 0..1")
        if not (_is_number(n_genes) and n_genes >= 0.0):
            raise ConfigError(f"mutation n_genes = {n_genes!r}: must be a number >= 0")
        if not (_is_number(decay) and 0.0 < decay <= 1.0):
            raise ConfigError(f"mutation decay = {decay!r}: must be a number in (0, 1]")
        self.space = space
        self.var_prob = prob_var
        self.n_genes = float(n_genes)
        self.decay = float(decay)
        self.at_least_once = bool(at_least_once)
        self.force_uncrossed = bool(force_uncrossed)
        self._force: np.ndarray | None = None  # rows to force, for the call in progress
        self.range_rate = bool(range_rate)
        self.weights = (range_weights(space, self.decay) if self.range_rate
                        else np.ones(space.n_var))

    def do(self, problem, pop, *args, **kwargs):
        """pymoo's ``Mutation.do``; with ``force_uncrossed`` it first reads the ``crossed``
        tags (children without one are left to the usual rate)."""
        self._force = None
        if self.force_uncrossed:
            self._force = np.array([c is not None and not c for c in pop.get("crossed")],
                                   dtype=bool)
        try:
            return super().do(problem, pop, *args, **kwargs)
        finally:
            self._force = None

    def _do(self, problem, X, *args, random_state=None, **kwargs) -> np.ndarray:
        rng = random_state if random_state is not None else np.random.default_rng()
        space = self.space
        X = space.canonical(np.round(X).astype(np.int64))
        n_opt = space.n_options
        mutable = space.active(X) & (n_opt > 1)[None, :]
        n_mutable = mutable.sum(axis=1, keepdims=True)
        p = (self.var_prob if self.var_prob is not None
             else np.minimum(1.0, self.n_genes * self.weights[None, :]
                             / np.maximum(n_mutable, 1)))
        flip = (rng.random(X.shape) < p) & mutable
        must = np.full(len(X), self.at_least_once)  # rows that have to change
        if self._force is not None:
            must |= self._force
        for r in np.flatnonzero(must & ~flip.any(axis=1) & (n_mutable[:, 0] > 0)):
            flip[r, rng.choice(np.flatnonzero(mutable[r]))] = True
        Y = X.copy()
        rows, cols = np.nonzero(flip)
        if len(rows):
            Y[rows, cols] = _neighbour_targets(X[rows, cols], n_opt[cols], space.ordered[cols],
                                               self.decay, rng)
        return space.canonical(draw_activated(space, X, Y, rng))


def _is_number(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
