"""The ranking-fidelity study: architecture spread, rank statistics, the end-to-end JSON."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from evo_nas.costs import CostModel
from evo_nas.errors import ConfigError
from evo_nas.fidelity import (
    FidelityConfig,
    bootstrap_tau,
    bootstrap_tau_difference,
    parse_sampler,
    plot_fidelity,
    pooled_tau_difference,
    rank_metrics,
    run_fidelity,
    save_result,
    spread_architectures,
)
from evo_nas.spaces import get_spec, mobilenet_space
from evo_nas.spaces.mobilenet import StageSpec


def _two_arch_spec():
    spec = get_spec("tiny")
    return dataclasses.replace(spec, name="pair", resolutions=(12,), kernels=(3,),
                               expands=(2, 3), stages=(StageSpec((8,), (1,), 1),))


def test_spread_covers_the_flops_range_with_distinct_architectures():
    space = mobilenet_space("tiny")
    X = spread_architectures(space, 12, 0)
    assert len({space.key(x) for x in X}) == 12
    f = CostModel(space)(space.decode_many(X))["flops"]
    lo, hi = CostModel(space)([space.decode(space.smallest()), space.decode(space.largest())])[
        "flops"]
    assert f.min() == pytest.approx(lo) and f.max() == pytest.approx(hi)
    ratios = f[1:] / f[:-1]  # log spacing: roughly constant ratio between neighbours
    assert np.all(ratios > 1.0) and ratios.max() / ratios.min() < 1.6
    lin = CostModel(space)(space.decode_many(spread_architectures(space, 12, 0,
                                                                  spacing="linear")))["flops"]
    steps = np.diff(lin)
    assert np.all(steps > 0) and steps.max() / steps.min() < 1.6


def test_band_spacing_picks_distinct_networks_of_about_one_size():
    space = mobilenet_space("tiny")
    cost = CostModel(space)
    ends = cost([space.decode(space.smallest()), space.decode(space.largest())])["flops"]
    mid = float(np.sqrt(ends[0] * ends[1]))
    X = spread_architectures(space, 14, 0, spacing="band")
    f = cost(space.decode_many(X))["flops"]
    assert len({space.key(x) for x in X}) == 14
    assert np.all(np.abs(f / mid - 1) <= 0.16) and np.all(np.diff(f) > 0)
    assert f.max() / f.min() < 1.4  # versus ~18x for the log spread
    wide = cost(space.decode_many(spread_architectures(space, 14, 0, spacing="band",
                                                       band=0.3)))["flops"]
    assert np.abs(wide / mid - 1).max() > 0.2 and np.all(np.abs(wide / mid - 1) <= 0.31)
    with pytest.raises(ConfigError, match="fidelity.spacing = 'cubic'"):
        spread_architectures(space, 14, 0, spacing="cubic")
    with pytest.raises(ConfigError, match="fidelity.band = 1.5"):
        spread_architectures(space, 14, 0, spacing="band", band=1.5)


def test_k_larger_than_the_space_names_k():
    space = _two_arch_spec().space()
    assert space.cardinality() == 2
    with pytest.raises(ConfigError, match=r"fidelity.k = 3: space 'mobilenet-pair' holds only 2"):
        spread_architectures(space, 3, 0)
    with pytest.raises(ConfigError, match=r"fidelity.k = 3: space 'mobilenet-pair' holds only 2"):
        FidelityConfig(k=3, top_k=2).validate(space)


def test_config_names_bad_values():
    with pytest.raises(ConfigError, match="'fare' is unknown"):
        FidelityConfig(samplers=["fare"]).validate()
    with pytest.raises(ConfigError, match="only attentive takes a mode"):
        FidelityConfig(samplers=["fair:worstup"]).validate()
    with pytest.raises(ConfigError, match="fidelity.top_k = 20"):
        FidelityConfig(k=12, top_k=20).validate()
    with pytest.raises(ConfigError, match="'fair@2': fair trains one sub-network per option"):
        FidelityConfig(samplers=["fair@2"]).validate()
    with pytest.raises(ConfigError, match="'sandwich@2': sandwich needs more than 2"):
        FidelityConfig(samplers=["sandwich@2"]).validate()
    with pytest.raises(ConfigError, match="'uniform@two': @two must be a positive whole"):
        FidelityConfig(samplers=["uniform@two"]).validate()
    with pytest.raises(ConfigError, match="a sampler is named twice"):
        FidelityConfig(samplers=["uniform", "uniform"]).validate()


def test_equal_steps_and_sub_networks_per_step_for_every_sampler():
    cfg = FidelityConfig(subnets_per_step=4)
    u, s, a = (cfg.train_config(n) for n in ("uniform", "sandwich", "attentive:worstup"))
    assert u.n_random == 3 and s.n_random == 2
    assert a.sampler == "attentive" and a.sampler_options == {"mode": "worstup"}
    assert len({(c.epochs, c.batch_size, c.lr, c.seed) for c in (u, s, a)}) == 1
    # NAME@N: N sub-networks per step, epochs scaled so every sampler does the same passes
    assert parse_sampler("attentive:worstup@6") == ("attentive", "worstup", 6)
    two, five = cfg.train_config("uniform@2"), cfg.train_config("sandwich@5")
    assert (two.sampler, two.n_random, two.epochs) == ("uniform", 1, 2 * cfg.supernet_epochs)
    assert (five.n_random, five.epochs) == (3, round(cfg.supernet_epochs * 4 / 5))
    # without distillation sandwich still leads with largest + smallest: 2 random, not 3
    plain = FidelityConfig(subnets_per_step=4, distill=False)
    assert plain.train_config("sandwich").n_random == 2
    assert plain.train_config("uniform").n_random == 4


def test_rank_metrics_on_known_rankings():
    truth = np.arange(10.0)[:, None] + np.zeros((10, 3))
    same = rank_metrics(np.arange(10.0), truth, top_k=3, n_boot=200)
    assert same["kendall_tau"] == pytest.approx(1.0) and same["spearman_rho"] == pytest.approx(1.0)
    assert same["top3_overlap"] == 1.0 and same["tau_ci95"][1] == pytest.approx(1.0)
    flipped = rank_metrics(-np.arange(10.0), truth, top_k=3, n_boot=200)
    assert flipped["kendall_tau"] == pytest.approx(-1.0) and flipped["top3_overlap"] == 0.0


def test_bootstrap_ci_widens_with_seed_noise():
    rng = np.random.default_rng(0)
    quality = np.linspace(0, 1, 14)
    clean = quality[:, None] + 0.01 * rng.standard_normal((14, 3))
    noisy = quality[:, None] + 0.4 * rng.standard_normal((14, 3))
    lo_c, hi_c = bootstrap_tau(quality, clean, 500, 1)
    lo_n, hi_n = bootstrap_tau(quality, noisy, 500, 1)
    assert 0.9 <= lo_c <= hi_c <= 1 and -1 <= lo_n < hi_n <= 1
    assert hi_n - lo_n > hi_c - lo_c


def test_tau_is_the_mean_over_supernet_seeds_and_the_ci_covers_their_spread():
    rng = np.random.default_rng(0)
    quality = np.linspace(0, 1, 14)
    truth = quality[:, None] + 0.01 * rng.standard_normal((14, 3))
    good, bad = quality, quality[::-1]
    m = rank_metrics(np.stack([good, bad]), truth, top_k=3, n_boot=400)
    assert m["tau_per_seed"] == pytest.approx([1.0, -1.0])
    assert m["kendall_tau"] == pytest.approx(0.0) and m["top3_overlap"] == pytest.approx(0.5)
    lo, hi = m["tau_ci95"]
    assert lo < -0.9 and hi > 0.9  # a replicate draws either supernet
    agree = rank_metrics(np.stack([good, good]), truth, top_k=3, n_boot=400)
    assert agree["tau_ci95"][0] > 0.9


def test_paired_difference_of_tau_finds_a_real_gap_and_nothing_between_equals():
    rng = np.random.default_rng(0)
    quality = np.linspace(0, 1, 14)
    truth = quality[:, None] + 0.03 * rng.standard_normal((14, 3))
    good = quality.copy()
    worse = quality.copy()
    for i in range(0, 14, 2):  # every adjacent pair swapped
        worse[[i, i + 1]] = worse[[i + 1, i]]
    d, lo, hi = bootstrap_tau_difference(good, worse, truth, 500, 1)
    assert d == pytest.approx(_kendall(good, truth) - _kendall(worse, truth)) and d > 0
    assert 0 < lo <= d <= hi
    back = bootstrap_tau_difference(worse, good, truth, 500, 1)  # same replicates, negated
    assert back == pytest.approx((-d, -hi, -lo))
    # a sampler against itself: exactly zero in every replicate
    assert bootstrap_tau_difference(good, good, truth, 200, 1) == (0.0, 0.0, 0.0)


def test_pooling_studies_narrows_the_difference_interval():
    quality = np.linspace(0, 1, 14)
    studies, singles = [], []
    for seed in range(6):  # six data seeds: a sharper supernet vs a noisier one
        rng = np.random.default_rng(seed)
        truth = quality[:, None] + 0.08 * rng.standard_normal((14, 3))
        sharp = quality + 0.04 * rng.standard_normal(14)
        blurred = quality + 0.12 * rng.standard_normal(14)
        studies.append((sharp, blurred, truth))
        singles.append(bootstrap_tau_difference(sharp, blurred, truth, 500, 1))
    d, lo, hi = pooled_tau_difference(studies, 500, 1)
    assert d == pytest.approx(np.mean([x[0] for x in singles]))
    assert sum(x[1] <= 0 for x in singles) >= 4  # most studies alone cannot tell
    assert lo > 0 and hi - lo < 0.5 * np.mean([x[2] - x[1] for x in singles])


def _kendall(scores: np.ndarray, truth: np.ndarray) -> float:
    return rank_metrics(scores, truth, top_k=1, n_boot=1)["kendall_tau"]


def test_end_to_end_study_writes_json_and_plot(tmp_path):
    from evo_nas.data import Split, load_dataset

    data = load_dataset("digits_hard", seed=0, max_train=64)
    data.val = Split(data.val.x[:60], data.val.y[:60])
    cfg = FidelityConfig(k=3, seeds=2, supernet_seeds=2, samplers=["uniform", "fair"],
                         supernet_epochs=1, standalone_epochs=1, batch_size=32, top_k=1,
                         n_boot=50, n_jobs=1, calib_images=64)
    result = run_fidelity(cfg, data=data)
    text = json.dumps(result)  # JSON-ready
    assert [r["sampler"] for r in result["table"]] == ["uniform", "fair"]
    for row in result["table"]:
        for kind in ("loss", "accuracy"):
            m = row[kind]
            assert -1 <= m["tau_ci95"][0] <= m["tau_ci95"][1] <= 1
            paired = {"tau_minus_uniform", "tau_minus_uniform_ci95"} if (
                kind == "loss" and row["sampler"] != "uniform") else set()
            assert set(m) == {"kendall_tau", "tau_ci95", "tau_per_seed", "spearman_rho",
                              "top1_overlap"} | paired
    fair = result["table"][1]["loss"]
    assert fair["tau_minus_uniform"] == pytest.approx(
        fair["kendall_tau"] - result["table"][0]["loss"]["kendall_tau"])
    archs = result["architectures"]
    assert len(archs) == 3 and all(len(a["standalone_loss"]) == 2 for a in archs)
    assert set(archs[0]["supernet_loss"]) == {"uniform", "fair"}
    # two supernets per sampler, trained from different seeds: different scores
    assert all(len(v) == 2 for v in archs[0]["supernet_loss"].values())
    assert archs[0]["supernet_loss"]["fair"][0] != archs[0]["supernet_loss"]["fair"][1]
    assert [len(r["loss"]["tau_per_seed"]) for r in result["table"]] == [2, 2]
    # size proxies: ranking by FLOPs / params alone, the bar a supernet has to clear
    assert set(result["baselines"]) == {"flops", "params"}
    t = result["target"]
    assert t["default_sampler"] == "uniform" and t["uniform_tau"] == result["table"][0]["loss"][
        "kendall_tau"]
    assert result["data"]["augment"]["rotate"] > 0 and "digits_hard" in text
    png = plot_fidelity(result, tmp_path / "f.png")
    assert png.stat().st_size > 1000

    # a new sampler joins the study without retraining the stand-alone networks
    first = save_result(result, tmp_path / "first.json")
    more = run_fidelity(dataclasses.replace(cfg, samplers=["uniform@2"],
                                            reuse_standalone=str(first)), data=data)
    assert more["standalone_reused_from"] == "first.json"
    assert [a["standalone_loss"] for a in more["architectures"]] == [
        a["standalone_loss"] for a in archs]
    row = more["table"][0]
    assert (row["sampler"], row["subnets_per_step"], row["supernet_epochs"]) == (
        "uniform@2", 2, 2)
    assert result["table"][0]["subnets_per_step"] == 4
    with pytest.raises(ConfigError, match="it was run with seeds = 2, this study has seeds = 3"):
        run_fidelity(dataclasses.replace(cfg, seeds=3, reuse_standalone=str(first)), data=data)
    with pytest.raises(ConfigError, match="reuse_standalone = .*nope.json.: no such file"):
        run_fidelity(dataclasses.replace(cfg, reuse_standalone=str(tmp_path / "nope.json")),
                     data=data)


def test_cli_names_an_impossible_k(capsys):
    from evo_nas.cli import main

    code = main(["fidelity", "--k", "100000000000", "--out", "/nonexistent/x.json"])
    assert code == 2
    assert "fidelity.k = 100000000000" in capsys.readouterr().err


def test_cli_names_a_missing_reuse_file(capsys, tmp_path):
    from evo_nas.cli import main

    missing = tmp_path / "earlier.json"
    code = main(["fidelity", "--quick", "--reuse-standalone", str(missing),
                 "--out", str(tmp_path / "x.json")])
    assert code == 2
    assert f"fidelity.reuse_standalone = '{missing}': no such file" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
