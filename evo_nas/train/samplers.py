"""Which sub-networks are trained at each step. A sampler returns genomes for one step.

Every sampler is a callable ``sampler(space, rng) -> genomes (k, n_var)`` drawing only from the
``numpy.random.Generator`` it is handed, so all ranks of a distributed run that share a seed pick
the same sub-networks, and a resumed run picks what the uninterrupted one would have.

* ``uniform`` (SPOS): ``n`` sub-networks drawn uniformly.
* ``sandwich`` (BigNAS): largest + smallest + ``n_random`` uniform ones.
* ``fair`` (FairNAS strict fairness): ``k = max options`` sub-networks built from per-gene
  permutations, so every option of every gene is trained in the same step.
* ``flops_bucket``: targets spread uniformly over the FLOPs range, each met by bounded rejection.
* ``attentive`` (AttentiveNAS): per FLOPs bucket draw ``n_candidates`` and train the best
  (``bestup``) or worst (``worstup``) by a scorer: mini-batch loss or any predictor.

Samplers that need the space's FLOPs take ``cost`` (config -> MFLOPs); by default the analytic
:class:`evo_nas.costs.CostModel` of the MobileNet space.

Each built-in sampler also says how many sub-networks one training step trains with it
(:meth:`~UniformSampler.subnets_per_step`; the fidelity study gives every sampler the same
number), split into its fixed ones (:meth:`~UniformSampler.fixed_subnets`) and its random picks
(:meth:`~UniformSampler.random_subnets`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from evo_nas.errors import ConfigError
from evo_nas.space import SearchSpace

__all__ = [
    "SAMPLERS",
    "AttentiveSampler",
    "FairSampler",
    "FlopsBucketSampler",
    "FlopsBuckets",
    "Sampler",
    "SandwichSampler",
    "UniformSampler",
    "make_sampler",
]

CostFn = Callable[[dict[str, Any]], float]
Scorer = Callable[[list[dict[str, Any]]], Sequence[float]]


class Sampler(Protocol):
    def __call__(self, space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
        """Genomes (k, n_var) to train on the next mini-batch; the first is the teacher when
        in-place distillation is on (the trainer prepends the largest when it is not)."""
        ...


class _StepCounts:
    """How many sub-networks a step trains with this sampler.

    ``sandwich``: every step leads with the largest and the smallest sub-network. Otherwise, with
    in-place distillation, the trainer prepends the largest as teacher (:func:`train_supernet`
    does when the first genome is not the largest; the counts here are the nominal ones, as if a
    random pick never happened to be the largest).
    """

    sandwich: bool = False
    n_random: int

    def random_subnets(self, space: SearchSpace) -> int:
        """Sub-networks the sampler picks at random each step in ``space``."""
        return int(self.n_random)

    def fixed_subnets(self, distill: bool = False) -> int:
        """Sub-networks every step trains beside the random picks: the largest and the smallest
        for a sandwich, else the teacher (the largest) when ``distill`` is on."""
        return 2 if self.sandwich else int(distill)

    def subnets_per_step(self, space: SearchSpace, distill: bool = False) -> int:
        """Sub-networks one training step trains in ``space``: fixed + random."""
        return self.fixed_subnets(distill) + self.random_subnets(space)


class UniformSampler(_StepCounts):
    """SPOS: ``n`` sub-networks drawn uniformly per step. ``by_class`` draws uniformly over the
    space's canonical classes instead of over genomes (isomorphism-aware sampling, Ning et al.
    2021: on NB201 a large class of twins is otherwise trained as often as all its members)."""

    def __init__(self, n: int = 1, by_class: bool = False) -> None:
        if n < 1:
            raise ConfigError(f"uniform sampler n = {n}: must be at least 1")
        self.n, self.by_class = n, by_class

    def random_subnets(self, space: SearchSpace) -> int:
        return self.n

    def __call__(self, space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
        if self.by_class:
            classes = space.classes()
            return classes[rng.integers(0, len(classes), self.n)]
        return space.sample(self.n, rng)


class SandwichSampler(_StepCounts):
    """BigNAS/AttentiveNAS sandwich rule: largest + smallest + ``n_random`` random sub-networks."""

    sandwich = True

    def __init__(self, n_random: int = 2) -> None:
        if n_random < 0:
            raise ConfigError(f"sandwich sampler n_random = {n_random}: must be >= 0")
        self.n_random = n_random

    def __call__(self, space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
        return np.vstack([space.largest(), space.smallest(), space.sample(self.n_random, rng)])


def _balanced(m: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """``length`` option indices of an ``m``-option gene in random order, every option as often as
    possible: each appears ``length // m`` or ``length // m + 1`` times."""
    full, rest = divmod(length, m)
    values = np.concatenate([np.tile(np.arange(m), full), rng.choice(m, rest, replace=False)])
    return rng.permutation(values).astype(np.int64)


class FairSampler(_StepCounts):
    """FairNAS strict fairness: ``k = max(n_options)`` sub-networks per step.

    Each unconditional gene with ``k`` options takes every option exactly once across the ``k``
    sub-networks (a random permutation per gene); a gene with fewer options takes every option at
    least once, the counts differing by at most one. A conditional gene (a block beyond some
    depths) is assigned the same way over the sub-networks where it is active; inactive entries
    stay canonical (index 0). Single-option genes are constant.
    """

    def random_subnets(self, space: SearchSpace) -> int:
        """``k``: one sub-network per option of the widest gene."""
        return int(space.n_options.max()) if space.n_var else 1

    def __call__(self, space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
        k = self.random_subnets(space)
        X = np.zeros((k, space.n_var), dtype=np.int64)
        for i, choice in enumerate(space.choices):
            if choice.active_if is None:
                X[:, i] = _balanced(int(space.n_options[i]), k, rng)
        for i, choice in enumerate(space.choices):
            if choice.active_if is None:
                continue
            parent, values = choice.active_if
            p = space.names.index(parent)
            allowed = np.array([o in values for o in space.choices[p].options])
            rows = np.flatnonzero(allowed[X[:, p]])
            if rows.size:
                X[rows, i] = _balanced(int(space.n_options[i]), rows.size, rng)
        return space.canonical(X)


def _default_cost(space: SearchSpace) -> CostFn:
    from evo_nas.costs import CostModel

    model = CostModel(space)
    return lambda config: model.costs(config)[0]


class FlopsBuckets:
    """Equal-width FLOPs buckets between a space's smallest and largest sub-network, and bounded
    rejection sampling inside one.

    Proposals are not uniform genomes (their FLOPs pile up in the middle of the range): each
    proposal first draws a bias ``q ~ U(0, 1)`` and then every gene's index from
    ``Binomial(n_options - 1, q)``, which covers the whole range. At most ``max_rounds`` batches
    of ``batch`` proposals are tried; if the bucket is still short, the proposals nearest to it
    fill in and ``n_fallbacks`` counts them. Nothing here loops without a bound.
    """

    def __init__(self, space: SearchSpace, n_buckets: int = 4, cost: CostFn | None = None,
                 batch: int = 64, max_rounds: int = 20) -> None:
        if n_buckets < 1:
            raise ConfigError(f"n_buckets = {n_buckets}: must be at least 1")
        self.space, self.n_buckets = space, n_buckets
        self.batch, self.max_rounds = batch, max_rounds
        self.cost = cost or _default_cost(space)
        lo = float(self.cost(space.decode(space.smallest())))
        hi = float(self.cost(space.decode(space.largest())))
        self.edges = np.linspace(lo, hi, n_buckets + 1)
        self.n_fallbacks = 0

    def flops(self, X: np.ndarray) -> np.ndarray:
        return np.array([float(self.cost(c)) for c in self.space.decode_many(X)])

    def bucket_of(self, f: float | np.ndarray) -> np.ndarray:
        """Bucket index of FLOPs values (the top edge belongs to the last bucket)."""
        b = np.searchsorted(self.edges, f, side="right") - 1
        return np.clip(b, 0, self.n_buckets - 1)

    def propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        q = rng.random((n, 1))
        X = rng.binomial(self.space.n_options - 1, q)
        return self.space.canonical(X.astype(np.int64))

    def target_bucket(self, rng: np.random.Generator) -> int:
        """The bucket of a FLOPs target drawn uniformly between the smallest and largest."""
        return int(self.bucket_of(rng.uniform(self.edges[0], self.edges[-1])))

    def draw(self, bucket: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` genomes whose FLOPs fall in ``bucket`` (nearest ones if rejection runs out)."""
        lo, hi = self.edges[bucket], self.edges[bucket + 1]
        found: list[np.ndarray] = []
        pool, pool_f = [], []
        for _ in range(self.max_rounds):
            X = self.propose(self.batch, rng)
            f = self.flops(X)
            inside = (f >= lo) & (f <= hi)
            found.extend(X[inside])
            pool.append(X)
            pool_f.append(f)
            if len(found) >= n:
                return np.stack(found[:n])
        X, f = np.vstack(pool), np.concatenate(pool_f)
        distance = np.maximum(lo - f, 0) + np.maximum(f - hi, 0)
        missing = n - len(found)
        self.n_fallbacks += missing
        extra = X[np.argsort(distance, kind="stable")[len(found):len(found) + missing]]
        return np.vstack([np.stack(found), extra]) if found else extra


class _BucketMixin:
    """Caches one :class:`FlopsBuckets` per space (progressive shrinking changes the space)."""

    n_buckets: int
    cost: CostFn | None
    max_rounds: int

    def buckets(self, space: SearchSpace) -> FlopsBuckets:
        key = (space.name, tuple(tuple(c.options) for c in space.choices))
        cache = self.__dict__.setdefault("_buckets", {})
        if key not in cache:
            cache[key] = FlopsBuckets(space, self.n_buckets, self.cost,
                                      max_rounds=self.max_rounds)
        return cache[key]


class FlopsBucketSampler(_BucketMixin, _StepCounts):
    """``n`` sub-networks per step, each from the FLOPs bucket of a uniform FLOPs target.

    With ``sandwich=True`` (default) the largest and smallest lead the step, so in-place
    distillation has its teacher. ``last_buckets`` holds the bucket of each random sample.
    """

    def __init__(self, n_random: int = 2, n_buckets: int = 4, sandwich: bool = True,
                 cost: CostFn | None = None, max_rounds: int = 20) -> None:
        if n_random < 1:
            raise ConfigError(f"flops_bucket sampler n_random = {n_random}: must be >= 1")
        self.n_random, self.n_buckets, self.sandwich = n_random, n_buckets, sandwich
        self.cost, self.max_rounds = cost, max_rounds
        self.last_buckets: list[int] = []

    def __call__(self, space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
        fb = self.buckets(space)
        self.last_buckets = [fb.target_bucket(rng) for _ in range(self.n_random)]
        rows = [fb.draw(b, 1, rng) for b in self.last_buckets]
        if self.sandwich:
            rows = [space.largest()[None], space.smallest()[None], *rows]
        return np.vstack(rows)


class AttentiveSampler(_BucketMixin, _StepCounts):
    """AttentiveNAS: largest + smallest + ``n_random`` picks, each the best or worst of
    ``n_candidates`` drawn from one FLOPs bucket.

    ``scorer(configs) -> values`` ranks candidates, lower meaning better (a loss or a predicted
    error). ``mode="bestup"`` trains the lowest-scored candidate (improve the Pareto front),
    ``"worstup"`` the highest (lift the worst). With ``scorer=None`` the trainer installs the
    mini-batch loss of the current batch. ``last_candidates`` / ``last_scores`` / ``last_picks``
    record the latest decision.
    """

    needs_scorer = True
    sandwich = True

    def __init__(self, n_random: int = 2, n_candidates: int = 4, mode: str = "bestup",
                 n_buckets: int = 4, scorer: Scorer | None = None, cost: CostFn | None = None,
                 max_rounds: int = 20) -> None:
        if mode not in ("bestup", "worstup"):
            raise ConfigError(f"attentive sampler mode = {mode!r}: choose 'bestup' or 'worstup'")
        if n_candidates < 1 or n_random < 1:
            raise ConfigError(f"attentive sampler n_random = {n_random}, n_candidates = "
                              f"{n_candidates}: both must be at least 1")
        self.n_random, self.n_candidates, self.mode = n_random, n_candidates, mode
        self.n_buckets, self.scorer = n_buckets, scorer
        self.cost, self.max_rounds = cost, max_rounds
        self.last_candidates: list[np.ndarray] = []
        self.last_scores: list[np.ndarray] = []
        self.last_picks: list[int] = []

    def __call__(self, space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
        if self.scorer is None:
            raise ConfigError("attentive sampler has no scorer: pass scorer= (a predictor or a "
                              "loss function) or train it with train_supernet")
        fb = self.buckets(space)
        self.last_candidates, self.last_scores, self.last_picks = [], [], []
        rows = [space.largest(), space.smallest()]
        for _ in range(self.n_random):
            cands = fb.draw(fb.target_bucket(rng), self.n_candidates, rng)
            scores = np.asarray(self.scorer(space.decode_many(cands)), dtype=float)
            pick = int(np.argmin(scores) if self.mode == "bestup" else np.argmax(scores))
            self.last_candidates.append(cands)
            self.last_scores.append(scores)
            self.last_picks.append(pick)
            rows.append(cands[pick])
        return np.vstack(rows)


SAMPLERS: dict[str, type] = {
    "uniform": UniformSampler,
    "sandwich": SandwichSampler,
    "fair": FairSampler,
    "flops_bucket": FlopsBucketSampler,
    "attentive": AttentiveSampler,
}


def sampler_params(name: str) -> list[str]:
    """Constructor parameters of sampler ``name`` (what ``train.sampler_options`` may set)."""
    return [p for p in inspect.signature(SAMPLERS[name]).parameters if p != "self"]


def make_sampler(name: str, **kwargs: Any) -> Sampler:
    """Sampler ``name`` built with ``kwargs``; unknown names and options raise ConfigError."""
    if name not in SAMPLERS:
        raise ConfigError(f"train.sampler = {name!r}: choose one of {sorted(SAMPLERS)}")
    allowed = sampler_params(name)
    for key in kwargs:
        if key not in allowed:
            raise ConfigError(f"train.sampler_options.{key}: sampler {name!r} takes {allowed}")
    return SAMPLERS[name](**kwargs)
