import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evo_nas.errors import GenomeError
from evo_nas.space import Choice, SearchSpace
from evo_nas.spaces import PRESETS, mobilenet_space

SPACES = {name: mobilenet_space(name) for name in PRESETS}


def genomes(space: SearchSpace):
    return st.lists(st.integers(0, 10**6), min_size=space.n_var, max_size=space.n_var).map(
        lambda v: np.array(v) % space.n_options)


@pytest.mark.parametrize("name", sorted(SPACES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_and_canonical_idempotent(name, data):
    space = SPACES[name]
    x = data.draw(genomes(space))
    c = space.canonical(x)
    assert np.array_equal(space.canonical(c), c)
    assert np.array_equal(space.encode(space.decode(x)), c)
    assert space.key(x) == space.key(c)


def test_inactive_genes_do_not_change_the_architecture():
    space = SPACES["tiny"]
    cfg = space.decode(space.smallest())
    assert cfg["s1.d"] == 1
    x = space.smallest().copy()
    x[space.names.index("s1.b2.k")] = 1  # block 2 of a depth-1 stage: inactive
    assert space.key(x) == space.key(space.smallest())
    x[space.names.index("s1.d")] = 2  # depth 3: now it matters
    assert space.key(x) != space.key(space.smallest())


def test_sampling_is_seeded_canonical_and_in_bounds():
    space = SPACES["cifar"]
    a = space.sample(200, np.random.default_rng(3))
    b = space.sample(200, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert np.array_equal(space.canonical(a), a)
    assert (a >= space.xl).all() and (a <= space.xu).all()
    # every option of every gene shows up in a large sample
    big = space.sample(5000, 0)
    act = space.active(big)
    for i, n in enumerate(space.n_options):
        assert set(big[act[:, i], i]) == set(range(n))


def test_cardinality_matches_enumeration():
    space = SearchSpace([
        Choice("d", (1, 2, 3)),
        Choice("a", (0, 1)),
        Choice("b", (0, 1, 2), active_if=("d", (2, 3))),
        Choice("c", (0, 1), active_if=("d", (3,))),
    ])
    grid = np.array(np.meshgrid(*[range(n) for n in space.n_options])).reshape(space.n_var, -1).T
    assert space.cardinality() == len({space.key(x) for x in grid}) == 2 * (1 + 3 + 6)


@pytest.mark.parametrize(
    "genome, match",
    [
        ([0] * 22, r"expected \(23,\)"),
        ([0] * 22 + [9], r"gene 's2.b2.e' \(index 22\) = 9 is out of range 0..2"),
        ([-1] + [0] * 22, r"gene 'res' \(index 0\) = -1"),
        ([0.5] + [0] * 22, r"gene 'res' \(index 0\) = 0.5 is not an integer"),
        ([np.nan] + [0] * 22, r"gene 'res' \(index 0\) is not finite"),
    ],
)
def test_malformed_genomes_name_gene_index_and_range(genome, match):
    with pytest.raises(GenomeError, match=match):
        SPACES["tiny"].canonical(np.array(genome))


def test_bad_configs_name_the_key_or_value():
    space = SPACES["tiny"]
    cfg = space.decode(space.largest())
    with pytest.raises(GenomeError, match=r"unknown gene 'rez' \(did you mean 'res'\?\)"):
        space.encode({**cfg, "rez": 16})
    with pytest.raises(GenomeError, match=r"gene 'res' = 20 is not one of its options \(12, 16\)"):
        space.encode({**cfg, "res": 20})
    missing = {k: v for k, v in cfg.items() if k != "s0.b0.k"}
    with pytest.raises(GenomeError, match=r"lacks active genes \['s0.b0.k'\]"):
        space.encode(missing)


def test_space_definition_errors():
    with pytest.raises(GenomeError, match="repeats gene names"):
        SearchSpace([Choice("a", (1, 2)), Choice("a", (3,))])
    with pytest.raises(GenomeError, match="depends on unknown gene 'z'"):
        SearchSpace([Choice("a", (1, 2), active_if=("z", (1,)))])
