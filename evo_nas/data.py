"""Datasets as in-memory tensors with seeded, stratified train/val/test splits.

The bundled scikit-learn digits (1,797 8x8 images) are the offline default; ``digits_hard`` is a
harder offline variant for measuring ranking fidelity (see :func:`load_digits_hard`). MNIST,
FashionMNIST and CIFAR-10 come through torchvision from a local folder; nothing downloads unless
asked. CIFAR-10 carries the standard augmentation (random crop with 4-pixel padding + horizontal
flip), which the trainer applies per batch on tensors (:class:`Augment`). ``npz`` reads a user's
own uint8 images from an ``.npz`` file (:func:`load_npz`), validated key by key.
Everything is held as float tensors because these sets are small and supernet evaluation reads
the same images many times (re-calibration + validation for every architecture).
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from evo_nas.errors import DataError

__all__ = ["Augment", "Split", "Dataset", "load_dataset", "load_digits_hard", "load_npz",
           "npz_channels", "DATASETS", "batches", "calibration_images"]

# What torchvision expects below --data-dir, for the error message when it is missing.
_EXPECTED = {
    "mnist": "MNIST/raw/{train,t10k}-images-idx3-ubyte (+ labels)",
    "fashion_mnist": "FashionMNIST/raw/{train,t10k}-images-idx3-ubyte (+ labels)",
    "cifar10": "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
}
DATASETS = ("digits", "digits_hard", *_EXPECTED, "npz")


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


# The keys of an ``npz`` dataset file; the test pair is optional but goes together.
NPZ_KEYS = ("train_images", "train_labels", "test_images", "test_labels")
_NPZ_TEST_FRACTION = 0.2  # carved from train, as digits does, when the file has no test arrays
_COLOUR_AUGMENT_MIN_SIZE = 24  # CIFAR-style crop+flip only makes sense on real-size photos


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _open_npz(path: str | Path) -> np.lib.npyio.NpzFile:
    """The archive at ``path``, checked to be a zip before numpy sees it, because numpy would
    otherwise try (and, with ``allow_pickle=False``, refuse) to unpickle any other file."""
    p = Path(path)
    if not p.is_file():
        what = "is a directory, not a file" if p.is_dir() else "does not exist"
        raise DataError(f"data path {str(p)!r} {what} (dataset 'npz' reads an .npz file)")
    with p.open("rb") as f:
        head = f.read(2)
    if head != b"PK":
        raise DataError(f"data path {str(p)!r} is not an .npz archive (no zip header); save it "
                        "with numpy.savez(path, train_images=..., train_labels=...)")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"data path {str(p)!r} is a corrupt .npz archive: {_first_line(e)}"
                        ) from None


def _npz_get(archive: np.lib.npyio.NpzFile, key: str, path: str | Path) -> np.ndarray:
    try:
        return archive[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{key} in {str(path)!r} cannot be read (corrupt, or a pickled object "
                        f"array): {_first_line(e)}") from None


def _nchw(a: np.ndarray, key: str) -> np.ndarray:
    """``a`` as uint8 (N, C, H, W): 3-D is (N, H, W) grey; 4-D is NCHW when axis 1 looks like
    channels (1, 3 or 4) and the last axis does not, else NHWC."""
    if a.dtype != np.uint8:
        raise DataError(f"{key} has dtype {a.dtype}; expected uint8 (pixel values 0-255)")
    if a.ndim not in (3, 4):
        raise DataError(f"{key} has shape {a.shape}; expected (N, H, W), (N, C, H, W) "
                        "or (N, H, W, C)")
    if a.size == 0:
        raise DataError(f"{key} is empty (shape {a.shape})")
    if a.ndim == 3:
        return a[:, None]
    channels = (1, 3, 4)
    if a.shape[1] in channels and a.shape[-1] not in channels:
        return a
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))  # same sums, bit for bit, as NCHW


def _labels(a: np.ndarray, key: str) -> np.ndarray:
    if not np.issubdtype(a.dtype, np.integer):
        raise DataError(f"{key} has dtype {a.dtype}; expected integer class indices")
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise DataError(f"{key} has shape {a.shape}; expected (N,)")
    if a.size == 0:
        raise DataError(f"{key} is empty (shape {a.shape})")
    if a.min() < 0:
        raise DataError(f"{key} has minimum {a.min()}; class indices must be >= 0")
    return a.astype(np.int64)


def npz_channels(path: str | Path) -> int:
    """Channels of the training images in an ``npz`` dataset file, so a run config can be checked
    against its preset before any training starts."""
    with _open_npz(path) as archive:
        if "train_images" not in archive.files:
            raise DataError(f"train_images missing from {str(path)!r}; it holds "
                            f"{sorted(archive.files)}")
        return int(_nchw(_npz_get(archive, "train_images", path), "train_images").shape[1])


def _read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Validated arrays: images uint8 NCHW, labels int64; test arrays only when present."""
    with _open_npz(path) as archive:
        present = set(archive.files)
        for key in ("train_images", "train_labels"):
            if key not in present:
                raise DataError(f"{key} missing from {str(path)!r}; it holds {sorted(present)}")
        test = {"test_images", "test_labels"} & present
        if len(test) == 1:
            (have,) = test
            other = ({"test_images", "test_labels"} - test).pop()
            raise DataError(f"{have} in {str(path)!r} has no {other}; store both or neither")
        raw = {k: _npz_get(archive, k, path) for k in NPZ_KEYS if k in present}
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        if f"{split}_images" not in raw:
            continue
        ik, lk = f"{split}_images", f"{split}_labels"
        out[ik] = _nchw(raw[ik], ik)
        out[lk] = _labels(raw[lk], lk)
        if len(out[ik]) != len(out[lk]):
            raise DataError(f"{ik} has {len(out[ik])} images but {lk} has {len(out[lk])} labels")
    if "test_images" in out:
        if out["test_images"].shape[1:] != out["train_images"].shape[1:]:
            raise DataError(f"test_images are C/H/W {out['test_images'].shape[1:]} but "
                            f"train_images are {out['train_images'].shape[1:]}")
        num_classes = int(out["train_labels"].max()) + 1
        if out["test_labels"].max() >= num_classes:
            raise DataError(f"test_labels has maximum {out['test_labels'].max()} but "
                            f"train_labels only reach {num_classes - 1} "
                            f"(num_classes = {num_classes})")
    return out


def _split(x: np.ndarray, y: np.ndarray, what: str, seed: int, **sizes: float | int):
    """A seeded stratified split whose failure (a class too rare to stratify) names the cause."""
    try:
        return train_test_split(x, y, stratify=y, random_state=seed, **sizes)
    except ValueError as e:
        size = ", ".join(f"{k} = {v}" for k, v in sizes.items())
        raise DataError(f"cannot carve a stratified {what} split ({size}) from "
                        f"{len(y)} images: {_first_line(e)}") from None


def load_npz(path: str | Path, seed: int = 0, val_fraction: float = 0.2,
             max_train: int | None = None) -> Dataset:
    """A user's own uint8 images from an ``.npz`` file (keys :data:`NPZ_KEYS`).

    Never unpickles. Validation comes out of the training arrays with the same seeded
    stratified split as the torchvision sets; test is the file's test arrays, or (without them)
    carved from train as digits does. Colour images of >= 24 px get CIFAR-10's augmentation."""
    arrays = _read_npz(path)
    x, y = arrays["train_images"], arrays["train_labels"]
    num_classes = int(y.max()) + 1
    if "test_images" in arrays:
        x_te, y_te = arrays["test_images"], arrays["test_labels"]
        x_tr, x_va, y_tr, y_va = _split(x, y, "validation", seed, test_size=val_fraction)
    else:
        if val_fraction >= 1 - _NPZ_TEST_FRACTION:
            raise DataError(f"val_fraction = {val_fraction} leaves no training images: the file "
                            f"has no test arrays, so {_NPZ_TEST_FRACTION} of train_images "
                            "become the test split")
        x, x_te, y, y_te = _split(x, y, "test", seed, test_size=_NPZ_TEST_FRACTION)
        x_tr, x_va, y_tr, y_va = _split(x, y, "validation", seed,
                                        test_size=val_fraction / (1 - _NPZ_TEST_FRACTION))
    if max_train is not None and max_train < len(y_tr):
        x_tr, _, y_tr, _ = _split(x_tr, y_tr, "max_train", seed, train_size=max_train)
    scaled = [a.astype(np.float32) / 255.0 for a in (x_tr, x_va, x_te)]
    ds = _make("npz", scaled[0], y_tr, scaled[1], y_va, scaled[2], y_te, num_classes)
    c, h, w = x_tr.shape[1:]
    if c >= 3 and min(h, w) >= _COLOUR_AUGMENT_MIN_SIZE:
        ds.augment = Augment(pad=4, flip=True)  # as for CIFAR-10
    return ds


def load_dataset(name: str = "digits", data_dir: str | Path | None = None, download: bool = False,
                 seed: int = 0, val_fraction: float = 0.2,
                 max_train: int | None = None, path: str | Path | None = None) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`) with a seeded stratified validation split.

    ``path`` is the ``.npz`` file of dataset ``npz``; ``data_dir`` the torchvision folder."""
    if name not in DATASETS:
        raise DataError(f"dataset {name!r} is unknown: choose one of {list(DATASETS)}")
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction = {val_fraction} must lie strictly between 0 and 1")
    if max_train is not None and (isinstance(max_train, bool) or max_train < 1):
        raise DataError(f"max_train = {max_train!r}: must be >= 1 (training images; None: all)")
    if name == "npz":
        if path is None:
            raise DataError("dataset 'npz' needs the file: pass --data-path FILE (data.path, "
                            "or path= to load_dataset)")
        return load_npz(path, seed=seed, val_fraction=val_fraction, max_train=max_train)
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
