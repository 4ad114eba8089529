"""Datasets as in-memory tensors with seeded, stratified train/val/test splits.

The bundled scikit-learn digits (1,797 8x8 images) are the offline default; ``digits_hard`` is a
harder offline variant for measuring ranking fidelity (see :func:`load_digits_hard`). MNIST,
FashionMNIST and CIFAR-10 come through torchvision from a local folder; nothing downloads unless
asked. CIFAR-10 carries the standard augmentation (random crop with 4-pixel padding + horizontal
flip), which the trainer applies per batch on tensors (:class:`Augment`).
Everything is held as float tensors because these sets are small and supernet evaluation reads
the same images many times (re-calibration + validation for every architecture).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from evo_nas.errors import DataError

__all__ = ["Augment", "Split", "Dataset", "load_dataset", "load_digits_hard", "DATASETS",
           "batches", "calibration_images"]

# What torchvision expects below --data-dir, for the error message when it is missing.
_EXPECTED = {
    "mnist": "MNIST/raw/{train,t10k}-images-idx3-ubyte (+ labels)",
    "fashion_mnist": "FashionMNIST/raw/{train,t10k}-images-idx3-ubyte (+ labels)",
    "cifar10": "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
}
DATASETS = ("digits", "digits_hard", *_EXPECTED)


@dataclass
class Split:
    """Images ``x`` (N, C, H, W) float32, normalised; labels ``y`` (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Augment:
    """Per-batch training augmentation on tensors: random crop after ``pad`` pixels of zero
    padding (a random shift), horizontal flip with probability 1/2, a random rotation of up to
    ``rotate`` degrees either way, additive Gaussian noise of standard deviation ``noise``
    (normalised units). Draws only from the generator it is given, so a seeded (or resumed) run
    augments identically."""

    pad: int = 0
    flip: bool = False
    rotate: float = 0.0
    noise: float = 0.0

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.rotate > 0:
            angle = (torch.rand(n, generator=generator) * 2 - 1) * self.rotate * torch.pi / 180
            cos, sin = torch.cos(angle), torch.sin(angle)
            zero = torch.zeros(n)
            theta = torch.stack([torch.stack([cos, -sin, zero], 1),
                                 torch.stack([sin, cos, zero], 1)], 1)
            grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
            x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", align_corners=False)
        if self.pad > 0:
            p = self.pad
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (n,), generator=generator)
            dx = torch.randint(0, 2 * p + 1, (n,), generator=generator)
            rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
            chans = torch.arange(x.shape[1])[None, :, None, None]
            x = padded[torch.arange(n)[:, None, None, None], chans, rows, cols]
        if self.flip:
            mask = torch.rand(n, generator=generator) < 0.5
            x = torch.where(mask[:, None, None, None], x.flip(-1), x)
        if self.noise > 0:
            x = x + self.noise * torch.randn(x.shape, generator=generator)
        return x


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    in_channels: int
    num_classes: int
    image_size: int
    augment: Augment | None = None


def batches(
    split: Split, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of a split (a seeded permutation when shuffling)."""
    n = len(split)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i:i + batch_size]
        yield split.x[idx], split.y[idx]


def calibration_images(data: Dataset, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` fixed training images for BN re-calibration, seen the way training saw them.

    Re-calibrated statistics must describe the images the network trained on: with a dataset
    augmentation (noise, rotation, crops) they are drawn through it, once, from a seeded
    generator. On ``digits_hard``, re-calibrating on the clean images instead raised the
    stand-alone validation loss from 0.44 to 0.60 and made supernet ranks noisier (see the
    fidelity benchmark's notes)."""
    n = min(n, len(data.train))
    pick = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))[:n]
    x = data.train.x[pick]
    if data.augment is not None:
        x = data.augment(x, torch.Generator().manual_seed(seed + 1))
    return x


def _stratified(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    return train_test_split(x, y, test_size=fraction, stratify=y, random_state=seed)


def _normalise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    # per-channel statistics of the training split only
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    std = train.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def _make(name: str, xtr, ytr, xva, yva, xte, yte, num_classes: int) -> Dataset:
    xtr, xva, xte = _normalise(xtr, xva, xte)
    t = lambda x, y: Split(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)))  # noqa: E731
    return Dataset(name, t(xtr, ytr), t(xva, yva), t(xte, yte), xtr.shape[1], num_classes,
                   xtr.shape[-1])


def load_digits_dataset(seed: int = 0, val_fraction: float = 0.2,
                        test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8x8 digits, split 60/20/20 (stratified, seeded)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target
    x_rest, x_te, y_rest, y_te = _stratified(x, y, test_fraction, seed)
    x_tr, x_va, y_tr, y_va = _stratified(x_rest, y_rest, val_fraction / (1 - test_fraction), seed)
    return _make("digits", x_tr, y_tr, x_va, y_va, x_te, y_te, 10)


# The harder digits setting of the fidelity benchmark (documented in load_digits_hard).
HARD_DIGITS: dict[str, float] = {"train_size": 1000, "val_fraction": 0.5, "pad": 1,
                                 "rotate": 30.0, "noise": 0.5}


def load_digits_hard(seed: int = 0, train_size: int = int(HARD_DIGITS["train_size"]),
                     val_fraction: float = HARD_DIGITS["val_fraction"],
                     pad: int = int(HARD_DIGITS["pad"]), rotate: float = HARD_DIGITS["rotate"],
                     noise: float = HARD_DIGITS["noise"]) -> Dataset:
    """Digits made hard enough that sub-networks differ by more than seed noise.

    Plain digits puts every sub-network at 97-99.7 % accuracy (one validation image is 0.28 %),
    so accuracy ranks are noise. Here every image is shifted by up to ``pad`` pixels, rotated by
    up to ``rotate`` degrees and covered in Gaussian noise (``noise``, normalised units): training
    images afresh in every batch (:class:`Augment`), validation and test images once, with a
    fixed seeded draw. ``train_size`` images train; ``val_fraction`` of the rest validate (a
    large split, so one image is worth little) and the remainder test.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target
    x_tr, x_rest, y_tr, y_rest = train_test_split(x, y, train_size=train_size, stratify=y,
                                                  random_state=seed)
    x_va, x_te, y_va, y_te = train_test_split(x_rest, y_rest, train_size=val_fraction,
                                              stratify=y_rest, random_state=seed)
    ds = _make("digits_hard", x_tr, y_tr, x_va, y_va, x_te, y_te, 10)
    ds.augment = Augment(pad=pad, rotate=rotate, noise=noise)
    fixed = torch.Generator().manual_seed(seed + 7919)
    ds.val = Split(ds.augment(ds.val.x, fixed), ds.val.y)
    ds.test = Split(ds.augment(ds.test.x, fixed), ds.test.y)
    return ds


def _torchvision(name: str, data_dir: Path, download: bool, seed: int, val_fraction: float,
                 max_train: int | None) -> Dataset:
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST,
           "fashion_mnist": torchvision.datasets.FashionMNIST,
           "cifar10": torchvision.datasets.CIFAR10}[name]
    if not download and not data_dir.is_dir():
        raise DataError(
            f"data_dir {str(data_dir)!r} does not exist; dataset {name!r} expects "
            f"{_EXPECTED[name]} below it (pass --download to fetch it)"
        )
    try:
        tr = cls(str(data_dir), train=True, download=download)
        te = cls(str(data_dir), train=False, download=download)
    except (RuntimeError, OSError) as e:
        raise DataError(
            f"dataset {name!r} not found or unreadable in {str(data_dir)!r}: expected "
            f"{_EXPECTED[name]} ({e})"
        ) from None

    def arrays(ds) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(ds.data)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return x.astype(np.float32) / 255.0, np.asarray(ds.targets)

    x, y = arrays(tr)
    x_te, y_te = arrays(te)
    x_tr, x_va, y_tr, y_va = _stratified(x, y, val_fraction, seed)
    if max_train is not None and max_train < len(y_tr):
        x_tr, _, y_tr, _ = train_test_split(x_tr, y_tr, train_size=max_train, stratify=y_tr,
                                            random_state=seed)
    ds = _make(name, x_tr, y_tr, x_va, y_va, x_te, y_te, 10)
    if name == "cifar10":
        ds.augment = Augment(pad=4, flip=True)
    return ds


def load_dataset(name: str = "digits", data_dir: str | Path | None = None, download: bool = False,
                 seed: int = 0, val_fraction: float = 0.2,
                 max_train: int | None = None) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`) with a seeded stratified validation split."""
    if name not in DATASETS:
        raise DataError(f"dataset {name!r} is unknown: choose one of {list(DATASETS)}")
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction = {val_fraction} must lie strictly between 0 and 1")
    if name == "digits_hard":
        return load_digits_hard(seed=seed, **({"train_size": max_train} if max_train else {}))
    if name == "digits":
        ds = load_digits_dataset(seed=seed, val_fraction=val_fraction)
        if max_train is not None and max_train < len(ds.train):
            keep = torch.randperm(len(ds.train), generator=torch.Generator().manual_seed(seed))
            keep = keep[:max_train]
            ds.train = Split(ds.train.x[keep], ds.train.y[keep])
        return ds
    if data_dir is None:
        raise DataError(f"dataset {name!r} needs data_dir (a local folder with {_EXPECTED[name]})")
    return _torchvision(name, Path(data_dir), download, seed, val_fraction, max_train)
