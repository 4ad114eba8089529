"""Which sub-networks are trained at each step. A sampler returns genomes for one step."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from evo_nas.errors import ConfigError
from evo_nas.space import SearchSpace


class Sampler(Protocol):
    def __call__(self, space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
        """Genomes (k, n_var) to train on the next mini-batch; the first is the teacher when
        in-place distillation is on."""
        ...


class UniformSampler:
    """SPOS: ``n`` sub-networks drawn uniformly per step."""

    def __init__(self, n: int = 1) -> None:
        self.n = n

    def __call__(self, space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
        return space.sample(self.n, rng)


class SandwichSampler:
    """BigNAS/AttentiveNAS sandwich rule: largest + smallest + ``n_random`` random sub-networks."""

    def __init__(self, n_random: int = 2) -> None:
        self.n_random = n_random

    def __call__(self, space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
        return np.vstack([space.largest(), space.smallest(), space.sample(self.n_random, rng)])


SAMPLERS = {"uniform": UniformSampler, "sandwich": SandwichSampler}


def make_sampler(name: str, **kwargs) -> Sampler:
    if name not in SAMPLERS:
        raise ConfigError(f"train.sampler = {name!r}: choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](**kwargs)
