"""Zero-cost proxies: hand-computed SynFlow and NWOT values, determinism, independence from the
supernet's training, and use as a NASProblem objective in a real search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evo_nas.costs import CostModel
from evo_nas.errors import ConfigError
from evo_nas.nn.nb201 import NB201Supernet
from evo_nas.proxies import (
    ZeroCostProxy,
    nwot,
    nwot_kernel,
    proxy_scores,
    reinitialise,
    synflow,
)
from evo_nas.search import search
from problems import NASProblem

ALL_NONE = {f"op{i}": "none" for i in range(6)}
ALL_CONV3 = {f"op{i}": "nor_conv_3x3" for i in range(6)}
MIXED = {"op0": "nor_conv_1x1", "op1": "skip_connect", "op2": "avg_pool_3x3",
         "op3": "nor_conv_3x3", "op4": "none", "op5": "skip_connect"}


def _net() -> NB201Supernet:
    torch.manual_seed(0)
    return NB201Supernet(C=4, N=1, in_channels=1, image_size=8, num_classes=10)


# ---------------------------------------------------------------------- SynFlow
def _linear(weight: list[list[float]], bias: list[float]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


def test_synflow_matches_hand_computation_and_ignores_bn():
    # W1 = [[1, -2, .5], [-1, 3, 2]], b1 = [.5, -1]; W2 = [[2, -3]], b2 = [-.5]. With |theta|
    # and a ones input: h = |W1| 1 + |b1| = [4, 7], R = |W2| h + |b2| = 8 + 21 + .5 = 29.5.
    # dR/d|W2| = h -> 2*4 + 3*7 = 29;  dR/d|b2| = 1 -> .5;
    # dR/d|W1_ji| = |W2_j| -> 2*3.5 + 3*6 = 25;  dR/d|b1_j| = |W2_j| -> 2*.5 + 3*1 = 4.
    # Score = 29 + .5 + 25 + 4 = 58.5 (= 2R - |b2|: R is linear in each layer's parameters).
    l1 = _linear([[1, -2, 0.5], [-1, 3, 2]], [0.5, -1])
    l2 = _linear([[2, -3]], [-0.5])
    model = nn.Sequential(l1, nn.ReLU(), l2)
    before = [p.clone() for p in model.parameters()]
    assert synflow(model, (3,)) == pytest.approx(58.5, rel=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # a BatchNorm with arbitrary statistics and affine parameters is replaced by the identity
    bn = nn.BatchNorm1d(2)
    with torch.no_grad():
        bn.weight.fill_(-3.0)
        bn.bias.fill_(5.0)
        bn.running_mean.fill_(7.0)
        bn.running_var.fill_(0.01)
    with_bn = nn.Sequential(l1, bn, nn.ReLU(), l2)
    for mode in (True, False):  # whatever mode it is in
        with_bn.train(mode)
        assert synflow(with_bn, (3,)) == pytest.approx(58.5, rel=1e-12)


def test_synflow_disconnected_cell_scores_below_convolutions(digits):
    net = _net()
    none, conv, mixed = proxy_scores(net, [ALL_NONE, ALL_CONV3, MIXED], digits, "synflow")
    # a zero cell leaves only the classifier bias: sum |b| * 1
    assert 0 <= none < mixed < conv
    assert math.isfinite(conv)


# ---------------------------------------------------------------------- NWOT
def test_nwot_kernel_matches_hand_computation():
    # layer 1: W = [[1, 0], [0, 1], [1, -1]]; x1 = [1, -1] -> [1, -1, 2] -> codes 1 0 1,
    #                                          x2 = [1, 2]  -> [1, 2, -1] -> codes 1 1 0.
    # layer 2 (on the ReLU outputs [1, 0, 2] and [1, 2, 0]): W = [[-1, 1, 0]] -> -1, 1 -> 0, 1.
    # 4 units: each image agrees with itself on 4, with the other on 1 (the first unit).
    # K = [[4, 1], [1, 4]], det = 15.
    first = nn.Linear(2, 3, bias=False)
    second = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
        second.weight.copy_(torch.tensor([[-1.0, 1.0, 0.0]]))
    model = nn.Sequential(first, nn.ReLU(), second, nn.ReLU())
    x = torch.tensor([[1.0, -1.0], [1.0, 2.0]])
    kernel = nwot_kernel(model, x)
    assert torch.equal(kernel, torch.tensor([[4.0, 1.0], [1.0, 4.0]], dtype=torch.float64))
    assert nwot(model, x) == pytest.approx(math.log(15.0), rel=1e-12)
    # identical codes make the kernel singular: the worst score
    assert nwot(model, torch.tensor([[1.0, -1.0], [2.0, -2.0]])) == -math.inf


def test_nwot_needs_relu_modules():
    with pytest.raises(ConfigError, match="nn.ReLU"):
        nwot(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), torch.ones(3, 2))


def test_nwot_ranks_disconnected_cell_last(digits):
    none, conv, mixed = proxy_scores(_net(), [ALL_NONE, ALL_CONV3, MIXED], digits, "nwot")
    assert none == -math.inf
    assert math.isfinite(conv) and math.isfinite(mixed)


# ---------------------------------------------------------------------- as a metric
@pytest.mark.parametrize("proxy", ["synflow", "nwot"])
def test_zero_cost_proxy_is_deterministic_and_negated(digits, proxy):
    net = _net()
    configs = [ALL_CONV3, MIXED]
    torch.manual_seed(5)
    expected_draw = torch.rand(3)
    torch.manual_seed(5)
    out = ZeroCostProxy(net, digits, proxy, batch_size=32, seed=0)(configs)
    assert torch.equal(torch.rand(3), expected_draw)  # the global RNG is left alone
    again = ZeroCostProxy(net, digits, proxy, batch_size=32, seed=0)(configs)
    assert list(out) == [proxy]
    np.testing.assert_array_equal(out[proxy], again[proxy])
    positive = proxy_scores(net, configs, digits, proxy, batch_size=32, seed=0)
    np.testing.assert_array_equal(out[proxy], -positive)
    other = proxy_scores(net, configs, digits, proxy, batch_size=32, seed=1)
    assert not np.array_equal(positive, other)  # the seed is what fixes the weights


def test_scores_do_not_depend_on_supernet_training(digits):
    net = _net()
    configs = [ALL_CONV3, MIXED]
    before = {p: proxy_scores(net, configs, digits, p) for p in ("synflow", "nwot")}
    raw_before = synflow(net.extract(ALL_CONV3), (1, 8, 8))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net.train()
    for i in range(4):
        net.set_active(configs[i % 2])
        x, y = digits.train.x[64 * i:64 * (i + 1)], digits.train.y[64 * i:64 * (i + 1)]
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    # the trained weights do change the score of the extracted network as it stands...
    assert synflow(net.extract(ALL_CONV3), (1, 8, 8)) != pytest.approx(raw_before, rel=1e-6)
    # ...but the proxies re-initialise it, so they do not
    for p, scores in before.items():
        np.testing.assert_array_equal(proxy_scores(net, configs, digits, p), scores)


def test_reinitialise_refuses_parameters_it_cannot_reset():
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.s = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.s

    with pytest.raises(ConfigError, match="reset_parameters"):
        reinitialise(nn.Sequential(nn.Linear(2, 2), Scale()), 0)


def test_zero_cost_proxy_rejects_bad_settings(digits):
    with pytest.raises(ConfigError, match="proxy"):
        ZeroCostProxy(_net(), digits, "grasp")
    with pytest.raises(ConfigError, match="batch_size"):
        ZeroCostProxy(_net(), digits, "nwot", batch_size=1)


@pytest.mark.parametrize("proxy", ["synflow", "nwot"])
def test_zero_cost_proxy_as_nas_objective(digits, proxy):
    net = _net()
    metric = ZeroCostProxy(net, digits, proxy, batch_size=32)
    assert metric.cheap is False
    problem = NASProblem(net.space, objectives={proxy: metric, "flops": CostModel(net.space)})
    result = search(problem, pop_size=6, generations=2, seed=0)
    assert result.pareto
    for row in result.pareto:
        assert row[proxy] == pytest.approx(-proxy_scores(net, [row["config"]], digits, proxy,
                                                          batch_size=32)[0])
    if proxy == "synflow":  # every architecture has a finite SynFlow
        assert not problem.failures()
