"""Supernet, static extraction and BN re-calibration, on the small presets with real torch."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from evo_nas.errors import DataError, GenomeError
from evo_nas.nn import ElasticBatchNorm2d, Supernet, extract, recalibrate_bn, resize
from evo_nas.nn.supernet import ElasticMBConv


def _bn_modules(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def _scramble_bn(net: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN affine params and running stats, so slicing mistakes change outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in _bn_modules(net):
            n = bn.num_features
            bn.weight.copy_(0.5 + torch.rand(n, generator=g))
            bn.bias.copy_(0.2 * torch.randn(n, generator=g))
            bn.running_mean.copy_(0.3 * torch.randn(n, generator=g))
            bn.running_var.copy_(0.5 + torch.rand(n, generator=g))


def _input(net: Supernet, cfg: dict, n: int = 2) -> torch.Tensor:
    return torch.randn(n, net.spec.in_channels, cfg["res"], cfg["res"])


@pytest.fixture(scope="module")
def tiny() -> Supernet:
    torch.manual_seed(0)
    net = Supernet("tiny")
    _scramble_bn(net)
    # a few train-mode forwards of random subnets: exercises in-place updates of sliced stats
    for cfg in net.space.decode_many(net.space.sample(3, 1)):
        net.set_active(cfg)
        net.train()
        net(_input(net, cfg, 4))
    net.eval()
    return net


@pytest.fixture(scope="module")
def cifar() -> Supernet:
    torch.manual_seed(1)
    net = Supernet("cifar")
    _scramble_bn(net, 1)
    with torch.no_grad():  # SE biases start at zero; make them matter
        for m in net.modules():
            bias = getattr(m, "bias", None)
            if isinstance(bias, nn.Parameter) and not isinstance(m, nn.BatchNorm2d):
                bias.normal_(0.0, 0.1)
    return net.eval()


def _check_extract(net: Supernet, cfg: dict) -> None:
    net.set_active(cfg)
    sub = extract(net, cfg).eval()
    x = _input(net, cfg)
    with torch.no_grad():
        ref, out = net(x), sub(x)
    assert torch.allclose(ref, out, atol=1e-5), (cfg, (ref - out).abs().max())
    elastic = [m for m in sub.modules() if type(m).__name__.startswith("Elastic")]
    assert not elastic
    assert sub.config == net.space.decode(net.space.encode(cfg))


def test_extract_equals_supernet_tiny(tiny: Supernet) -> None:
    sp = tiny.space
    cfgs = [sp.decode(sp.largest()), sp.decode(sp.smallest())] + sp.decode_many(sp.sample(22, 3))
    for cfg in cfgs:
        _check_extract(tiny, cfg)


def test_extract_equals_supernet_cifar(cifar: Supernet) -> None:
    sp = cifar.space
    cfgs = [sp.decode(sp.largest()), sp.decode(sp.smallest())] + sp.decode_many(sp.sample(3, 4))
    for cfg in cfgs:
        _check_extract(cifar, cfg)


def test_forward_follows_layout(cifar: Supernet) -> None:
    cfg = cifar.space.decode(cifar.space.sample(1, 5)[0])
    cifar.set_active(cfg)
    seen: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[1:])))
             for m in cifar.modules() if isinstance(m, ElasticMBConv)]
    try:
        with torch.no_grad():
            cifar(_input(cifar, cfg, 1))
    finally:
        for h in hooks:
            h.remove()
    lay = cifar.spec.layout(cfg)
    assert seen == [(b.out_ch, b.out_size, b.out_size) for b in lay.blocks]
    assert cifar.active_layout == lay


def test_extract_copies_and_keeps_active(tiny: Supernet) -> None:
    sp = tiny.space
    small, large = sp.decode(sp.smallest()), sp.decode(sp.largest())
    tiny.set_active(large)
    sub = tiny.extract(small)
    assert tiny.active_config == large
    ours = {id(p) for p in tiny.parameters()} | {p.data_ptr() for p in tiny.parameters()}
    assert all(p.data_ptr() not in ours for p in sub.parameters())
    assert all(b.data_ptr() not in {t.data_ptr() for t in tiny.buffers()} for b in sub.buffers())


def test_extracted_is_scriptable(tiny: Supernet) -> None:
    cfg = tiny.space.decode(tiny.space.sample(1, 6)[0])
    sub = tiny.extract(cfg).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(sub)
    x = _input(tiny, cfg)
    assert torch.allclose(scripted(x), sub(x))


def test_gradients_only_reach_active_slice() -> None:
    torch.manual_seed(0)
    net = Supernet("tiny")
    net.set_smallest()
    cfg = net.active_config
    net(_input(net, cfg)).sum().backward()
    blk = net.stages[0][0]
    bl = blk.active
    g = blk.expand.weight.grad
    assert g[: bl.mid_ch, : bl.in_ch].abs().sum() > 0
    assert g[bl.mid_ch:].abs().sum() == 0
    assert net.stages[0][1].dw.weight.grad is None  # beyond the active depth
    k = bl.kernel
    p = (blk.dw.max_kernel - k) // 2
    dg = blk.dw.weight.grad[: bl.mid_ch]
    assert dg[..., p:p + k, p:p + k].abs().sum() > 0
    outside = dg.clone()
    outside[..., p:p + k, p:p + k] = 0
    assert outside.abs().sum() == 0


@pytest.mark.parametrize(
    ("patch", "gene"),
    [({"res": 13}, "res"), ({"s1.b0.k": 4}, "s1.b0.k"), ({"s9.d": 1}, "s9.d"),
     ({"s0.w": 99}, "s0.w")],
)
def test_set_active_rejects_bad_config(tiny: Supernet, patch: dict, gene: str) -> None:
    cfg = {**tiny.space.decode(tiny.space.largest()), **patch}
    before = tiny.active_config
    with pytest.raises(GenomeError, match=gene.replace(".", r"\.")):
        tiny.set_active(cfg)
    assert tiny.active_config == before


def test_set_active_missing_gene(tiny: Supernet) -> None:
    cfg = tiny.space.decode(tiny.space.largest())
    del cfg["s2.b1.e"]
    with pytest.raises(GenomeError, match=r"s2\.b1\.e"):
        tiny.set_active(cfg)


def test_elastic_bn_matches_torch_bn_on_slice() -> None:
    torch.manual_seed(0)
    ebn, ref = ElasticBatchNorm2d(8, momentum=None), nn.BatchNorm2d(5, momentum=None)
    with torch.no_grad():
        ebn.weight.normal_()
        ref.weight.copy_(ebn.weight[:5])
    for _ in range(3):
        x = torch.randn(4, 5, 3, 3)
        assert torch.allclose(ebn(x), ref(x), atol=1e-6)
    assert torch.allclose(ebn.running_mean[:5], ref.running_mean)
    assert torch.allclose(ebn.running_var[:5], ref.running_var)
    assert torch.equal(ebn.running_mean[5:], torch.zeros(3))
    assert torch.equal(ebn.running_var[5:], torch.ones(3))
    assert int(ebn.num_batches_tracked) == int(ref.num_batches_tracked) == 3
    ebn.eval()
    ref.eval()
    x = torch.randn(2, 5, 3, 3)
    assert torch.allclose(ebn(x), ref(x), atol=1e-6)


def test_recalibrate_is_cumulative_and_restores_state() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm2d(3, momentum=0.1)).eval()
    batches = [torch.randn(8, 3, 4, 4) * (i + 1) + i for i in range(4)]
    assert recalibrate_bn(model, batches) == 4
    bn = model[0]
    means = torch.stack([b.mean((0, 2, 3)) for b in batches]).mean(0)
    vars_ = torch.stack([b.transpose(0, 1).reshape(3, -1).var(1) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean, means, atol=1e-5)
    assert torch.allclose(bn.running_var, vars_, atol=1e-4)
    assert bn.momentum == 0.1 and not model.training and not bn.training
    model.train()
    recalibrate_bn(model, iter((b, None) for b in batches), max_batches=2)
    assert model.training and int(bn.num_batches_tracked) == 2
    with pytest.raises(DataError):
        recalibrate_bn(model, [])


def test_recalibrate_supernet_and_extracted_agree() -> None:
    torch.manual_seed(0)
    net = Supernet("tiny")
    _scramble_bn(net, 2)
    net.eval()
    cfg = net.space.decode(net.space.sample(1, 7)[0])
    net.set_active(cfg)
    sub = net.extract(cfg).eval()
    batches = [_input(net, cfg, 16) for _ in range(3)]
    x = _input(net, cfg, 4)
    with torch.no_grad():
        stale = net(x)
    recalibrate_bn(net, batches)
    recalibrate_bn(sub, batches)
    with torch.no_grad():
        fresh = net(x)
        assert torch.allclose(fresh, sub(x), atol=1e-5)
    assert not torch.allclose(stale, fresh, atol=1e-3)
    assert not net.training
    assert all(bn.momentum == 0.1 for bn in _bn_modules(net))
    stem_in = torch.stack([net.stem[0](b).mean((0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(net.stem[1].running_mean, stem_in.detach(), atol=1e-5)


def test_resize() -> None:
    x = torch.randn(2, 1, 8, 8)
    assert resize(x, 8) is x
    assert resize(x, 12).shape == (2, 1, 12, 12)


def test_deepcopy_keeps_slots() -> None:
    net = Supernet("tiny")
    clone = copy.deepcopy(net)
    clone.set_smallest()
    cfg = clone.active_config
    x = _input(clone, cfg)
    assert clone(x).shape == (2, 10)
    assert net.active_config == net.space.decode(net.space.largest())
