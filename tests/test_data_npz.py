"""Dataset ``npz``: a user's own uint8 arrays, every layout, every bad-input message, the CLI path,
and the real CIFAR-10 subset when the shared data folder is there (tests/data_paths.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_paths import cifar_npz

from evo_nas.config import load_config
from evo_nas.data import Augment, load_dataset, load_npz, npz_channels
from evo_nas.errors import ConfigError, DataError


def images(n: int, shape: tuple[int, ...] = (3, 8, 8), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def labels(n: int, classes: int = 3) -> np.ndarray:
    return np.arange(n) % classes  # balanced, so every stratified split is possible


def write(tmp_path: Path, name: str = "d.npz", **arrays: np.ndarray) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


@pytest.fixture
def colour(tmp_path: Path) -> Path:
    """60 train + 15 test colour 8x8 images, NCHW, 3 classes."""
    return write(tmp_path, train_images=images(60), train_labels=labels(60),
                 test_images=images(15, seed=1), test_labels=labels(15))


def test_nchw_file_gives_normalised_splits(colour):
    ds = load_dataset("npz", path=colour, seed=0)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (48, 12, 15)
    assert ds.train.x.shape == (48, 3, 8, 8) and ds.test.x.shape == (15, 3, 8, 8)
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
    assert (ds.name, ds.in_channels, ds.num_classes, ds.image_size) == ("npz", 3, 3, 8)
    assert ds.augment is None  # 8 px is too small for CIFAR's 4-pixel crops
    assert torch.bincount(ds.val.y).tolist() == [4, 4, 4]  # stratified
    mean, std = ds.train.x.mean(dim=(0, 2, 3)), ds.train.x.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(3), atol=1e-5)
    assert torch.allclose(std, torch.ones(3), atol=1e-2)


def test_val_and_test_use_the_training_statistics(colour):
    """Fit the per-channel map from normalised test images back to their pixels: the same map
    must turn the normalised train and val splits back into whole pixels of training images."""
    raw = np.load(colour)
    ds = load_npz(colour, seed=0)
    x_te = ds.test.x.numpy().astype(np.float64)
    r_te = raw["test_images"].astype(np.float64)
    fits = [np.polyfit(x_te[:, c].ravel(), r_te[:, c].ravel(), 1) for c in range(3)]
    train_pixels = {img.tobytes() for img in raw["train_images"]}
    for split in (ds.train, ds.val):
        x = split.x.numpy().astype(np.float64)
        back = np.stack([x[:, c] * s + b for c, (s, b) in enumerate(fits)], 1)
        assert np.abs(back - np.round(back)).max() < 1e-2
        assert all(img.tobytes() in train_pixels for img in np.round(back).astype(np.uint8))


def test_nhwc_and_nchw_give_the_same_dataset(tmp_path, colour):
    raw = np.load(colour)
    nhwc = write(tmp_path, "nhwc.npz",
                 train_images=raw["train_images"].transpose(0, 2, 3, 1),
                 train_labels=raw["train_labels"],
                 test_images=raw["test_images"].transpose(0, 2, 3, 1),
                 test_labels=raw["test_labels"])
    a, b = load_npz(colour, seed=3), load_npz(nhwc, seed=3)
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(a, name).x, getattr(b, name).x)
        assert torch.equal(getattr(a, name).y, getattr(b, name).y)
    assert npz_channels(nhwc) == npz_channels(colour) == 3


def test_grey_3d_arrays_are_one_channel(tmp_path):
    x = images(40, (8, 8))
    grey = write(tmp_path, "grey.npz", train_images=x, train_labels=labels(40, 2))
    with_axis = write(tmp_path, "grey4.npz", train_images=x[:, None], train_labels=labels(40, 2))
    a, b = load_npz(grey), load_npz(with_axis)
    assert a.in_channels == 1 and a.train.x.shape[1:] == (1, 8, 8) and a.num_classes == 2
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.x, b.test.x)
    assert npz_channels(grey) == 1


def test_without_test_arrays_test_is_carved_like_digits(tmp_path):
    path = write(tmp_path, train_images=images(60), train_labels=labels(60))
    ds = load_npz(path, seed=0)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (36, 12, 12)
    assert torch.bincount(ds.test.y).tolist() == [4, 4, 4]
    seen = [tuple(x.flatten().tolist()) for s in (ds.train, ds.val, ds.test) for x in s.x]
    assert len(set(seen)) == 60  # disjoint splits covering every image
    with pytest.raises(DataError, match="val_fraction = 0.8 leaves no training images"):
        load_npz(path, val_fraction=0.8)


def test_splits_are_deterministic_per_seed_and_max_train_honoured(colour):
    a, b, c = load_npz(colour, seed=5), load_npz(colour, seed=5), load_npz(colour, seed=6)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.val.x, c.val.x)
    small = load_dataset("npz", path=colour, seed=5, max_train=30)
    assert len(small.train) == 30 and len(small.val) == 12 and len(small.test) == 15
    assert torch.bincount(small.train.y).tolist() == [10, 10, 10]


def test_augmentation_only_for_colour_images_of_24_px(tmp_path):
    def aug(shape):
        path = write(tmp_path, f"a{len(shape)}{shape[0]}.npz", train_images=images(30, shape),
                     train_labels=labels(30))
        return load_npz(path).augment

    assert aug((3, 24, 24)) == Augment(pad=4, flip=True)
    assert aug((1, 24, 24)) is None
    assert aug((24, 24)) is None


def _case(tmp_path: Path, kind: str) -> Path:
    x, y = images(60), labels(60)
    t = {"test_images": images(15, seed=1), "test_labels": labels(15)}
    cases = {
        "no_labels": {"train_images": x},
        "no_images": {"train_labels": y},
        "test_images_alone": {"train_images": x, "train_labels": y,
                              "test_images": t["test_images"]},
        "test_labels_alone": {"train_images": x, "train_labels": y,
                              "test_labels": t["test_labels"]},
        "lengths": {"train_images": x, "train_labels": y[:59]},
        "test_lengths": {"train_images": x, "train_labels": y, **t, "test_labels": labels(14)},
        "float_images": {"train_images": x.astype(np.float32), "train_labels": y},
        "float_labels": {"train_images": x, "train_labels": y.astype(np.float64)},
        "negative": {"train_images": x, "train_labels": y - 1},
        "test_out_of_range": {"train_images": x, "train_labels": y, **t,
                              "test_labels": labels(15) + 3},
        "2d_images": {"train_images": x.reshape(60, -1), "train_labels": y},
        "5d_images": {"train_images": x[:, None], "train_labels": y},
        "test_shape": {"train_images": x, "train_labels": y, **t,
                       "test_images": images(15, (3, 9, 9))},
        "empty": {"train_images": x[:0], "train_labels": y[:0]},
        "empty_test": {"train_images": x, "train_labels": y, "test_images": x[:0],
                       "test_labels": y[:0]},
        "lonely_class": {"train_images": x, "train_labels": np.r_[y[:59], 7]},
        "pickled": {"train_images": x, "train_labels": np.array(list(y), dtype=object)},
    }
    if kind in cases:
        return write(tmp_path, **cases[kind])
    path = tmp_path / "bad.npz"
    if kind == "not_zip":
        path.write_bytes(b"this is not an archive\n")
    elif kind == "npy":
        np.save(tmp_path / "bad.npy", x)
        (tmp_path / "bad.npy").rename(path)
    elif kind == "truncated":
        good = write(tmp_path, "good.npz", train_images=x, train_labels=y).read_bytes()
        path.write_bytes(good[: len(good) // 2])
    elif kind == "directory":
        path.mkdir()
    return path  # "missing": never created


@pytest.mark.parametrize("kind, message", [
    ("missing", "data path '{path}' does not exist"),
    ("directory", "is a directory, not a file"),
    ("not_zip", "is not an .npz archive (no zip header)"),
    ("npy", "is not an .npz archive"),
    ("truncated", "is a corrupt .npz archive"),
    ("no_labels", "train_labels missing from '{path}'; it holds ['train_images']"),
    ("no_images", "train_images missing from '{path}'; it holds ['train_labels']"),
    ("test_images_alone", "test_images in '{path}' has no test_labels"),
    ("test_labels_alone", "test_labels in '{path}' has no test_images"),
    ("lengths", "train_images has 60 images but train_labels has 59 labels"),
    ("test_lengths", "test_images has 15 images but test_labels has 14 labels"),
    ("float_images", "train_images has dtype float32; expected uint8"),
    ("float_labels", "train_labels has dtype float64; expected integer"),
    ("negative", "train_labels has minimum -1"),
    ("test_out_of_range", "test_labels has maximum 5 but train_labels only reach 2"),
    ("2d_images", "train_images has shape (60, 192)"),
    ("5d_images", "train_images has shape (60, 1, 3, 8, 8)"),
    ("test_shape", "test_images are C/H/W (3, 9, 9) but train_images are (3, 8, 8)"),
    ("empty", "train_images is empty (shape (0, 3, 8, 8))"),
    ("empty_test", "test_images is empty"),
    ("lonely_class", "cannot carve a stratified"),
    ("pickled", "train_labels in '{path}' cannot be read"),
])
def test_bad_files_fail_with_one_line_naming_the_key(tmp_path, kind, message):
    path = _case(tmp_path, kind)
    with pytest.raises(DataError) as err:
        load_dataset("npz", path=path)
    text = str(err.value)
    assert message.format(path=path) in text and "\n" not in text


def test_npz_needs_a_path():
    with pytest.raises(DataError, match="--data-path"):
        load_dataset("npz")


def test_config_checks_data_path_and_channels(tmp_path, colour):
    with pytest.raises(ConfigError, match=r"data\.path.*--data-path"):
        load_config({"data": {"dataset": "npz"}})
    missing = str(tmp_path / "missing.npz")
    with pytest.raises(ConfigError, match=f"data.path = '{missing}': file does not exist"):
        load_config({"data": {"dataset": "npz", "path": missing}})
    with pytest.raises(ConfigError, match="takes 1-channel images but data.dataset = 'npz' has 3"):
        load_config({"preset": "tiny", "data": {"dataset": "npz", "path": str(colour)}})
    with pytest.raises(ConfigError, match="read only by data.dataset = 'npz'"):
        load_config({"data": {"dataset": "digits", "path": str(colour)}})
    cfg = load_config({"preset": "cifar", "data": {"dataset": "npz", "path": str(colour)}})
    assert cfg.data.path == str(colour)


def test_cli_missing_data_path_exits_2_with_one_line(tmp_path, capsys):
    from evo_nas.cli import main

    code = main(["train", "--dataset", "npz", "--data-path", "missing.npz",
                 "--runs-dir", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "data.path = 'missing.npz'" in err and not list(tmp_path.iterdir())


def test_cli_trains_on_an_npz_file(tmp_path, capsys):
    from evo_nas.cli import main

    path = write(tmp_path, train_images=images(40, (8, 8)), train_labels=labels(40, 2))
    code = main(["train", "--dataset", "npz", "--data-path", str(path), "--epochs", "1",
                 "--batch-size", "16", "--runs-dir", str(tmp_path), "--name", "t", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (tmp_path / "t" / "supernet.pt").is_file()


def test_real_cifar10_subset():
    ds = load_dataset("npz", path=cifar_npz(), seed=0)  # the shared subset, or skipped
    assert len(ds.train) + len(ds.val) == 4660 and len(ds.val) == 932
    assert len(ds.test) == 932
    assert ds.train.x.shape[1:] == (3, 32, 32) and ds.test.x.shape[1:] == (3, 32, 32)
    assert (ds.in_channels, ds.num_classes, ds.image_size) == (3, 10, 32)
    assert ds.augment == Augment(pad=4, flip=True)
    means = ds.train.x.mean(dim=(0, 2, 3))
    assert torch.allclose(means, torch.zeros(3), atol=1e-3)
    assert torch.allclose(ds.test.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=0.1)
    assert sorted(torch.unique(ds.test.y).tolist()) == list(range(10))
