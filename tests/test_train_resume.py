"""Checkpoint / resume of supernet training, and the CPU side of the mixed-precision path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from evo_nas.errors import CheckpointError
from evo_nas.nn import Supernet
from evo_nas.train import TrainConfig, load_train_state, train_supernet


@pytest.fixture(scope="module")
def tiny_data():
    """digits_hard (it has per-batch augmentation, so its RNG must resume too), 96 images."""
    from evo_nas.data import load_dataset

    return load_dataset("digits_hard", seed=0, max_train=96)


def _train(data, cfg: TrainConfig, **kwargs):
    torch.manual_seed(0)
    net = Supernet("tiny")
    log = train_supernet(net, data, cfg, **kwargs)
    return net, log


def _same_weights(a: Supernet, b: Supernet) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("sampler", ["sandwich", "attentive"])
def test_interrupted_then_resumed_equals_uninterrupted(tiny_data, tmp_path, sampler):
    base = dict(epochs=3, batch_size=48, seed=3, sampler=sampler)
    ref, ref_log = _train(tiny_data, TrainConfig(**base))
    state = tmp_path / "state.pt"
    cfg = TrainConfig(**base, state_path=str(state), resume=True)
    _, first = _train(tiny_data, cfg, stop_after=1)  # "killed" after epoch 1
    assert len(first) == 1 and load_train_state(state)["epoch"] == 1
    resumed, log = _train(tiny_data, cfg)  # a fresh net: everything comes from the state file
    assert log == ref_log
    assert _same_weights(resumed, ref)


def test_state_holds_model_optimizer_schedule_and_every_rng(tiny_data, tmp_path):
    state = tmp_path / "s.pt"
    _train(tiny_data, TrainConfig(epochs=1, batch_size=48, state_path=str(state)))
    st = load_train_state(state)
    assert st["epoch"] == 1 and st["scheduler"]["step"] == 2
    assert "momentum_buffer" in next(iter(st["optimizer"]["state"].values()))
    assert set(st["rng"]) >= {"numpy", "torch_generator", "torch"}
    assert "bit_generator" in st["rng"]["numpy"]  # the numpy Generator state, as JSON


def test_resume_refuses_another_configuration(tiny_data, tmp_path):
    state = tmp_path / "s.pt"
    _train(tiny_data, TrainConfig(epochs=2, batch_size=48, state_path=str(state)), stop_after=1)
    with pytest.raises(CheckpointError, match=r"train.lr = 0.1 \(now 0.05\)"):
        _train(tiny_data, TrainConfig(epochs=2, batch_size=48, lr=0.05, state_path=str(state),
                                      resume=True))


_KILLED = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from evo_nas.data import load_dataset
    from evo_nas.nn import Supernet
    from evo_nas.train import TrainConfig, train_supernet
    data = load_dataset("digits_hard", seed=0, max_train=96)
    torch.manual_seed(0)
    net = Supernet("tiny")
    train_supernet(net, data, TrainConfig(epochs=40, batch_size=48, seed=3,
                                          state_path=sys.argv[1], resume=True))
""")


def test_sigkilled_run_resumes_to_the_same_weights(tiny_data, tmp_path):
    state = tmp_path / "state.pt"
    script = tmp_path / "job.py"
    script.write_text(_KILLED)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, str(script), str(state)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert state.exists(), "the training subprocess never wrote its first state"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = load_train_state(state)["epoch"]  # intact: writes are atomic
    assert 1 <= done < 40
    cfg = dict(batch_size=48, seed=3, epochs=40)
    # finishing all 40 epochs twice would be slow: compare after done + 1 epochs instead
    resumed, _ = _train(tiny_data, TrainConfig(**cfg, state_path=str(state), resume=True),
                        stop_after=done + 1)
    ref, _ = _train(tiny_data, TrainConfig(**cfg), stop_after=done + 1)
    assert _same_weights(resumed, ref)


def test_mixed_precision_is_skipped_cleanly_on_cpu(tiny_data, monkeypatch):
    def no_scaler(*args, **kwargs):
        raise AssertionError("GradScaler must not be built on CPU")

    monkeypatch.setattr(torch.amp, "GradScaler", no_scaler)
    _, with_amp = _train(tiny_data, TrainConfig(epochs=1, batch_size=48, amp=True))
    _, without = _train(tiny_data, TrainConfig(epochs=1, batch_size=48, amp=False))
    assert with_amp == without


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mixed_precision_trains_on_cuda(tiny_data):
    net, log = _train(tiny_data, TrainConfig(epochs=2, batch_size=48, amp=True),
                      device="cuda")
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log)
    assert next(net.parameters()).device.type == "cuda"


def test_crop_and_flip_augmentation_is_a_shifted_mirrored_window():
    from evo_nas.data import Augment

    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8) + 1
    out = Augment(pad=2, flip=True)(x, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        windows = [padded[i, :, r:r + 8, c:c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    again = Augment(pad=2, flip=True)(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # drawn from the given generator only
