import numpy as np
import pytest
from pymoo.core.population import Population

from evo_nas.spaces import mobilenet_space
from operators import CanonicalDuplicateElimination, CanonicalRepair, ChoiceMutation, ChoiceSampling
from problems import NASProblem

SPACE = mobilenet_space("cifar")


def _problem():
    return NASProblem(SPACE, {"zero": lambda cs: np.zeros(len(cs))})


def test_sampling_draws_from_pymoo_generator():
    s = ChoiceSampling(SPACE)
    a = s.do(_problem(), 50, random_state=np.random.default_rng(1)).get("X")
    b = s.do(_problem(), 50, random_state=np.random.default_rng(1)).get("X")
    assert np.array_equal(a, b)
    assert np.array_equal(SPACE.canonical(a), a)


def _flops_problem(budgets=None):
    from evo_nas.costs import CostModel

    costs = CostModel(SPACE)
    return NASProblem(SPACE, {"zero": lambda cs: np.zeros(len(cs)), "flops": costs},
                      budgets=budgets)


def test_sampling_anchors_the_cheapest_and_dearest_of_its_pool_by_cheap_objectives():
    rng = lambda: np.random.default_rng(3)  # noqa: E731
    X = ChoiceSampling(SPACE, candidates=20).do(_flops_problem(), 10, random_state=rng()).get("X")
    r = rng()
    plain = SPACE.sample(10, r)
    pool = SPACE.sample(200, r)  # the same draws the sampler made after its plain population
    flops = _flops_problem().cheap_objectives(pool)["flops"]
    assert np.array_equal(X[0], pool[np.argmin(flops)])  # cheapest of 200 lookups
    assert np.array_equal(X[1], pool[np.argmax(flops)])  # dearest
    assert np.array_equal(X[2:], plain[2:])  # the rest stays uniform
    assert flops.min() < _flops_problem().cheap_objectives(plain)["flops"].min()
    # the expensive "zero" objective is never looked up, only cheap ones; none: plain sampling
    assert set(_flops_problem().cheap_objectives(pool)) == {"flops"}
    Y = ChoiceSampling(SPACE, candidates=20).do(_problem(), 10, random_state=rng()).get("X")
    assert np.array_equal(Y, SPACE.sample(10, rng()))


def test_sampling_anchors_respect_cheap_budgets():
    free = _flops_problem().cheap_objectives(SPACE.sample(400, 0))["flops"]
    bound = float(np.median(free))
    problem = _flops_problem(budgets={"flops": bound})
    X = ChoiceSampling(SPACE, candidates=40).do(problem, 10, random_state=np.random.default_rng(0))
    anchored = problem.cheap_objectives(X.get("X")[:2])["flops"]
    assert np.isfinite(anchored).all() and (anchored <= bound).all()  # dearest *within* budget
    assert anchored[1] > 0.9 * bound


@pytest.mark.parametrize("prob_var", [None, 0.0, 0.3, 1.0])
def test_mutation_always_changes_stays_in_bounds_and_canonical(prob_var):
    rng = np.random.default_rng(0)
    X = SPACE.sample(500, rng)
    Y = ChoiceMutation(SPACE, prob_var=prob_var)._do(None, X, random_state=rng)
    assert (Y >= SPACE.xl).all() and (Y <= SPACE.xu).all()
    assert np.array_equal(SPACE.canonical(Y), Y)
    changed = [SPACE.key(x) != SPACE.key(y) for x, y in zip(X, Y, strict=True)]
    assert all(changed)
    # only active genes move: a mutated gene that another gene switched off would be a no-op
    moved = X != Y
    assert not (moved & ~SPACE.active(X) & ~SPACE.active(Y)).any()


def test_mutation_is_reproducible_with_seed():
    X = SPACE.sample(20, 0)
    m = ChoiceMutation(SPACE)
    a = m._do(None, X, random_state=np.random.default_rng(5))
    b = m._do(None, X, random_state=np.random.default_rng(5))
    assert np.array_equal(a, b)


def test_repair_rounds_clips_and_canonicalises():
    X = SPACE.sample(30, 1).astype(float)
    X[:, 0] = 99.4
    X[:, 1] = -3.2
    Y = CanonicalRepair(SPACE)._do(None, X + 0.3)
    assert Y.dtype.kind == "i"
    assert (Y[:, 0] == SPACE.xu[0]).all() and (Y[:, 1] == 0).all()
    assert np.array_equal(SPACE.canonical(Y), Y)


def test_duplicate_elimination_uses_canonical_genomes():
    x = SPACE.smallest()
    y = x.copy()
    y[SPACE.names.index("s0.b3.k")] = 2  # inactive gene: same network as x
    z = SPACE.largest()
    pop = Population.new(X=np.stack([x, y, z]))
    kept = CanonicalDuplicateElimination(SPACE).do(pop)
    assert len(kept) == 2
    other = Population.new(X=np.stack([z]))
    kept = CanonicalDuplicateElimination(SPACE).do(Population.new(X=np.stack([x, z])), other)
    assert len(kept) == 1 and np.array_equal(kept.get("X")[0], x)
