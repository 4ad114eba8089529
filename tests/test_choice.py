"""The choice-block supernet: extraction, exact costs, settings round trip, FairNAS fairness."""

from __future__ import annotations

import copy
import itertools
import json
import pickle
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import scramble_bn
from torch import nn

from evo_nas.costs import count_with_hooks
from evo_nas.errors import CheckpointError, ConfigError
from evo_nas.nn import ChoiceSupernet
from evo_nas.nn.choice import ChoiceCosts, spos_supernet
from evo_nas.nn.protocol import WeightSharingSupernet, build_supernet
from evo_nas.train.samplers import FairSampler, SandwichSampler


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


def _user_net(c: int = 4) -> ChoiceSupernet:
    """A builder-less net from inline candidates, listed in no particular cost order."""
    def layer() -> dict:
        return {"conv3": lambda: _conv(c, c, 3), "skip": nn.Identity,
                "conv5": lambda: _conv(c, c, 5),
                "dw3": lambda: nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, groups=c), nn.ReLU())}

    torch.manual_seed(0)
    return ChoiceSupernet([layer(), list(layer().items()), layer()], stem=_conv(1, c, 3),
                          input_shape=(1, 6, 6), num_classes=5, names=["a", "b", "c"])


@pytest.fixture(scope="module")
def spos() -> ChoiceSupernet:
    torch.manual_seed(0)
    net = spos_supernet(num_layers=3, channels=8, image_size=8, downsample_at=1)
    scramble_bn(net)
    return net


def test_space_follows_the_layers(spos):
    assert isinstance(spos, WeightSharingSupernet)
    assert spos.space.names == ["l0", "l1", "l2"]
    assert spos.space["l0"].options == ("conv3x3", "conv5x5", "dwsep3x3", "mbconv3_e3", "skip")
    assert "skip" not in spos.space["l1"].options  # the stride-2 layer cannot skip
    assert spos.input_shape(spos.space.decode(spos.space.smallest())) == (1, 8, 8)
    user = _user_net()
    assert user.space.names == ["a", "b", "c"]
    assert user.space["b"].options == ("conv3", "skip", "conv5", "dw3")  # the user's order
    assert (user.in_channels, user.num_classes) == (1, 5)


def test_extract_equals_supernet_and_costs_are_exact(spos):
    net = spos.eval()
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    configs = net.space.decode_many(net.space.sample(24, rng=0))
    assert len({tuple(c.values()) for c in configs}) >= 20
    for cfg in configs:
        net.set_active(cfg)
        with torch.no_grad():
            want = net(x)
        sub = net.extract(cfg)
        assert isinstance(sub, nn.Sequential) and not sub.training
        assert not any(m.training for m in sub.modules())
        with torch.no_grad():
            assert torch.allclose(sub(x), want, atol=1e-6), cfg
        assert net.costs(cfg) == count_with_hooks(sub, net.input_shape(cfg)), cfg
        assert sub.config == cfg
    # copies share no storage with the supernet, and extraction leaves the active config alone
    net.set_active(configs[0])
    sub = net.extract(configs[1])
    assert net.active_config == configs[0]
    ptrs = {p.data_ptr() for p in net.parameters()} | {b.data_ptr() for b in net.buffers()}
    assert not ptrs & ({p.data_ptr() for p in sub.parameters()}
                       | {b.data_ptr() for b in sub.buffers()})
    assert net.extract().config == configs[0]  # default: the active config


def test_extract_copies_train_mode():
    net = _user_net().train()
    sub = net.extract(net.space.decode(net.space.sample(1, rng=0)[0]))
    assert sub.training and all(m.training for m in sub.modules())


def test_cost_function_is_picklable_and_torch_free(spos):
    fn = spos.space.meta["costs"]
    assert isinstance(fn, ChoiceCosts)
    again = pickle.loads(pickle.dumps(fn))
    cfg = spos.space.decode(spos.space.largest())
    assert again(cfg) == fn(cfg) == spos.costs(cfg)
    assert all(isinstance(v, int) for cands in fn.table.values() for c in cands.values()
               for v in c)


def test_sandwich_trains_the_cost_extremes():
    net = _user_net()
    space = net.space
    every = [dict(zip(space.names, combo, strict=True))
             for combo in itertools.product(*(c.options for c in space.choices))]
    costs = [net.costs(c) for c in every]
    largest, smallest = SandwichSampler(n_random=0)(space, np.random.default_rng(0))
    assert net.costs(space.decode(largest)) == max(costs)
    assert net.costs(space.decode(smallest)) == min(costs)
    assert space.decode(largest) == {"a": "conv5", "b": "conv5", "c": "conv5"}
    assert space.decode(smallest) == {"a": "skip", "b": "skip", "c": "skip"}
    net.set_largest()
    assert net.active_config == space.decode(largest)


def test_shape_mismatch_names_layer_candidate_and_shapes():
    layers = [{"c3": lambda: _conv(4, 4, 3)},
              {"c3": lambda: _conv(4, 4, 3), "down": lambda: _conv(4, 4, 3, stride=2)}]
    with pytest.raises(ConfigError) as e:
        ChoiceSupernet(layers, stem=_conv(1, 4, 3), input_shape=(1, 8, 8), num_classes=3)
    msg = str(e.value)
    assert "'l1'" in msg and "'down'" in msg and "'c3'" in msg
    assert "(4, 4, 4)" in msg and "(4, 8, 8)" in msg


def test_construction_errors_are_clear():
    stem = _conv(1, 4, 3)
    with pytest.raises(ConfigError, match="layer 'l0' candidate 'bad' fails on input shape"):
        ChoiceSupernet([{"ok": lambda: _conv(4, 4, 3), "bad": lambda: _conv(3, 4, 3)}],
                       stem=stem, input_shape=(1, 8, 8), num_classes=3)
    with pytest.raises(ConfigError, match=r"logits of shape \(3,\)"):
        ChoiceSupernet([{"ok": lambda: _conv(4, 4, 3)}], stem=_conv(1, 4, 3),
                       head=nn.Sequential(nn.Flatten(), nn.Linear(256, 7)),
                       input_shape=(1, 8, 8), num_classes=3)
    shared = _conv(4, 4, 3)
    with pytest.raises(ConfigError, match="same module instance"):
        ChoiceSupernet([{"a": lambda: shared}, {"a": lambda: shared}], stem=_conv(1, 4, 3),
                       input_shape=(1, 8, 8), num_classes=3)
    with pytest.raises(ConfigError, match="repeats candidate names"):
        ChoiceSupernet([[("a", nn.Identity), ("a", nn.Identity)]], stem=_conv(1, 4, 3),
                       input_shape=(1, 8, 8), num_classes=3)


def test_settings_round_trip_with_builder(spos):
    settings = spos.settings()
    assert settings["kind"] == "choice" and settings["builder"] == "evo_nas.nn.choice:spos_supernet"
    rebuilt = build_supernet(json.loads(json.dumps(settings)))
    assert isinstance(rebuilt, ChoiceSupernet)
    assert rebuilt.settings() == settings
    assert rebuilt.space.choices == spos.space.choices
    assert rebuilt.space.meta["costs"] == spos.space.meta["costs"]
    rebuilt.load_state_dict(spos.state_dict())  # strict: same modules, same shapes
    cfg = spos.space.decode(spos.space.sample(1, rng=3)[0])
    x = torch.randn(2, 1, 8, 8)
    spos.eval().set_active(cfg)
    rebuilt.eval().set_active(cfg)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), spos(x))


def test_builderless_settings_say_how_to_load():
    net = _user_net()
    settings = net.settings()
    assert settings == {"kind": "choice", "genes": {
        n: ["conv3", "skip", "conv5", "dw3"] for n in ("a", "b", "c")}}
    json.dumps(settings)
    with pytest.raises(CheckpointError, match="build the supernet yourself"):
        build_supernet(settings)


def _count_calls(net: ChoiceSupernet) -> tuple[Counter, list]:
    calls: Counter = Counter()
    hooks = [mod.register_forward_hook(lambda *_, key=(layer, c): calls.update([key]))
             for layer in net.names for c, mod in net.candidates(layer).items()]
    return calls, hooks


def test_fair_sampler_uses_every_candidate_once_per_step():
    torch.manual_seed(0)
    net = spos_supernet(num_layers=3, channels=4, image_size=6,
                        ops=("conv3x3", "dwsep3x3", "mbconv3_e3", "skip"))
    m = 4
    x = torch.randn(2, 1, 6, 6)
    calls, hooks = _count_calls(net)
    rng = np.random.default_rng(0)
    for _ in range(3):
        calls.clear()
        paths = net.space.decode_many(FairSampler()(net.space, rng))
        assert len(paths) == m
        for cfg in paths:
            net.set_active(cfg)
            net(x)
        assert calls == {(layer, c): 1 for layer in net.names for c in net.candidates(layer)}
    for h in hooks:
        h.remove()


def test_fair_sampler_balances_unequal_layers():
    torch.manual_seed(0)
    net = spos_supernet(num_layers=3, channels=4, image_size=6, downsample_at=1)  # 5, 4, 5
    calls, hooks = _count_calls(net)
    x = torch.randn(1, 1, 6, 6)
    rng = np.random.default_rng(1)
    for _ in range(5):
        calls.clear()
        paths = net.space.decode_many(FairSampler()(net.space, rng))
        assert len(paths) == 5
        for cfg in paths:
            net.set_active(cfg)
            net(x)
        for layer in net.names:
            counts = [calls[(layer, c)] for c in net.candidates(layer)]
            assert min(counts) >= 1 and max(counts) - min(counts) <= 1, (layer, counts)
            assert sum(counts) == 5
        assert all(calls[("l0", c)] == 1 for c in net.candidates("l0"))
    for h in hooks:
        h.remove()


def test_fair_step_accumulates_grads_and_updates_every_candidate():
    torch.manual_seed(0)
    net = spos_supernet(num_layers=2, channels=4, image_size=6, num_classes=3,
                        ops=("conv3x3", "conv5x5", "dwsep3x3", "mbconv3_e3")).train()
    x, y = torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,))
    paths = net.space.decode_many(FairSampler()(net.space, np.random.default_rng(0)))

    def loss_of(cfg: dict) -> torch.Tensor:
        net.set_active(cfg)
        return F.cross_entropy(net(x), y)

    # each path's gradient alone, then the step's accumulated gradient
    single = []
    for cfg in paths:
        net.zero_grad(set_to_none=True)
        loss_of(cfg).backward()
        single.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    opt.zero_grad(set_to_none=True)
    for cfg in paths:
        loss_of(cfg).backward()
    for n, p in net.named_parameters():
        assert p.grad is not None, f"{n} got no gradient in a fair step"
        want = sum(g[n] for g in single if n in g)
        assert torch.allclose(p.grad, want, atol=1e-6), n
        # a candidate's parameter is trained by exactly one of the m paths
        if n.startswith("choices."):
            assert sum(n in g for g in single) == 1, n
    before = copy.deepcopy(net.state_dict(keep_vars=False))
    opt.step()
    for layer in net.names:
        for c, mod in net.candidates(layer).items():
            for pn, p in mod.named_parameters():
                idx = net.names.index(layer)
                j = list(net.candidates(layer)).index(c)
                old = before[f"choices.{idx}.{j}.{pn}"]
                assert not torch.equal(p.detach(), old), f"{layer}/{c}/{pn} was not updated"


def test_checkpoint_round_trip(spos, tmp_path):
    from evo_nas.train import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "spos.pt", spos)
    loaded, _ = load_checkpoint(path)
    cfg = spos.space.decode(spos.space.sample(1, rng=5)[0])
    x = torch.randn(2, 1, 8, 8)
    spos.eval().set_active(cfg)
    loaded.eval().set_active(cfg)
    with torch.no_grad():
        assert torch.allclose(loaded(x), spos(x))
    user = _user_net()
    path = save_checkpoint(tmp_path / "user.pt", user)
    with pytest.raises(CheckpointError, match="build the supernet yourself"):
        load_checkpoint(path)
    assert load_checkpoint(path, supernet=_user_net())[0].settings() == user.settings()


def test_trains_and_evaluates_through_the_protocol(digits):
    """The trainer and SupernetAccuracy see only the protocol: 8 px digits are resized to 16."""
    from evo_nas.objectives import SupernetAccuracy
    from evo_nas.train import TrainConfig, train_supernet

    torch.manual_seed(0)
    net = spos_supernet(num_layers=2, channels=4, image_size=16, downsample_at=0)
    log = train_supernet(net, digits, TrainConfig(epochs=1, sampler="fair", distill=False))
    assert np.isfinite(log[0]["loss"])
    acc = SupernetAccuracy(net, digits, calib_images=100)
    err = acc(net.space.decode_many(net.space.sample(2, rng=0)))["error"]
    assert err.shape == (2,) and np.all((err >= 0) & (err <= 100))
