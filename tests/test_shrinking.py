"""Progressive shrinking: phase spaces, schedule validation, and what the trainer trains when."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evo_nas.errors import ConfigError
from evo_nas.nn import Supernet
from evo_nas.spaces import mobilenet_space
from evo_nas.train import (
    Phase,
    TrainConfig,
    dimensions_of,
    gene_dimension,
    make_sampler,
    ofa_phases,
    restrict,
    train_supernet,
)


def test_gene_dimensions_and_space_dimensions():
    assert [gene_dimension(g) for g in ("res", "s0.w", "s1.d", "s1.b0.k", "s2.b2.e")] == [
        "res", "width", "depth", "kernel", "expand"]
    assert dimensions_of(mobilenet_space("tiny")) == ["kernel", "depth", "expand", "width", "res"]
    # OFA's ImageNet space has one width per stage: width is not elastic there
    assert "width" not in dimensions_of(mobilenet_space("imagenet"))


def test_restrict_pins_locked_genes_to_their_largest_option():
    space = mobilenet_space("tiny")
    phase = restrict(space, ["kernel", "depth"])
    largest = space.decode(space.largest())
    for config in phase.decode_many(phase.sample(20, 0)):
        for gene, value in config.items():
            if gene_dimension(gene) in ("expand", "width", "res"):
                if phase.active(phase.encode(config))[phase.names.index(gene)]:
                    assert value == largest[gene], gene
        net_space_config = space.encode(config)  # a phase config is a config of the full space
        assert net_space_config.shape == (space.n_var,)
    depths = {c["s1.d"] for c in phase.decode_many(phase.sample(40, 1))}
    assert depths == {1, 2, 3}
    assert restrict(space, []).cardinality() == 1


def test_a_schedule_unlocking_a_missing_dimension_names_it():
    imagenet = mobilenet_space("imagenet")
    cfg = TrainConfig(phases=[Phase([], 1, 0.1), Phase(["kernel"], 1, 0.05),
                              Phase(["width"], 1, 0.05)])
    with pytest.raises(ConfigError, match=r"train.phases\[2\].unlock = 'width'.*no elastic "
                                          r"width"):
        cfg.validate(imagenet)
    with pytest.raises(ConfigError, match=r"phases\[0\].unlock = 'colour': unknown dimension"):
        TrainConfig(phases=[Phase(["colour"], 1, 0.1)]).validate()
    with pytest.raises(ConfigError, match=r"phases\[1\].epochs = 0"):
        TrainConfig(phases=[Phase([], 1, 0.1), Phase(["kernel"], 0, 0.1)]).validate()


def test_schedule_in_yaml_config_fails_in_the_trainer_before_work(digits):
    from evo_nas.config import load_config

    cfg = load_config({"train": {"phases": [{"unlock": [], "epochs": 1, "lr": 0.1},
                                            {"unlock": ["width"], "epochs": 1, "lr": 0.1}]}})
    assert cfg.train.phases[1] == Phase(["width"], 1, 0.1)

    import dataclasses

    from evo_nas.spaces import get_spec

    spec = get_spec("tiny")
    stages = tuple(dataclasses.replace(st, widths=(st.widths[-1],)) for st in spec.stages)
    net = Supernet(dataclasses.replace(spec, name="tiny-fixed-width", stages=stages))
    with pytest.raises(ConfigError, match="'width': space 'mobilenet-tiny-fixed-width' has no"):
        train_supernet(net, digits, cfg.train)


def test_ofa_phases_follow_kernel_depth_expand_then_width_res():
    phases = ofa_phases(mobilenet_space("tiny"), epochs=2, lr=(0.1, 0.03))
    assert [p.unlock for p in phases] == [[], ["kernel"], ["depth"], ["expand"], ["width"],
                                          ["res"]]
    assert [p.lr for p in phases] == [0.1] + [0.03] * 5
    assert [p.unlock for p in ofa_phases(mobilenet_space("imagenet"))][-1] == ["res"]


def test_training_follows_the_phases_with_their_own_lr(digits):
    from evo_nas.data import Split

    data = type(digits)(**{**digits.__dict__,
                           "train": Split(digits.train.x[:64], digits.train.y[:64])})
    phases = [Phase([], 1, 0.2), Phase(["kernel"], 1, 0.05), Phase(["depth", "res"], 2, 0.01)]
    seen: list[tuple[str, dict]] = []
    inner = make_sampler("sandwich", n_random=2)

    def spy(space, rng):
        X = inner(space, rng)
        seen.extend((space.name, c) for c in space.decode_many(X))
        return X

    torch.manual_seed(0)
    net = Supernet("tiny")
    space = net.space
    largest = space.decode(space.largest())
    log = train_supernet(net, data, TrainConfig(batch_size=32, phases=phases, seed=0),
                         sampler=spy)
    assert [row["phase"] for row in log] == [0, 1, 2, 2]
    by_phase: dict[str, list[dict]] = {}
    for name, c in seen:
        by_phase.setdefault(name, []).append(c)
    assert list(by_phase) == ["mobilenet-tiny[none]", "mobilenet-tiny[kernel]",
                              "mobilenet-tiny[kernel,depth,res]"]  # unlocks accumulate
    assert all(c == largest for c in by_phase["mobilenet-tiny[none]"])
    for c in by_phase["mobilenet-tiny[kernel]"]:
        assert all(v == largest[g] for g, v in c.items() if not g.endswith(".k"))
    assert {c["s0.b0.k"] for c in by_phase["mobilenet-tiny[kernel]"]} == {3, 5}
    third = by_phase["mobilenet-tiny[kernel,depth,res]"]
    assert {c["res"] for c in third} == {12, 16} and {c["s2.d"] for c in third} == {1, 2, 3}
    assert all(c["s0.b0.e"] == 4 and c["s0.w"] == 16 for c in third)  # still locked
    # per-phase cosine: the last step of each phase runs at lr * (1 + cos(pi (T-1) / T)) / 2
    steps = 2  # 64 images / 32
    for row, ph in zip([log[0], log[1], log[3]], phases, strict=True):
        t_total = ph.epochs * steps
        expect = 0.5 * ph.lr * (1 + math.cos(math.pi * (t_total - 1) / t_total))
        assert row["lr"] == pytest.approx(expect)


def test_width_and_resolution_are_sampled_by_every_sampler():
    space = mobilenet_space("tiny")
    rng = np.random.default_rng(0)
    for name in ("uniform", "fair", "flops_bucket"):
        kwargs = {"n": 40} if name == "uniform" else {}
        sampler = make_sampler(name, **kwargs)
        configs = []
        for _ in range(15):
            configs += space.decode_many(sampler(space, rng))
        assert {c["res"] for c in configs} == {12, 16}, name
        assert {c["s1.w"] for c in configs} == {16, 24}, name
