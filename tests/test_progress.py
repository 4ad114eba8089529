"""Progress bars move per evaluation (search, surrogate) and per mini-batch (training): a
supernet evaluation takes seconds and an epoch minutes, so a bar that moved per generation or
per epoch would look frozen."""

from __future__ import annotations

import numpy as np
from helpers import TOY8, toy_cost, toy_error
from tqdm.auto import tqdm

from evo_nas.search import search
from problems import NASProblem


def _bar(desc: str):
    return next(b for b in list(tqdm._instances) if b.desc == desc)


class Watching:
    """An expensive metric that notes where the named bar stands each time it evaluates."""

    def __init__(self, desc: str) -> None:
        self.desc, self.seen = desc, []

    def __call__(self, configs):
        self.seen.append(_bar(self.desc).n)
        return toy_error(configs)


def test_search_bar_moves_per_evaluation():
    error = Watching("search")
    problem = NASProblem(TOY8, {"error": error, "cost": toy_cost})
    res = search(problem, "nsga2", pop_size=4, budget=14, seed=0, progress=True)
    assert res.info["real_evaluations"] == 14
    assert error.seen == list(range(14))  # one step per evaluation, within generations too
    assert problem.on_evaluated is None  # the bar is gone with the search


def test_surrogate_bar_moves_per_evaluation():
    error = Watching("surrogate")
    problem = NASProblem(TOY8, {"error": error, "cost": toy_cost})
    search(problem, "surrogate", pop_size=4, budget=16, seed=0, progress=True,
           options={"n_initial": 8, "inner_pop_size": 8, "inner_generations": 2})
    assert error.seen == list(range(16))


def test_training_bar_moves_per_mini_batch(digits):
    from evo_nas.nn import Supernet
    from evo_nas.train import TrainConfig, train_supernet
    from evo_nas.train.samplers import UniformSampler

    seen = []

    class Noting(UniformSampler):
        def __call__(self, space, rng):
            seen.append(_bar("train supernet").n)
            return super().__call__(space, rng)

    cfg = TrainConfig(epochs=2, batch_size=256, seed=0, n_random=1)
    train_supernet(Supernet("tiny"), digits, cfg, progress=True, sampler=Noting(n=1))
    steps = int(np.ceil(len(digits.train) / 256))
    assert seen == list(range(2 * steps))  # one step per mini-batch, across epochs
