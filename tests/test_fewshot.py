"""Few-shot supernets: one sub-supernet per option of a gene, routed by config, through the
protocol (training, extraction, checkpoints)."""

import numpy as np
import pytest
import torch

from evo_nas.data import load_dataset
from evo_nas.errors import ConfigError
from evo_nas.nn import FewShotSupernet, build_supernet
from evo_nas.nn.nb201 import NB201Supernet
from evo_nas.train import TrainConfig, load_checkpoint, save_checkpoint, train_supernet
from evo_nas.train.samplers import UniformSampler


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _base():
    torch.manual_seed(0)
    return NB201Supernet(C=4, N=1, in_channels=1, image_size=8)


def test_splits_inherit_the_one_shot_weights_and_route_by_option():
    base = _base()
    fs = FewShotSupernet(base, "op3")
    assert len(fs.splits) == 5
    for split in fs.splits:
        for k, v in base.state_dict().items():
            assert torch.equal(split.state_dict()[k], v)
    cfg = fs.space.decode(fs.space.sample(1, 0)[0])
    fs.set_active(cfg)
    assert fs._current is fs.splits[fs.options.index(cfg["op3"])]
    with pytest.raises(ConfigError, match="'op9' is not a gene"):
        FewShotSupernet(base, "op9")


def test_training_updates_only_the_routed_splits_and_extraction_matches(digits, tmp_path):
    fs = FewShotSupernet(_base(), "op3")
    before = [{k: v.clone() for k, v in s.state_dict().items()} for s in fs.splits]
    cfg = TrainConfig(epochs=1, batch_size=256, n_random=1, distill=False)
    train_supernet(fs, digits, cfg, sampler=_OnlyOption("op3", 2))  # op3 = conv1x1 paths only
    changed = [any(not torch.equal(v, s.state_dict()[k]) for k, v in b.items())
               for s, b in zip(fs.splits, before, strict=True)]
    assert changed == [False, False, True, False, False]
    fs.eval()
    x = digits.val.x[:8]
    for c in fs.space.decode_many(fs.space.sample(6, 1)):
        fs.set_active(c)
        with torch.no_grad():
            assert torch.allclose(fs.extract(c).eval()(x), fs(x), atol=1e-5)
    twin = build_supernet(fs.settings())
    assert isinstance(twin, FewShotSupernet) and twin.settings() == fs.settings()
    back, _ = load_checkpoint(save_checkpoint(tmp_path / "fs.pt", fs))
    for k, v in fs.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)


class _OnlyOption:
    """Uniform paths with gene ``gene`` pinned to option index ``k`` (canonical genomes)."""

    def __init__(self, gene, k):
        self.gene, self.k = gene, k

    def __call__(self, space, rng):
        X = space.sample(8, rng)
        X = X[X[:, space.names.index(self.gene)] == self.k]
        return X if len(X) else space.canonical(np.full((1, space.n_var), self.k))


def test_by_class_sampling_draws_each_class_alike():
    space = _base().space
    classes = space.classes()
    assert len(classes) == space.cardinality() == 4930
    G = UniformSampler(n=20000, by_class=True)(space, np.random.default_rng(0))
    assert np.array_equal(space.canonical(G), G)
    keys, counts = np.unique(G, axis=0, return_counts=True)
    assert len(keys) > 4500 and counts.max() < 15  # ~4 draws per class, none dominates
    plain = space.sample(20000, np.random.default_rng(0))
    _, plain_counts = np.unique(plain, axis=0, return_counts=True)
    assert plain_counts.max() > 100  # by genome, the big class of disconnected cells dominates
