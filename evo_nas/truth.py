"""Score an evaluator's ranking against ground truth (e.g. NAS-Bench-201's published accuracies).

An evaluator is only as good as its ranking, and a ranking is only interesting next to the free
baselines it must beat (params, FLOPs, zero-cost proxies) on the same architectures. Every score
here is "higher is better" on both sides (pass ``-loss``, accuracy, params, a proxy score...).

Figures: Kendall tau (scipy, tau-b: ties allowed), Spearman rho, P@top-q (the share of the
evaluator's top q that is in the true top q), best-of-N (the true accuracy of the evaluator's
pick among N random architectures, averaged over many draws; ties share the pick), tau within
groups of equal params (the signal params cannot give), and percentile-bootstrap CIs over
architectures, paired between evaluators (one resample serves every score set).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evo_nas.predictors.metrics import kendall_tau as _tau
from evo_nas.predictors.metrics import spearman_rho as _rho

__all__ = ["best_of_n", "p_at_top", "ranking_report", "tau_within_groups"]


def _top_mask(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The ``k`` largest of ``x``, ties at the boundary broken at random (seeded)."""
    order = np.lexsort((rng.random(len(x)), -x))
    mask = np.zeros(len(x), dtype=bool)
    mask[order[:k]] = True
    return mask


def p_at_top(score: np.ndarray, truth: np.ndarray, frac: float = 0.05, seed: int = 0) -> float:
    """Share of the ``frac`` best by ``score`` that are among the ``frac`` best by ``truth``."""
    score, truth = np.asarray(score, float), np.asarray(truth, float)
    k = max(1, int(round(frac * len(score))))
    rng = np.random.default_rng(seed)
    return float((_top_mask(score, k, rng) & _top_mask(truth, k, rng)).sum() / k)


def best_of_n(score: np.ndarray, truth: np.ndarray, n: int, draws: int = 5000,
              seed: int = 0) -> float:
    """Mean true value of the architecture ``score`` picks among ``n`` drawn without replacement,
    over ``draws`` draws; when several share the best score, the pick is their mean (a random
    tie-break in expectation)."""
    score, truth = np.asarray(score, float), np.asarray(truth, float)
    rng = np.random.default_rng(seed)
    n = min(n, len(score))
    idx = np.argsort(rng.random((draws, len(score))), axis=1)[:, :n]
    s, t = score[idx], truth[idx]
    best = s == s.max(axis=1, keepdims=True)
    return float(np.mean((t * best).sum(1) / best.sum(1)))


def tau_within_groups(score: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> float:
    """Kendall tau inside each group of equal ``groups`` (e.g. params), averaged with each group
    weighted by its number of pairs; groups of one carry nothing."""
    score, truth, groups = (np.asarray(a, float) for a in (score, truth, groups))
    num = den = 0.0
    for g in np.unique(groups):
        m = groups == g
        n = int(m.sum())
        if n < 3:
            continue
        w = n * (n - 1) / 2
        num += w * _tau(score[m], truth[m])
        den += w
    return float(num / den) if den else float("nan")


def _figures(score: np.ndarray, truth: np.ndarray, top: float, seed: int) -> dict[str, float]:
    return {"tau": _tau(score, truth), "rho": _rho(score, truth),
            f"p_at_top{round(top * 100)}": p_at_top(score, truth, top, seed)}


def ranking_report(scores: Mapping[str, Sequence[float]], truth: Sequence[float], *,
                   reference: str | None = None, groups: Sequence[float] | None = None,
                   top: float = 0.05, best_of: Sequence[int] = (100, 200), draws: int = 5000,
                   n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Every figure for every score set on the same architectures, with bootstrap CIs.

    ``reference`` (e.g. ``"params"``) gets a paired difference from every other set: tau and
    P@top differences with CIs from resampling the architectures once per replicate for all
    sets. ``groups`` (e.g. the params of each architecture) adds ``tau_within_groups``.
    """
    truth = np.asarray(truth, dtype=float)
    arrays = {k: np.asarray(v, dtype=float) for k, v in scores.items()}
    for k, v in arrays.items():
        if v.shape != truth.shape:
            raise ValueError(f"score set {k!r} has {v.size} values, truth has {truth.size}")
    rng = np.random.default_rng(seed)
    n = len(truth)
    reps = {k: [] for k in arrays}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        for k, v in arrays.items():
            reps[k].append(_figures(v[idx], truth[idx], top, seed))
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    out: dict[str, Any] = {}
    for k, v in arrays.items():
        row: dict[str, Any] = _figures(v, truth, top, seed)
        for name in list(row):
            vals = np.array([r[name] for r in reps[k]])
            row[f"{name}_ci95"] = [float(np.quantile(vals, lo_q)), float(np.quantile(vals, hi_q))]
        for b in best_of:
            row[f"best_of_{b}"] = best_of_n(v, truth, b, draws, seed)
        if groups is not None:
            row["tau_within_groups"] = tau_within_groups(v, truth, np.asarray(groups))
        out[k] = row
    if reference is not None:
        for k in arrays:
            if k == reference:
                continue
            for name in ("tau", f"p_at_top{round(top * 100)}"):
                d = np.array([a[name] - b[name] for a, b in zip(reps[k], reps[reference],
                                                                strict=True)])
                out[k][f"{name}_minus_{reference}"] = out[k][name] - out[reference][name]
                out[k][f"{name}_minus_{reference}_ci95"] = [float(np.quantile(d, lo_q)),
                                                            float(np.quantile(d, hi_q))]
    return out
