"""One conformance suite for every weight-sharing supernet of the protocol.

The same checks run on the elastic MobileNet (tiny), a choice-block supernet (SPOS-style) and a
small NAS-Bench-201 cell supernet: extraction equals the supernet, costs equal an independent hook
count, BN re-calibration, checkpoint and export round trips, samplers, training and evaluation.
"""

import numpy as np
import pytest
import torch

from evo_nas.costs import CostModel, count_with_hooks
from evo_nas.data import load_dataset
from evo_nas.errors import CheckpointError
from evo_nas.export import export_subnet, load_exported
from evo_nas.nn import WeightSharingSupernet, build_supernet, prepare_input, recalibrate_bn
from evo_nas.nn.choice import spos_supernet
from evo_nas.nn.nb201 import NB201Supernet
from evo_nas.nn.supernet import Supernet
from evo_nas.objectives import SupernetAccuracy
from evo_nas.train import TrainConfig, load_checkpoint, save_checkpoint, train_supernet
from evo_nas.train.samplers import make_sampler

KINDS = ["mobilenet", "choice", "nb201"]


def _make(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "mobilenet":
        return Supernet("tiny")
    if kind == "choice":
        return spos_supernet(num_layers=4, channels=8, in_channels=1, num_classes=10,
                             image_size=12)
    return NB201Supernet(C=4, N=1, num_classes=10, in_channels=1, image_size=8)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module", params=KINDS)
def trained(request, digits):
    """Each supernet after one short epoch, so BN statistics and weights are not at init."""
    net = _make(request.param)
    train_supernet(net, digits, TrainConfig(epochs=1, batch_size=128, n_random=1))
    return request.param, net


def _configs(net, n: int, seed: int = 0) -> list[dict]:
    space = net.space
    X = np.vstack([space.smallest(), space.largest(), space.sample(n, seed)])
    return space.decode_many(X)


def _batch(net, config, digits, n: int = 16) -> torch.Tensor:
    return prepare_input(net, digits.val.x[:n], config)


def test_every_supernet_satisfies_the_protocol(trained):
    _, net = trained
    assert isinstance(net, WeightSharingSupernet)
    cfg = net.space.decode(net.space.sample(1, 3)[0])
    net.set_active(cfg)
    assert net.active_config == cfg
    assert len(net.input_shape(cfg)) == 3


def test_extraction_equals_the_supernet_on_random_configs(trained, digits):
    _, net = trained
    net.eval()
    for cfg in _configs(net, 20):
        x = _batch(net, cfg, digits)
        net.set_active(cfg)
        with torch.no_grad():
            ref = net(x)
            sub = net.extract(cfg).eval()
            out = sub(x)
        assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4), cfg
        assert not any(p.data_ptr() == q.data_ptr() for p in sub.parameters()
                       for q in net.parameters()), "extracted weights must be copies"


def test_costs_equal_an_independent_hook_count(trained):
    _, net = trained
    model = CostModel(net.space)
    for cfg in _configs(net, 20, seed=1):
        macs, params = net.costs(cfg)
        assert (macs, params) == count_with_hooks(net.extract(cfg), net.input_shape(cfg)), cfg
        mflops = model([cfg])["flops"][0]
        assert mflops == pytest.approx(macs / 1e6)


def test_extremes_are_the_cheapest_and_dearest_by_cost(trained):
    _, net = trained
    space = net.space
    costs = [net.costs(c)[0] for c in space.decode_many(space.sample(200, 5))]
    lo = net.costs(space.decode(space.smallest()))[0]
    hi = net.costs(space.decode(space.largest()))[0]
    assert lo <= min(costs) and hi >= max(costs)


def test_bn_recalibration_gives_the_subnet_its_own_statistics(trained, digits):
    _, net = trained
    cfg = net.space.decode(net.space.sample(1, 7)[0])
    calib = [prepare_input(net, digits.train.x[i:i + 100], cfg) for i in (0, 100)]
    net.set_active(cfg)
    recalibrate_bn(net, calib)
    sub = net.extract(cfg)
    fresh = net.extract(cfg)
    for m in fresh.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    recalibrate_bn(fresh, calib)
    x = _batch(net, cfg, digits)
    with torch.no_grad():
        assert torch.allclose(sub.eval()(x), fresh.eval()(x), atol=1e-4, rtol=1e-4)


def test_checkpoint_round_trip(trained, digits, tmp_path):
    kind, net = trained
    path = save_checkpoint(tmp_path / "net.pt", net, {"note": kind})
    back, meta = load_checkpoint(path)
    assert meta == {"note": kind} and type(back) is type(net)
    assert back.settings() == net.settings()
    cfg = net.space.decode(net.space.sample(1, 11)[0])
    x = _batch(net, cfg, digits)
    for m in (net, back):
        m.eval()
        m.set_active(cfg)
    with torch.no_grad():  # allclose: training leaves the weights channels-last on CPU
        assert torch.allclose(net(x), back(x), atol=1e-5, rtol=1e-5)


def test_checkpoint_of_another_shape_is_refused(trained, tmp_path):
    kind, net = trained
    path = save_checkpoint(tmp_path / "net.pt", net)
    other = {"mobilenet": lambda: Supernet("cifar"),
             "choice": lambda: spos_supernet(num_layers=3, channels=8, in_channels=1,
                                             image_size=12),
             "nb201": lambda: NB201Supernet(C=8, N=1, in_channels=1, image_size=8)}[kind]()
    with pytest.raises(CheckpointError, match="given supernet is"):
        load_checkpoint(path, supernet=other)


@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_export_round_trip(trained, digits, tmp_path, fmt):
    _, net = trained
    cfg = net.space.decode(net.space.sample(1, 13)[0])
    path = export_subnet(net, cfg, tmp_path / f"sub.{fmt}.pt", format=fmt)
    model = load_exported(path, fmt)
    x = _batch(net, cfg, digits)
    net.eval()
    net.set_active(cfg)
    with torch.no_grad():
        assert torch.allclose(model(x), net(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["uniform", "sandwich", "fair", "flops_bucket", "attentive"])
def test_samplers_draw_valid_canonical_genomes(trained, name):
    _, net = trained
    space = net.space
    sampler = make_sampler(name)
    if name == "attentive":
        sampler.scorer = lambda configs: [net.costs(c)[0] for c in configs]
    rng = np.random.default_rng(0)
    for _ in range(3):
        G = np.atleast_2d(sampler(space, rng))
        assert np.array_equal(space.canonical(G), G)
    if name == "sandwich":
        assert np.array_equal(G[0], space.largest()) and np.array_equal(G[1], space.smallest())


def test_training_changes_weights_and_the_evaluator_scores(digits):
    for kind in KINDS:
        net = _make(kind)
        before = {k: v.clone() for k, v in net.state_dict().items()}
        log = train_supernet(net, digits, TrainConfig(epochs=1, batch_size=256, n_random=1))
        assert np.isfinite(log[0]["loss"])
        changed = sum(not torch.equal(before[k], v) for k, v in net.state_dict().items())
        assert changed > 0, kind
        acc = SupernetAccuracy(net, digits, calib_images=200)
        out = acc(net.space.decode_many(net.space.sample(2, 0)))
        assert out["error"].shape == (2,) and np.all(out["error"] <= 100)


def test_settings_rebuild_the_same_shape(trained):
    _, net = trained
    twin = build_supernet(net.settings())
    assert twin.settings() == net.settings()
    assert {k: v.shape for k, v in twin.state_dict().items()} == \
        {k: v.shape for k, v in net.state_dict().items()}


def test_checkpoints_written_before_the_protocol_still_load(tmp_path):
    """Format 1 (MobileNet spec, no settings) is what run directories of earlier versions hold."""
    torch.manual_seed(0)
    net = Supernet("tiny")
    path = tmp_path / "old.pt"
    torch.save({"format": "evo-nas-supernet/1", "spec": net.spec.to_dict(), "meta": {"a": 1},
                "state_dict": net.state_dict()}, path)
    back, meta = load_checkpoint(path)
    assert meta == {"a": 1} and back.spec == net.spec
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in net.state_dict().items())


def test_batch_statistics_evaluation_leaves_running_stats_alone(digits):
    net = _make("nb201")
    acc = SupernetAccuracy(net, digits, bn="batch", eval_images=100)
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    cfg = net.space.decode(net.space.largest())
    a, loss = acc.evaluate(cfg)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in stats.items())
    assert not net.training  # left in eval mode, as after re-calibration
    net.set_active(cfg)
    net.train()
    x = prepare_input(net, digits.val.x[:100], cfg)
    with torch.no_grad():  # the same forward by hand: train-mode BN on the evaluation batch
        ref = torch.nn.functional.cross_entropy(net(x), digits.val.y[:100]).item()
    assert loss == pytest.approx(ref, rel=1e-5) and 0 <= a <= 100
