"""NSGA-II's parent selection: tournaments of any size on rank, then crowding (feasible first),
and the steady-state generations of the default NSGA-II, on real pymoo populations and runs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TOY8, toy_problem
from pymoo.core.population import Population

from evo_nas.algorithms import make_nsga2
from evo_nas.errors import ConfigError
from evo_nas.search import search
from operators.selection import RankTournament, rank_and_crowding


def population(rank, crowding, cv=None):
    n = len(rank)
    pop = Population.new(X=np.zeros((n, 1)), F=np.zeros((n, 2)),
                         CV=np.zeros((n, 1)) if cv is None else np.asarray(cv, float)[:, None])
    pop.set("rank", np.asarray(rank), "crowding", np.asarray(crowding, dtype=float))
    return pop


def test_winner_is_feasible_first_then_lowest_rank_then_most_crowding():
    pop = population(rank=[2, 0, 0, 1, 0], crowding=[9, 1.0, np.inf, 5, 3.0],
                     cv=[0, 0, 0, 0, 0.5])
    P = np.array([[0, 1, 2, 3, 4], [0, 3, 4, 4, 4], [0, 3, 3, 3, 0], [1, 4, 4, 1, 4]])
    won = rank_and_crowding(pop, P, random_state=np.random.default_rng(0))
    # 2: rank 0 with infinite crowding; 3: infeasible 4 loses, rank 1 beats rank 2;
    # 1 beats the infeasible 4 although 4's crowding is larger
    assert won.tolist() == [2, 3, 3, 1]


def test_ties_are_broken_at_random_from_the_given_generator():
    pop = population(rank=[0, 0], crowding=[1.0, 1.0])
    P = np.tile([0, 1], (400, 1))
    a = rank_and_crowding(pop, P, random_state=np.random.default_rng(3))
    assert 150 < (a == 0).sum() < 250  # a fair coin, not the first listed
    assert np.array_equal(a, rank_and_crowding(pop, P, random_state=np.random.default_rng(3)))


def test_larger_tournaments_pick_better_ranked_parents():
    """Real pymoo tournament draws on a population of ranks 0..9: the mean winning rank falls
    with the tournament size (the selection pressure the option sets)."""
    rank = np.repeat(np.arange(10), 2)
    pop = population(rank=rank, crowding=np.ones(20))
    mean = {}
    for k in (2, 3, 5):
        S = RankTournament(k).do(None, pop, 500, n_parents=1,
                                 random_state=np.random.default_rng(1), to_pop=False)
        mean[k] = rank[np.asarray(S).ravel()].mean()
    assert mean[2] > mean[3] > mean[5]


def test_every_winner_is_among_the_best_of_its_row():
    """Random populations with many ties and infinite crowding: each row's winner is one of
    the row's members that no other member of the row beats on (violation, rank, crowding)."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(2, 25))
        cv = rng.choice([0.0, 0.0, 0.5, 1.0], n)
        rank = rng.integers(0, 3, n)
        crowd = rng.choice([0.2, 0.7, np.inf], n)
        pop = population(rank=rank, crowding=crowd, cv=cv)
        P = rng.integers(0, n, (int(rng.integers(1, 15)), int(rng.integers(2, 5))))
        won = rank_and_crowding(pop, P, random_state=rng)
        for row, w in zip(P, won, strict=True):
            best = min((cv[i], rank[i], -crowd[i]) for i in row)
            assert w in row and (cv[w], rank[w], -crowd[w]) == best


@pytest.mark.parametrize("size", [1, 0, 2.5, True, "3"])
def test_bad_tournament_size_is_named(size):
    with pytest.raises(ConfigError, match=r"tournament size = .*: must be an int >= 2"):
        RankTournament(size)


def test_default_generation_makes_a_quarter_population_of_children():
    """On TOY8 (65,536 genomes, no duplicates to retry) 4 generations of the default spend
    pop_size + 3 x pop_size // 4 evaluations; the generational form pop_size per generation."""
    algo = make_nsga2(TOY8, pop_size=12)
    assert algo.n_offsprings == 3 and algo.mating.selection.pressure == 3
    p = toy_problem()
    search(p, "nsga2", pop_size=12, generations=4, seed=0)
    assert p.n_real == 12 + 3 * 3
    g = toy_problem()
    search(g, "nsga2", pop_size=12, generations=4, seed=0,
           options={"n_offsprings": 12, "tournament_size": 2})
    assert g.n_real == 12 + 3 * 12
    assert [h["genome"] for h in g.history[:12]] == [h["genome"] for h in p.history[:12]]


def test_tiny_population_gets_tournaments_it_can_hold():
    """The default tournament of 3 shrinks to the population (2); an explicit size may not."""
    assert make_nsga2(TOY8, pop_size=2).mating.selection.pressure == 2
    p = toy_problem()
    search(p, "nsga2", pop_size=2, generations=5, seed=0)
    assert p.n_real == 2 + 4 * 1
    with pytest.raises(ConfigError, match=r"tournament_size = 3: must be an int in 2..pop_size"):
        make_nsga2(TOY8, pop_size=2, tournament_size=3)
