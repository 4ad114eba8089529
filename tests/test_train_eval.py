"""Supernet training, BN re-calibration and checkpoints on the real digits data."""

import numpy as np
import pytest
import torch

from evo_nas.errors import CheckpointError, ConfigError
from evo_nas.nn import resize
from evo_nas.objectives import SupernetAccuracy
from evo_nas.train import TrainConfig, load_checkpoint, train_supernet


def test_digits_split_is_stratified_seeded_and_disjoint(digits):
    from evo_nas.data import load_dataset

    again = load_dataset("digits", seed=0)
    assert torch.equal(digits.train.x, again.train.x)
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    counts = np.bincount(digits.val.y.numpy(), minlength=10)
    assert counts.min() >= 33 and counts.max() <= 38
    other = load_dataset("digits", seed=1)
    assert not torch.equal(digits.val.x, other.val.x)


def test_trained_supernet_scores_well_after_recalibration(trained_tiny, digits):
    net, _ = trained_tiny
    acc = SupernetAccuracy(net, digits)
    space = net.space
    largest = acc.evaluate(space.decode(space.largest()))[0]
    smallest = acc.evaluate(space.decode(space.smallest()))[0]
    assert largest >= 90.0, largest
    assert smallest >= 80.0, smallest


def test_momentum_recalibration_collapses_cumulative_does_not(trained_tiny, digits):
    """Re-estimating BN stats with the default 0.1 momentum over a few batches keeps most of the
    reset values (mean 0, var 1) and wrecks accuracy; the cumulative average does not."""
    net, _ = trained_tiny
    space = net.space
    config = space.decode(space.smallest())
    acc = SupernetAccuracy(net, digits, calib_images=500)
    good = acc.evaluate(config)[0]
    net.set_active(config)
    x = resize(digits.train.x[:500], config["res"])
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = 0.1
    net.train()
    with torch.no_grad():
        for chunk in x.split(250):
            net(chunk)
    net.eval()
    with torch.no_grad():
        logits = net(resize(digits.val.x, config["res"]))
    bad = 100.0 * float((logits.argmax(1) == digits.val.y).float().mean())
    assert good > 85.0 and bad < good - 30.0, (good, bad)


def test_supernet_and_extracted_subnet_score_the_same(trained_tiny, digits):
    from evo_nas.nn import recalibrate_bn

    net, _ = trained_tiny
    space = net.space
    acc = SupernetAccuracy(net, digits)
    for x in space.sample(3, 7):
        config = space.decode(x)
        shared = acc.evaluate(config)[0]
        sub = net.extract(config)
        recalibrate_bn(sub, [resize(c, config["res"]) for c in acc.calib.split(250)])
        sub.eval()
        with torch.no_grad():
            pred = sub(resize(digits.val.x, config["res"])).argmax(1)
        static = 100.0 * float((pred == digits.val.y).float().mean())
        assert static == pytest.approx(shared, abs=0.3)


def test_training_is_deterministic_for_a_seed(digits):
    from evo_nas.data import Split, load_dataset
    from evo_nas.nn import Supernet

    small = load_dataset("digits", seed=0, max_train=128)
    small.val = Split(small.val.x[:50], small.val.y[:50])
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        net = Supernet("tiny")
        log = train_supernet(net, small, TrainConfig(epochs=1, batch_size=64, seed=5))
        outs.append((log[-1]["loss"], net.classifier.weight.detach().clone()))
    assert outs[0][0] == outs[1][0]
    assert torch.equal(outs[0][1], outs[1][1])


def test_train_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="train.sampler = 'fare'"):
        TrainConfig(sampler="fare").validate()
    with pytest.raises(ConfigError, match=r"train.epochs = 0"):
        TrainConfig(epochs=0).validate()


def test_checkpoint_round_trip_and_corruption(trained_tiny, tmp_path):
    from evo_nas.train import save_checkpoint

    net, _ = trained_tiny  # shared fixture: other tests re-calibrate its BN, so save it afresh
    path = save_checkpoint(tmp_path / "now.pt", net, {"note": "x"})
    loaded, meta = load_checkpoint(path)
    assert meta == {"note": "x"}
    space = net.space
    config = space.decode(space.sample(1, 3)[0])
    x = torch.randn(4, 1, config["res"], config["res"])
    for m in (net, loaded):
        m.set_active(config)
        m.eval()
    assert torch.allclose(net(x), loaded(x), atol=1e-6)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated.pt' is corrupt"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt' is corrupt"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="has format None"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_calibration_images_are_fixed_and_seen_through_the_training_augmentation():
    from evo_nas.data import calibration_images, load_dataset

    hard = load_dataset("digits_hard", seed=0)
    a, b = calibration_images(hard, 50, seed=3), calibration_images(hard, 50, seed=3)
    assert a.shape == (50, 1, 8, 8) and torch.equal(a, b)
    # the same picks as the raw images, but shifted/rotated/noised like the training batches
    pick = torch.randperm(len(hard.train), generator=torch.Generator().manual_seed(3))[:50]
    raw = hard.train.x[pick]
    assert not torch.allclose(a, raw)
    assert (a - raw).std() > 0.3  # noise of sd 0.5 on top of rotations and shifts
    plain = load_dataset("digits", seed=0)
    assert plain.augment is None
    pick = torch.randperm(len(plain.train), generator=torch.Generator().manual_seed(3))[:50]
    assert torch.equal(calibration_images(plain, 50, seed=3), plain.train.x[pick])
    assert len(calibration_images(plain, 10**6)) == len(plain.train)
