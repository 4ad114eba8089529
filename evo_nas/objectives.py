"""Built-in metrics for NASProblem: supernet accuracy after BN re-calibration, analytic costs.

A metric is any callable ``list[config] -> values`` (or ``-> {name: values}``); see
:class:`problems.NASProblem`. These are the ones evo-nas ships.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from evo_nas.data import Dataset, Split, calibration_images
from evo_nas.errors import CheckpointError, ConfigError
from evo_nas.nn.bn import frozen_bn, recalibrate_bn
from evo_nas.nn.protocol import WeightSharingSupernet, prepare_input
from evo_nas.parallel import SpecPickled, spec_digest, worker_device

__all__ = ["SupernetAccuracy", "SupernetMetricSpec", "SupernetAccuracySpec"]


class SupernetAccuracy(SpecPickled):
    """``error`` (100 - accuracy %) and ``loss`` (cross-entropy) of sub-networks, read from the
    shared supernet weights.

    Shared BN statistics belong to no single sub-network, so each one is re-calibrated first:
    running statistics are reset and re-estimated as a cumulative average over the same fixed
    ``calib_images`` training images, drawn through the training augmentation when the dataset
    has one (:func:`~evo_nas.data.calibration_images`). It is a fresh estimate, not a
    0.1-momentum update, which leaves the statistics dominated by whatever ran before. Resized
    images are cached per resolution.
    """

    cheap = False

    def __init__(self, net: WeightSharingSupernet, data: Dataset, split: str = "val",
                 calib_images: int = 500, calib_batch: int = 250, batch_size: int = 1000,
                 device: str = "cpu", seed: int = 0, bn: str = "recalibrate",
                 eval_images: int | None = None) -> None:
        if split not in ("val", "test", "train"):
            raise ConfigError(f"eval.split = {split!r}: choose 'val', 'test' or 'train'")
        if calib_images < 1:
            raise ConfigError(f"eval.calib_images = {calib_images}: must be at least 1")
        if bn not in ("recalibrate", "batch"):
            raise ConfigError(f"eval.bn = {bn!r}: choose 'recalibrate' or 'batch'")
        if eval_images is not None and eval_images < 1:
            raise ConfigError(f"eval.eval_images = {eval_images}: must be at least 1")
        self.bn = bn
        self.net = net.to(device).eval()
        self.device = device
        self.eval_split: Split = getattr(data, split)
        if eval_images is not None:  # the split is already shuffled (stratified) at load time
            self.eval_split = Split(self.eval_split.x[:eval_images],
                                    self.eval_split.y[:eval_images])
        self.calib = calibration_images(data, calib_images, seed)
        self.calib_batch = calib_batch
        self.batch_size = batch_size
        self._resized: dict[tuple[int, ...], tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self._labels: list[torch.Tensor] | None = None

    def inputs(self, config: dict[str, Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Calibration and evaluation batches at the input shape ``config`` asks for (cached)."""
        shape = tuple(self.net.input_shape(config))
        if shape not in self._resized:
            def prep(x: torch.Tensor) -> torch.Tensor:
                return self._to_device(prepare_input(self.net, x, config))

            calib = [prep(c) for c in self.calib.split(self.calib_batch)]
            evals = [prep(x) for x in self.eval_split.x.split(self.batch_size)]
            self._resized[shape] = (calib, evals)
        return self._resized[shape]

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        """On CUDA, copy from pinned memory without blocking, so the copy of the next batch can
        overlap compute (unmeasured here: no GPU in the test machine); on CPU a no-op."""
        if str(self.device).startswith("cuda"):
            return x.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device)

    def labels(self) -> list[torch.Tensor]:
        """Evaluation labels per batch, on the device once (not copied per evaluation)."""
        if self._labels is None:
            self._labels = [self._to_device(y) for y in self.eval_split.y.split(self.batch_size)]
        return self._labels

    @torch.no_grad()
    def evaluate(self, config: dict[str, Any]) -> tuple[float, float]:
        """(accuracy %, mean cross-entropy) of one sub-network."""
        self.net.set_active(config)
        calib, evals = self.inputs(config)
        if self.bn == "recalibrate":
            recalibrate_bn(self.net, calib)
            self.net.eval()
        else:
            self.net.train()  # batch statistics of each evaluation batch; running stats kept
        correct, loss = 0, 0.0
        for x, y in zip(evals, self.labels(), strict=True):
            with frozen_bn(self.net) if self.bn == "batch" else contextlib.nullcontext():
                logits = self.net(x)
            correct += int((logits.argmax(1) == y).sum())
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
        n = len(self.eval_split)
        self.net.eval()
        return 100.0 * correct / n, loss / n

    def __call__(self, configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        acc, loss = zip(*(self.evaluate(c) for c in configs), strict=True) if configs else ((), ())
        acc_arr, loss_arr = np.asarray(acc, dtype=float), np.asarray(loss, dtype=float)
        return {"error": 100.0 - acc_arr, "loss": loss_arr}


@dataclass
class SupernetMetricSpec:
    """How a worker process builds the same supernet-backed metric as the driver: which one
    (``metric``: ``accuracy`` for :class:`SupernetAccuracy`, ``proxy`` for
    :class:`~evo_nas.proxies.ZeroCostProxy`), the checkpoint's path and digest,
    :func:`~evo_nas.data.load_dataset` arguments and the metric's settings. A few hundred bytes,
    sent instead of the model; ``digest`` keys the per-worker cache
    (:func:`evo_nas.parallel.from_spec`). ``device`` ``cuda`` becomes one GPU per worker
    (:func:`evo_nas.parallel.worker_device`)."""

    checkpoint: str
    checkpoint_sha: str
    data: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    metric: str = "accuracy"

    @property
    def digest(self) -> str:
        return spec_digest(asdict(self))

    def build(self) -> Any:
        """Load the checkpoint (refusing a file whose bytes differ from the driver's) and the
        data, as the driver did, and make the metric."""
        import hashlib

        from evo_nas.data import load_dataset
        from evo_nas.train import load_checkpoint

        if self.metric not in ("accuracy", "proxy"):
            raise ConfigError(f"worker spec metric = {self.metric!r}: choose 'accuracy' or "
                              "'proxy'")
        path = Path(self.checkpoint)
        if not path.is_file():
            raise CheckpointError(f"worker: checkpoint {self.checkpoint!r} does not exist here "
                                  "(workers need the driver's files at the same paths)")
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if not h.hexdigest().startswith(self.checkpoint_sha):
            raise CheckpointError(f"worker: checkpoint {self.checkpoint!r} differs from the "
                                  "driver's (another file at the same path)")
        net, _ = load_checkpoint(path)
        data = load_dataset(**self.data)
        device = worker_device(self.device)
        if self.metric == "proxy":
            from evo_nas.proxies import ZeroCostProxy

            metric: Any = ZeroCostProxy(net, data, device=device, **self.options)
        else:
            metric = SupernetAccuracy(net, data, device=device, **self.options)
        metric.worker_spec = self
        return metric


SupernetAccuracySpec = SupernetMetricSpec  # the name before proxies had specs too
