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
