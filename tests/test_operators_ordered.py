"""Operators that know ordered genes, multi-objective evolution, and option errors (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
from nb201_slice import SLICE, SUB
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import cross_sbx
from pymoo.optimize import minimize

from evo_nas.algorithms import (
    RegularizedEvolution,
    TournamentEvolution,
    build_algorithm,
    make_nsga2,
)
from evo_nas.algorithms.evolution import pareto_keys
from evo_nas.errors import ConfigError, GenomeError
from evo_nas.space import Choice, SearchSpace
from evo_nas.spaces import mobilenet_space
from evo_nas.spaces.nb201 import nb201_cell_space
from operators import (
    CanonicalDuplicateElimination,
    CanonicalRepair,
    ChoiceSampling,
    MixedCrossover,
    NeighbourMutation,
)
from operators.mutation import range_weights
from problems.tabular import load_nb201, nb201_space

WIDTHS = tuple(range(8, 72, 8))  # 8 ordered options
OPS = ("a", "b", "c", "d", "e")  # 5 categorical options
SPACE = SearchSpace([Choice("w", WIDTHS), Choice("op", OPS), Choice("k", (3, 5, 7)),
                     Choice("depth", (1, 2, 3)),
                     Choice("b2.k", (3, 5, 7), active_if=("depth", (2, 3)))])


def _mutate(space, X, seed, **kw):
    return NeighbourMutation(space, **kw)._do(None, X, random_state=np.random.default_rng(seed))


def _cross(space, P1, P2, seed, prob=1.0, **kw):
    X = np.stack([P1, P2]).astype(float)
    return MixedCrossover(space, prob=prob, **kw)._do(None, X,
                                                      random_state=np.random.default_rng(seed))


def test_ordered_flag_is_inferred_from_numbers_and_can_be_set():
    assert list(SPACE.ordered) == [True, False, True, True, True]
    assert Choice("x", (7, 5, 3)).is_ordered  # descending numbers are ordered too
    assert not Choice("x", (3, 7, 5)).is_ordered  # numbers out of order are not
    assert not Choice("x", (True, False)).is_ordered
    assert Choice("op", OPS, ordered=True).is_ordered
    assert not Choice("k", (3, 5), ordered=False).is_ordered
    assert not nb201_space().ordered.any()  # operation names are categorical
    with pytest.raises(GenomeError, match="ordered = 'yes'"):
        Choice("k", (3, 5), ordered="yes")


def test_ordered_mutation_stays_in_range_and_mostly_steps_to_neighbours():
    n = 20_000
    X = SPACE.sample(n, 0)
    Y = _mutate(SPACE, X, 1, prob_var=1.0)
    assert (Y >= SPACE.xl).all() and (Y <= SPACE.xu).all()
    step = np.abs(Y[:, 0] - X[:, 0])
    assert (step > 0).all()  # a mutated gene always changes
    # decay 0.5 over 8 options: about 60 % single steps; a uniform draw would give 2/7 ~ 29 %
    assert (step == 1).mean() > 0.5
    assert (step == 1).mean() > (step == 2).mean() > (step == 3).mean() > (step >= 5).mean()
    # the categorical gene moves uniformly to the 4 other options, whatever the distance
    X0 = np.zeros((n, SPACE.n_var), dtype=np.int64)
    Y0 = _mutate(SPACE, X0, 2, prob_var=1.0)
    freq = np.bincount(Y0[:, 1], minlength=5) / n
    assert freq[0] == 0
    assert np.allclose(freq[1:], 0.25, atol=0.02)


def test_mutation_rate_defaults_and_at_least_once():
    X = SPACE.sample(4000, 3)
    gentle = _mutate(SPACE, X, 4, n_genes=0.3)
    changed = (gentle != X).any(axis=1).mean()
    assert 0.15 < changed < 0.45  # about 0.3 genes per genome: many children are unchanged
    forced = _mutate(SPACE, X, 4, n_genes=0.3, at_least_once=True)
    assert (forced != X).any(axis=1).all()


def test_blend_crossover_children_lie_between_parents_on_ordered_genes():
    P1, P2 = SPACE.sample(5000, 5), SPACE.sample(5000, 6)
    C1, C2 = _cross(SPACE, P1, P2, 7, ordered="blend")
    both = SPACE.active(P1) & SPACE.active(P2)
    lo, hi = np.minimum(P1, P2), np.maximum(P1, P2)
    for C in (C1, C2):
        assert (C >= SPACE.xl).all() and (C <= SPACE.xu).all()
        ordered = both & SPACE.ordered[None, :]
        assert ((C >= lo) & (C <= hi))[ordered].all()
        op = SPACE.names.index("op")
        assert ((C[:, op] == P1[:, op]) | (C[:, op] == P2[:, op])).all()
    # ordered genes: the children's mean is the parents' (mirror draw); for parents more than
    # one step apart, in-between values appear, though most children stay near a parent
    w = SPACE.names.index("w")
    assert np.array_equal(C1[:, w] + C2[:, w], P1[:, w] + P2[:, w])
    far = hi[:, w] - lo[:, w] > 1
    inside = (C1[far, w] > lo[far, w]) & (C1[far, w] < hi[far, w])
    assert 0.1 < inside.mean() < 0.5


def test_sbx_crossover_is_pymoos_sbx_on_ordered_genes_and_swaps_categorical_ones():
    """The default: on a space of ordered genes without conditions, the children are exactly
    those of pymoo's SBX (eta 3, prob_var 0.5) on the option indices, rounded; categorical
    genes only ever come from a parent."""
    space = SearchSpace([Choice(f"w{i}", WIDTHS) for i in range(4)])
    P1, P2 = space.sample(3000, 20), space.sample(3000, 21)
    ours = _cross(space, P1, P2, 22)
    rng = np.random.default_rng(22)
    rng.random(P1.shape)  # the categorical swap draw comes first
    n = len(P1)
    theirs = cross_sbx(np.stack([P1, P2]).astype(float), space.xl.astype(float),
                       space.xu.astype(float), np.full((n, 1), 3.0), np.full((n, 1), 0.5),
                       np.full((n, 1), 0.5), random_state=rng)
    assert np.array_equal(ours, np.rint(theirs))
    assert 0.2 < (ours[0] != P1).mean() < 0.4  # half the genes crossed, some land back
    beyond = (ours[0] < np.minimum(P1, P2)) | (ours[0] > np.maximum(P1, P2))
    assert beyond.mean() > 0.02  # SBX reaches beyond the parents
    # on the mixed space: in range, categorical genes from a parent, ordered ones spread
    P1, P2 = SPACE.sample(5000, 23), SPACE.sample(5000, 24)
    C1, C2 = _cross(SPACE, P1, P2, 25)
    op, w = SPACE.names.index("op"), SPACE.names.index("w")
    for C in (C1, C2):
        assert (C >= SPACE.xl).all() and (C <= SPACE.xu).all()
        assert ((C[:, op] == P1[:, op]) | (C[:, op] == P2[:, op])).all()
        assert ((C[:, w] < np.minimum(P1[:, w], P2[:, w]))
                | (C[:, w] > np.maximum(P1[:, w], P2[:, w]))).mean() > 0.02
    with pytest.raises(ConfigError, match="ordered = 'sbxx'"):
        MixedCrossover(SPACE, ordered="sbxx")
    with pytest.raises(ConfigError, match="prob_var = 2"):
        MixedCrossover(SPACE, prob_var=2)


def test_range_rate_mutates_wide_ordered_genes_more_often():
    """range_rate: a gene of 8 ordered options mutates ~4.1x as often as a categorical one;
    two-option and categorical genes keep n_genes / n_active."""
    weights = range_weights(SPACE, 0.5)
    assert np.allclose(weights, [4.107, 1.0, 1.636, 1.636, 1.636], atol=1e-3)
    space = SearchSpace([Choice("w", WIDTHS), Choice("op", OPS), Choice("b", (0, 1))])
    X = space.sample(20_000, 30)
    flat = _mutate(space, X, 31, n_genes=0.6) != X
    scaled = _mutate(space, X, 31, n_genes=0.6, range_rate=True) != X
    assert np.allclose(flat.mean(axis=0), [0.2, 0.2, 0.2], atol=0.015)
    assert abs(scaled[:, 0].mean() - 0.2 * 4.107) < 0.02
    assert np.allclose(scaled[:, 1:].mean(axis=0), [0.2, 0.2], atol=0.015)


def test_nsga2_defaults_reach_the_wide_ordered_corner_better_than_before():
    """A real pymoo run on a space of 5 wide ordered genes (a smooth two-objective trade-off
    whose front runs from all-zeros to all-maximum): the default (SBX + range-scaled rate)
    spreads further along the front than the older blend crossover with a flat rate."""
    space = SearchSpace([Choice(f"w{i}", tuple(range(1, 13))) for i in range(5)])

    class Widths(Problem):
        def __init__(self):
            super().__init__(n_var=5, n_obj=2, xl=space.xl, xu=space.xu, vtype=int)

        def _evaluate(self, X, out, *args, **kwargs):
            w = np.round(X).astype(float) + 1.0
            out["F"] = np.column_stack([1.0 / np.log1p(w).sum(axis=1), w.sum(axis=1)])

    def spread(algo, seed):  # equal evaluations: the default makes pop_size // 4 per generation
        res = minimize(Widths(), algo, ("n_eval", 240), seed=seed)
        return np.ptp(res.F[:, 1])

    new = [spread(make_nsga2(space), s) for s in range(6)]
    old = [spread(NSGA2(pop_size=20, sampling=ChoiceSampling(space),
                        crossover=MixedCrossover(space, ordered="blend"),
                        mutation=NeighbourMutation(space, n_genes=0.3),
                        repair=CanonicalRepair(space),
                        eliminate_duplicates=CanonicalDuplicateElimination(space)), s)
           for s in range(6)]
    assert np.median(new) > np.median(old)
    again = minimize(Widths(), make_nsga2(space), ("n_gen", 5), seed=3).X
    assert np.array_equal(again, minimize(Widths(), make_nsga2(space), ("n_gen", 5), seed=3).X)


def test_operators_are_deterministic_given_the_seed():
    X = SPACE.sample(200, 8)
    assert np.array_equal(_mutate(SPACE, X, 9), _mutate(SPACE, X, 9))
    a = _cross(SPACE, X[:100], X[100:], 10)
    b = _cross(SPACE, X[:100], X[100:], 10)
    assert np.array_equal(a, b)
    assert not np.array_equal(_mutate(SPACE, X, 9), _mutate(SPACE, X, 11))


@pytest.mark.parametrize("space", [nb201_cell_space(), mobilenet_space("cifar"), SPACE],
                         ids=["nb201-canonicalizer", "mobilenet-conditional", "mixed"])
def test_outputs_are_canonical(space):
    X = space.sample(300, 12)
    Y = _mutate(space, X, 13, n_genes=2.0)
    assert np.array_equal(space.canonical(Y), Y)
    C = _cross(space, X[:150], X[150:], 14)
    for c in C:
        assert np.array_equal(space.canonical(c), c)


def test_genes_switched_on_get_random_options_not_index_zero():
    """Canonical genomes park inactive genes at 0; a deeper child must not always get the
    smallest kernel in the block it gains."""
    d, k = SPACE.names.index("depth"), SPACE.names.index("b2.k")
    X = np.zeros((3000, SPACE.n_var), dtype=np.int64)  # depth 1: b2.k inactive, parked at 0
    Y = _mutate(SPACE, X, 15, prob_var=1.0)
    woke = Y[:, d] > 0
    assert woke.sum() > 500
    assert np.allclose(np.bincount(Y[woke, k], minlength=3) / woke.sum(), 1 / 3, atol=0.05)
    # crossover: a gene active in one parent only is taken from that parent
    P1 = np.zeros((200, SPACE.n_var), dtype=np.int64)
    P2 = P1.copy()
    P2[:, d], P2[:, k] = 2, 2
    C1, C2 = _cross(SPACE, P1, P2, 16)
    for C in (C1, C2):
        deep = C[:, d] > 0
        assert (C[deep, k] == 2).all()


def _small_problem():
    return load_nb201(SLICE, space=nb201_space(SUB))


@pytest.mark.parametrize("algo", ["nsga2", "regularized", "tournament"])
def test_default_algorithms_find_a_multi_point_front(algo):
    fronts = []
    for _ in range(2):
        problem = _small_problem()
        res = minimize(problem, build_algorithm(algo, problem, 8), ("n_gen", 6), seed=2,
                       verbose=False)
        F = np.atleast_2d(res.F)
        assert len(F) >= 2  # multi-objective by default: a front, not one point
        assert F[:, 0].min() == min(h["error"] for h in problem.history)
        fronts.append(sorted(map(tuple, F.tolist())))
    assert fronts[0] == fronts[1]


def test_single_objective_evolution_is_one_option_away():
    problem = _small_problem()
    algo = RegularizedEvolution(problem.space, pop_size=8, objective="error")
    res = minimize(problem, algo, ("n_gen", 5), seed=0, verbose=False)
    assert len(np.atleast_2d(res.F)) == 1
    assert np.atleast_2d(res.F)[0, 0] == min(h["error"] for h in problem.history)


def test_pareto_keys_rank_then_crowding():
    F = np.array([[1.0, 5.0], [2.0, 3.0], [3.0, 2.0], [5.0, 1.0], [4.0, 4.0], [np.nan, 0.0]])
    k = pareto_keys(F)
    assert (k[:4] < 1).all() and 1 <= k[4] < 2 and np.isinf(k[5])
    assert k[0] < k[1] and k[3] < k[2]  # extremes of a front (infinite crowding) first


@pytest.mark.parametrize("value", [5, -0.1, "high", None, True])
def test_nsga2_crossover_prob_out_of_range_is_named(value):
    with pytest.raises(ConfigError, match=rf"crossover_prob = {value!r}".replace("(", r"\(")):
        make_nsga2(SPACE, crossover_prob=value)


def test_nsga2_other_options_are_checked():
    with pytest.raises(ConfigError, match="mutation_prob_var = 2"):
        make_nsga2(SPACE, mutation_prob_var=2)
    with pytest.raises(ConfigError, match="mutation_genes = 'many'"):
        make_nsga2(SPACE, mutation_genes="many")
    with pytest.raises(ConfigError, match="crossover_prob = 'high'"):
        build_algorithm("nsga2", _small_problem(), 8, crossover_prob="high")


@pytest.mark.parametrize("cls", [RegularizedEvolution, TournamentEvolution])
def test_sample_size_larger_than_population_is_named(cls):
    with pytest.raises(ConfigError, match="sample_size = 9.*pop_size"):
        cls(SPACE, pop_size=4, sample_size=9)
    with pytest.raises(ConfigError, match="sample_size = 'all'"):
        cls(SPACE, pop_size=4, sample_size="all")
    with pytest.raises(ConfigError, match="fitness = 'nsga'"):
        cls(SPACE, fitness="nsga")
    assert cls(SPACE, pop_size=6).sample_size == 2  # default pop_size // 4, at least 2
    assert cls(SPACE, pop_size=40).sample_size == 10


def test_random_weights_evolution_is_multi_objective_too():
    problem = _small_problem()
    algo = TournamentEvolution(problem.space, pop_size=8, weights="random")
    assert algo.fitness == "random_weights" and algo.multi
    res = minimize(problem, algo, ("n_gen", 5), seed=1, verbose=False)
    assert len(np.atleast_2d(res.F)) >= 2


def test_categorical_sbx_makes_options_neither_parent_had():
    """``categorical="sbx"`` (NSGA-II's default) crosses categorical genes by SBX on their
    cost-ordered index: parents "a" and "e" give children "b".."d" too, which uniform swaps
    never do; children stay in range."""
    n = 5000
    P1, P2 = SPACE.sample(n, 30), SPACE.sample(n, 31)
    op = SPACE.names.index("op")
    P1[:, op], P2[:, op] = 0, 4
    swapped = _cross(SPACE, P1, P2, 32)
    crossed = _cross(SPACE, P1, P2, 32, categorical="sbx")
    assert set(np.unique(swapped[:, :, op])) == {0, 4}
    between = np.isin(crossed[:, :, op], (1, 2, 3))
    assert 0.02 < between.mean() < 0.5  # a share of the crossed genes lands in between
    assert set(np.unique(crossed[:, :, op])) == {0, 1, 2, 3, 4}
    for C in crossed:
        assert (C >= SPACE.xl).all() and (C <= SPACE.xu).all()
    # with the blend crossover of ordered genes, categorical ones are crossed the same way
    blended = _cross(SPACE, P1, P2, 33, ordered="blend", categorical="sbx")
    assert np.isin(blended[:, :, op], (1, 2, 3)).any()
    with pytest.raises(ConfigError, match="categorical = 'uniform'"):
        MixedCrossover(SPACE, categorical="uniform")
    assert make_nsga2(SPACE, pop_size=8).mating.crossover.categorical == "sbx"
