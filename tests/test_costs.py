"""Analytic FLOPs/params against a hook-based count on extracted subnets."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from evo_nas.costs import CostModel, count_with_hooks, flops, params
from evo_nas.errors import GenomeError
from evo_nas.nn import Supernet
from evo_nas.spaces import get_spec, mobilenet_space


def _check(net: Supernet, cfg: dict) -> None:
    sub = net.extract(cfg)
    shape = (net.spec.in_channels, cfg["res"], cfg["res"])
    assert (flops(net.spec, cfg), params(net.spec, cfg)) == count_with_hooks(sub, shape), cfg
    assert params(net.spec, cfg) == sum(p.numel() for p in sub.parameters())


@pytest.mark.parametrize(("preset", "n"), [("tiny", 22), ("cifar", 5)])
def test_analytic_matches_hooks(preset: str, n: int) -> None:
    torch.manual_seed(0)
    net = Supernet(preset)
    sp = net.space
    cfgs = [sp.decode(sp.largest()), sp.decode(sp.smallest())] + sp.decode_many(sp.sample(n, 0))
    for cfg in cfgs:
        _check(net, cfg)


def test_imagenet_largest() -> None:
    net = Supernet("imagenet")
    cfg = net.space.decode(net.space.largest())
    _check(net, cfg)
    assert sum(p.numel() for p in net.parameters()) == params(net.spec, cfg)


def test_hooks_batch_and_mode() -> None:
    net = Supernet("tiny").train()
    cfg = net.active_config
    sub = net.extract(cfg)
    one = count_with_hooks(sub, (1, cfg["res"], cfg["res"]))
    assert count_with_hooks(sub, (3, 1, cfg["res"], cfg["res"])) == one
    assert sub.training


@pytest.mark.parametrize("preset", ["tiny", "cifar", "imagenet"])
def test_cost_model_and_ordering(preset: str) -> None:
    sp = mobilenet_space(preset)
    spec = get_spec(preset)
    cm = CostModel(sp)
    cfgs = [sp.decode(sp.smallest()), sp.decode(sp.largest())] + sp.decode_many(sp.sample(20, 1))
    out = cm(cfgs)
    assert set(out) == {"flops", "params"}
    assert out["flops"].shape == out["params"].shape == (len(cfgs),)
    assert out["flops"].dtype == np.float64
    np.testing.assert_allclose(out["flops"], [flops(spec, c) / 1e6 for c in cfgs])
    np.testing.assert_allclose(out["params"], [params(spec, c) / 1e6 for c in cfgs])
    assert out["flops"][1] > out["flops"][2:].max() >= out["flops"][2:].min() > out["flops"][0]
    assert out["params"][1] > out["params"][0]
    again = cm(cfgs)  # memoised path gives the same numbers
    np.testing.assert_array_equal(again["flops"], out["flops"])
    assert cm([])["flops"].shape == (0,)


def test_bigger_gene_costs_more() -> None:
    spec = get_spec("tiny")
    base = spec.space().decode(spec.space().smallest())
    for gene, value in [("res", 16), ("s1.b0.k", 5), ("s1.b0.e", 4), ("s2.w", 32), ("s1.d", 2)]:
        cfg = {**base, gene: value}
        if gene == "s1.d":
            cfg.update({"s1.b1.k": 3, "s1.b1.e": 2})
        assert flops(spec, cfg) > flops(spec, base), gene


def test_bad_config() -> None:
    spec = get_spec("tiny")
    cfg = spec.space().decode(spec.space().largest())
    with pytest.raises(GenomeError, match="res"):
        flops(spec, {**cfg, "res": 7})
    del cfg["s0.d"]
    with pytest.raises(GenomeError, match=r"s0\.d"):
        CostModel(spec.space())([cfg])


def test_costs_module_is_torch_free() -> None:
    code = ("import sys; import evo_nas.costs as c; from evo_nas.spaces import mobilenet_space\n"
            "sp = mobilenet_space('tiny'); c.CostModel(sp)([sp.decode(sp.smallest())])\n"
            "assert 'torch' not in sys.modules, 'evo_nas.costs imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("preset", ["tiny", "cifar", "imagenet"])
def test_vectorised_genome_costs_equal_layout_costs(preset):
    from evo_nas.costs import GenomeCosts, layout_costs
    from evo_nas.spaces import get_spec, mobilenet_space

    space = mobilenet_space(preset)
    spec = get_spec(preset)
    X = np.vstack([space.sample(300, 11), space.largest(), space.smallest()])
    macs, n = GenomeCosts(space)(X)
    ref = np.array([layout_costs(spec.layout(c)) for c in space.decode_many(X)])
    assert np.array_equal(macs, ref[:, 0]) and np.array_equal(n, ref[:, 1])
