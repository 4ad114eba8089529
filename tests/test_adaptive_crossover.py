"""NSGA-II's adaptive crossover rate (``crossover_prob="adaptive"``): the rate's update, the
tagged crossover and forced mutation on real pymoo populations, and real searches that learn,
repeat and resume exactly."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TOY8, Stop, dies_at, toy_cost, toy_error
from pymoo.core.population import Population

from evo_nas.algorithms import make_nsga2
from evo_nas.algorithms.nsga2 import AdaptiveNSGA2
from evo_nas.archive import Archive
from evo_nas.errors import ConfigError
from evo_nas.search import search
from operators import MixedCrossover, NeighbourMutation
from operators.adaptive import AdaptiveRate
from problems import NASProblem


def toy(error=toy_error) -> NASProblem:
    return NASProblem(TOY8, {"error": error, "cost": toy_cost})


def test_rate_follows_the_mode_whose_children_survive():
    rate = AdaptiveRate(start=0.5, p_min=0.1, forget=0.9)
    crossed = np.array([True, True, False, False])
    p = rate.update(crossed, survived=np.array([True, True, False, False]))
    # successes (0.9 + 2, 0.9 + 0) over children (1.8 + 2, 1.8 + 2)
    r = np.array([2.9, 0.9]) / 3.8
    assert p == pytest.approx(0.1 + 0.8 * r[0] / r.sum())
    for _ in range(200):  # only crossed children ever survive: p tends to 1 - p_min
        p = rate.update(crossed, survived=crossed)
    assert 0.85 < p <= 0.9
    for _ in range(200):  # then only copies do
        p = rate.update(crossed, survived=~crossed)
    assert 0.1 <= p < 0.15


def test_state_round_trips():
    a = AdaptiveRate()
    a.update(np.array([True, False, True]), np.array([False, True, True]))
    b = AdaptiveRate()
    b.load_state(a.state())
    assert b.p == a.p
    flags = (np.array([True, False]), np.array([True, True]))
    assert b.update(*flags) == a.update(*flags)


@pytest.mark.parametrize(("kw", "msg"), [({"start": 1.5}, "start = 1.5"),
                                         ({"p_min": 0.6}, "p_min = 0.6"),
                                         ({"forget": "x"}, "forget = 'x'")])
def test_bad_rate_settings_are_named(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        AdaptiveRate(**kw)


def parents(n: int, seed: int = 0) -> np.ndarray:
    """``n`` matings of two real pymoo individuals each (as pymoo's mating passes them)."""
    X = TOY8.sample(2 * n, np.random.default_rng(seed))
    pop = Population.new(X=X)
    return np.array([[pop[2 * i], pop[2 * i + 1]] for i in range(n)], dtype=object)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_crossover_tags_children_and_copies_parents_when_it_does_not_cross(p):
    rate = AdaptiveRate(start=p, p_min=0.0)
    mates = parents(30)
    off = MixedCrossover(TOY8, rate=rate).do(None, mates, random_state=np.random.default_rng(1))
    assert len(off) == 60
    tags = np.array(off.get("crossed"), dtype=bool)
    assert tags.all() if p == 1.0 else not tags.any()
    X = off.get("X")
    P1 = np.array([m[0].X for m in mates])
    P2 = np.array([m[1].X for m in mates])
    copies = np.array_equal(X[:30], P1) and np.array_equal(X[30:], P2)
    assert copies == (p == 0.0)  # crossing 30 random pairs changes something


def test_only_uncrossed_children_are_forced_to_change():
    X = TOY8.sample(40, np.random.default_rng(2))
    pop = Population.new(X=X.copy())
    tags = np.array([True, False] * 20)
    pop.set("crossed", tags)
    mut = NeighbourMutation(TOY8, n_genes=0.0, force_uncrossed=True)  # no change unless forced
    Y = mut.do(None, pop, random_state=np.random.default_rng(3)).get("X")
    changed = np.any(Y != X, axis=1)
    assert changed[~tags].all() and not changed[tags].any()
    untagged = Population.new(X=X.copy())  # pymoo's own children carry no tag: not forced
    Y = mut.do(None, untagged, random_state=np.random.default_rng(3)).get("X")
    assert np.array_equal(Y, X)


def test_adaptive_search_learns_repeats_and_keeps_the_budget():
    runs = []
    for _ in range(2):
        algo = make_nsga2(TOY8, pop_size=12, crossover_prob="adaptive")
        assert isinstance(algo, AdaptiveNSGA2)
        res = search(toy(), algo, budget=90, seed=4)
        assert res.info["real_evaluations"] == 90
        assert res.info["crossover_rate"] == round(algo.rate.p, 4)  # what it learnt, reported
        runs.append(([r["genome"] for r in res.history], algo.rate.p))
    assert runs[0] == runs[1]  # same seed, same run, same learnt rate
    assert runs[0][1] != 0.5  # the rate moved from where it started
    fixed = search(toy(), make_nsga2(TOY8, pop_size=12, crossover_prob=0.9), budget=30, seed=4)
    assert "crossover_rate" not in fixed.info  # a fixed rate is the user's own setting


def test_option_through_search_and_its_errors():
    res = search(toy(), "nsga2", pop_size=8, budget=30, seed=0,
                 options={"crossover_prob": "adaptive"})
    assert res.info["real_evaluations"] == 30
    with pytest.raises(ConfigError, match=r"crossover_prob = 'adapt': must be a number in "
                                          r"0..1 or 'adaptive'"):
        search(toy(), "nsga2", pop_size=8, budget=30, options={"crossover_prob": "adapt"})


@pytest.mark.parametrize("stop_at", [9, 20, 30])
def test_an_interrupted_adaptive_run_resumes_to_the_same_end(tmp_path, stop_at):
    """The learnt rate is part of the saved state: without it a resumed run would cross with
    the starting rate and propose other children."""
    opts = {"crossover_prob": "adaptive"}
    full = search(toy(), "nsga2", pop_size=8, budget=60, seed=5, options=opts)
    dying = dies_at(stop_at, toy_error)
    with Archive(tmp_path / "a.db") as archive:
        with pytest.raises(Stop):
            search(toy(dying).attach(archive, "r"), "nsga2", pop_size=8, budget=60, seed=5,
                   options=opts)
        resumed = search(toy().attach(archive, "r"), "nsga2", pop_size=8, budget=60, seed=5,
                         options=opts)
        assert archive.count("r") == 60
    assert [r["genome"] for r in resumed.history] == [r["genome"] for r in full.history]
    assert resumed.info["crossover_rate"] == full.info["crossover_rate"]
