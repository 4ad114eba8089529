"""Malformed genomes and configs thrown at the public API: a clear EvoNasError, or success."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evo_nas.config import load_config
from evo_nas.errors import ConfigError, EvoNasError, GenomeError
from evo_nas.spaces import mobilenet_space
from problems import NASProblem

SPACE = mobilenet_space("tiny")

scalars = st.one_of(st.integers(-5, 30), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.none(), st.text(max_size=5))
arrays = st.one_of(
    st.lists(scalars, max_size=30),
    st.lists(st.lists(st.integers(-2, 5), min_size=0, max_size=25), max_size=4),
    st.integers(), st.text(max_size=10),
)


@settings(max_examples=300, deadline=None)
@given(genome=arrays)
def test_malformed_genomes(genome):
    try:
        arr = np.asarray(genome)
    except ValueError:  # ragged input: numpy itself refuses
        return
    for fn in (SPACE.canonical, SPACE.decode, SPACE.key):
        try:
            out = fn(arr)
        except EvoNasError as e:
            assert str(e)
            continue
        # success only for a genuine genome: right length, integral, in range
        flat = np.atleast_2d(np.asarray(arr, dtype=float))
        assert flat.shape[-1] == SPACE.n_var
        assert (flat >= 0).all() and (flat <= SPACE.xu).all() and (flat == np.round(flat)).all()
        assert out is not None


config_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                     st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
sections = st.sampled_from(["name", "seed", "preset", "device", "runs_dir", "data", "train",
                            "eval", "search", "serach", "epochs"])
keys = st.sampled_from(["epochs", "batch_size", "lr", "sampler", "pop_size", "generations",
                        "objectives", "budgets", "dataset", "calib_images", "split", "bogus"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(sections, st.one_of(config_values,
                                                st.dictionaries(keys, config_values,
                                                                max_size=3)), max_size=4))
def test_malformed_configs(data):
    try:
        cfg = load_config(data)
    except ConfigError as e:
        assert str(e)
        return
    assert cfg.train.epochs >= 1 and cfg.search.pop_size >= 2


@settings(max_examples=100, deadline=None)
@given(config=st.dictionaries(st.sampled_from([*SPACE.names, "resolution", "s9.d"]), scalars,
                              max_size=30))
def test_malformed_architecture_configs(config):
    try:
        x = SPACE.encode(config)
    except GenomeError as e:
        assert str(e)
        return
    assert np.array_equal(SPACE.canonical(x), x)


def test_problem_refuses_bad_genomes_with_the_gene_named():
    problem = NASProblem(SPACE, {"f": lambda cs: [1.0] * len(cs)})
    bad = SPACE.smallest().copy()
    bad[3] = 17
    with pytest.raises(GenomeError, match=r"gene 's0.b0.k' \(index 3\) = 17"):
        problem.measure(bad[None])


def test_runs_stay_inside_their_directory(trained_tiny, tmp_path, monkeypatch, capsys):
    from evo_nas.cli import main

    monkeypatch.chdir(tmp_path)
    for name in ("../escape", "a/b", ".."):
        assert main(["search", "--name", name, "--checkpoint", str(trained_tiny[1])]) == 2
        assert "name = " in capsys.readouterr().err
    assert main(["search", "--name", "inside", "--checkpoint", str(trained_tiny[1]),
                 "--pop-size", "4", "--generations", "1", "--calib-images", "50",
                 "--quiet"]) == 0
    written = {p.relative_to(tmp_path).parts[:2] for p in tmp_path.rglob("*") if p.is_file()}
    assert written and all(parts == ("runs", "inside") for parts in written)
