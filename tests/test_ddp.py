"""Data-parallel supernet training on CPU: gloo, 2 processes (spawn and torchrun)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from evo_nas.train import TrainConfig, spawn, train_supernet

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is needed")

N_TRAIN, EPOCHS = 384, 3


def _data():
    from evo_nas.data import load_dataset

    return load_dataset("digits", seed=0, max_train=N_TRAIN)


def _cfg() -> TrainConfig:
    return TrainConfig(epochs=EPOCHS, batch_size=64, seed=0, sampler="sandwich",
                       n_random=0)  # largest + smallest


def _worker(rank: int, out: str) -> None:
    """Every rank starts from different weights on purpose: DDP must broadcast rank 0's."""
    from evo_nas.nn import Supernet

    torch.manual_seed(100 + rank)
    net = Supernet("tiny")
    log = train_supernet(net, _data(), _cfg())
    torch.save({"params": {k: v for k, v in net.named_parameters()}, "log": log},
               Path(out) / f"rank{rank}.pt")


def _accuracy(net, data) -> tuple[float, float]:
    from evo_nas.objectives import SupernetAccuracy

    acc = SupernetAccuracy(net, data, calib_images=300)
    space = net.space
    return (acc.evaluate(space.decode(space.largest()))[0],
            acc.evaluate(space.decode(space.smallest()))[0])


def test_two_gloo_ranks_stay_in_sync_and_match_one_process(tmp_path):
    from evo_nas.nn import Supernet

    spawn(_worker, 2, (str(tmp_path),))
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    # different shards, one all-reduce per step covering every sub-network's gradients: the
    # parameters stay identical even though each step touches different parts of the supernet
    assert r0["params"].keys() == r1["params"].keys()
    for k in r0["params"]:
        assert torch.equal(r0["params"][k], r1["params"][k]), k
    assert r0["log"] == r1["log"]  # losses are all-reduced: one log for the run

    data = _data()
    ddp = Supernet("tiny")
    ddp.load_state_dict(r0["params"], strict=False)  # BN stats are re-calibrated anyway
    torch.manual_seed(100)
    single = Supernet("tiny")
    train_supernet(single, data, _cfg())
    ddp_acc, single_acc = _accuracy(ddp, data), _accuracy(single, data)
    assert ddp_acc[0] >= 70.0 and single_acc[0] >= 70.0, (ddp_acc, single_acc)  # largest
    for a, b in zip(ddp_acc, single_acc, strict=True):
        assert a >= 25.0 and abs(a - b) <= 15.0, (ddp_acc, single_acc)


def test_torchrun_entry_point_trains_and_rank0_saves(tmp_path):
    from evo_nas.train import load_checkpoint

    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "evo_nas.commands.ddp", "--epochs", "1", "--batch-size", "256",
           "--runs-dir", str(tmp_path), "--name", "ddp", "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "supernet trained on 2 process(es)" in proc.stdout
    net, meta = load_checkpoint(tmp_path / "ddp" / "supernet.pt")
    assert meta["world_size"] == 2 and len(meta["train_log"]) == 1
