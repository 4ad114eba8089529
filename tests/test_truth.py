"""Ranking figures against ground truth: exact values on hand-made cases, paired bootstrap."""

import numpy as np
import pytest
from scipy import stats

from evo_nas.truth import best_of_n, p_at_top, ranking_report, tau_within_groups


def test_p_at_top_perfect_reversed_and_partial():
    truth = np.arange(100.0)
    assert p_at_top(truth, truth, 0.05) == 1.0
    assert p_at_top(-truth, truth, 0.05) == 0.0
    score = truth.copy()
    score[[97, 98]] = -1  # two of the true top 5 demoted
    assert p_at_top(score, truth, 0.05) == pytest.approx(3 / 5)


def test_best_of_n_matches_brute_force_and_shares_ties():
    rng = np.random.default_rng(1)
    truth = rng.normal(90, 2, 12)
    assert best_of_n(truth, truth, 12, draws=50) == pytest.approx(truth.max())
    # n = 1: the pick is a random cell, so the mean approaches the mean truth
    assert best_of_n(truth, truth, 1, draws=20000) == pytest.approx(truth.mean(), abs=0.05)
    flat = np.zeros(12)  # every cell tied: the pick is the mean of the draw
    assert best_of_n(flat, truth, 12, draws=10) == pytest.approx(truth.mean())


def test_tau_within_groups_weights_groups_by_pairs():
    truth = np.array([1, 2, 3, 4, 10, 20, 30.0])
    score = np.array([1, 2, 3, 4, 30, 20, 10.0])  # right inside group 0, reversed in group 1
    groups = np.array([0, 0, 0, 0, 1, 1, 1])
    assert tau_within_groups(score, truth, groups) == pytest.approx((6 * 1 + 3 * -1) / 9)


def test_ranking_report_cis_and_paired_differences():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=300)
    good = truth + rng.normal(scale=0.5, size=300)
    weak = truth + rng.normal(scale=3.0, size=300)
    rep = ranking_report({"good": good, "weak": weak}, truth, reference="weak", n_boot=200,
                         best_of=(10,), draws=500)
    assert rep["good"]["tau"] == pytest.approx(stats.kendalltau(good, truth).statistic)
    lo, hi = rep["good"]["tau_ci95"]
    assert lo <= rep["good"]["tau"] <= hi
    assert rep["good"]["tau_minus_weak"] > 0 and rep["good"]["tau_minus_weak_ci95"][0] > 0
    assert "tau_minus_weak" not in rep["weak"]
    with pytest.raises(ValueError, match="score set 'bad'"):
        ranking_report({"bad": good[:5]}, truth)
