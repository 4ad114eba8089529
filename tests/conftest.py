"""Shared fixtures. Torch runs single-threaded per test worker (pytest-xdist runs two)."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    from evo_nas.data import load_dataset

    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def trained_tiny(digits, tmp_path_factory):
    """A tiny supernet trained briefly on digits, saved as a real checkpoint (shared per worker)."""
    from evo_nas.nn import Supernet
    from evo_nas.train import TrainConfig, save_checkpoint, train_supernet

    torch.manual_seed(0)
    net = Supernet("tiny")
    train_supernet(net, digits, TrainConfig(epochs=5, batch_size=64, sampler="sandwich", seed=0))
    path = tmp_path_factory.mktemp("ckpt") / "supernet.pt"
    save_checkpoint(path, net)
    return net, path
