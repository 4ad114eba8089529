"""NAS-Bench-201 cells end to end from the CLI: train on a user's npz arrays, then a budgeted search
whose archive holds no two isomorphic cells."""

import json
import sqlite3

import numpy as np
import pytest
from sklearn.datasets import load_digits

from evo_nas.cli import main
from evo_nas.spaces.nb201 import nb201_canonical


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    """Real digits as a user's own uint8 arrays (NCHW), the format of ``--dataset npz``."""
    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)[:, None]
    path = tmp_path_factory.mktemp("npz") / "digits.npz"
    np.savez(path, train_images=images[:1400], train_labels=d.target[:1400],
             test_images=images[1400:], test_labels=d.target[1400:])
    return path


def test_train_then_search_nb201_from_the_cli(digits_npz, tmp_path, capsys):
    common = ["--preset", "nb201", "--supernet", "C=4,N=1,in_channels=1,image_size=8",
              "--dataset", "npz", "--data-path", str(digits_npz), "--runs-dir", str(tmp_path),
              "--name", "nb", "--quiet"]
    assert main(["train", *common, "--epochs", "2"]) == 0, capsys.readouterr().err
    assert main(["search", *common, "--pop-size", "8", "--generations", "3",
                 "--objectives", "error,flops", "--budget", "flops=0.05",
                 "--calib-images", "200"]) == 0, capsys.readouterr().err
    run = tmp_path / "nb"
    front = json.loads((run / "pareto.json").read_text())["pareto"]
    assert front and all(r["MFLOPs"] <= 0.05 for r in front)
    with sqlite3.connect(run / "archive.db") as db:
        genomes = [json.loads(g) for (g,) in db.execute("SELECT genome FROM evaluations")]
    X = np.array(genomes)
    assert len(X) == len(np.unique(X, axis=0)), "an architecture was evaluated twice"
    assert np.array_equal(nb201_canonical(X), X), "an isomorphic twin was evaluated"


def test_nb201_preset_brings_its_recipe_unless_a_field_is_set():
    from evo_nas.config import load_config

    small = {"C": 4, "N": 1, "in_channels": 1, "image_size": 8}
    cfg = load_config({"preset": "nb201", "supernet": small})
    assert cfg.train.sampler_options == {"by_class": True} and cfg.train.n_random == 1
    assert not cfg.train.distill and cfg.eval.bn == "batch"
    cfg = load_config({"preset": "nb201", "supernet": small, "train": {"distill": True},
                       "eval": {"bn": "recalibrate"}})
    assert cfg.train.distill and cfg.eval.bn == "recalibrate" and cfg.train.n_random == 1
    assert load_config({}).train.n_random == 3  # other presets keep the library defaults
