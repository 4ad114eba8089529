"""Rank and error metrics for predictors: the set NAS users compare (NASLib's report).

A surrogate is used to *rank* architectures, so rank correlation (Kendall tau, Spearman rho) and
top-k precision matter more than RMSE; low RMSE does not imply a good ranking, so report both.
All statistics come from scipy / scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import (
    make_scorer,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
)

from evo_nas.predictors.validation import PredictorError

__all__ = [
    "kendall_scorer",
    "kendall_tau",
    "mae",
    "pearson_r",
    "predictor_report",
    "rmse",
    "spearman_rho",
    "top_k_precision",
]


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=float).reshape(-1)
    b = np.asarray(y_pred, dtype=float).reshape(-1)
    if a.shape != b.shape:
        raise PredictorError(f"y_true has {a.size} values but y_pred has {b.size}")
    if a.size < 2:
        raise PredictorError(f"rank metrics need at least 2 values, got {a.size}")
    return a, b


def _finite(value: float) -> float:
    return float(value) if np.isfinite(value) else 0.0  # constant predictions carry no ranking


def kendall_tau(y_true: Any, y_pred: Any) -> float:
    """Kendall tau-b (scipy); 0 when either side is constant."""
    a, b = _pair(y_true, y_pred)
    return _finite(stats.kendalltau(a, b).statistic)


def spearman_rho(y_true: Any, y_pred: Any) -> float:
    a, b = _pair(y_true, y_pred)
    return _finite(stats.spearmanr(a, b).statistic)


def pearson_r(y_true: Any, y_pred: Any) -> float:
    a, b = _pair(y_true, y_pred)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return _finite(stats.pearsonr(a, b).statistic)


def mae(y_true: Any, y_pred: Any) -> float:
    return float(mean_absolute_error(*_pair(y_true, y_pred)))


def rmse(y_true: Any, y_pred: Any) -> float:
    return float(np.sqrt(mean_squared_error(*_pair(y_true, y_pred))))


def top_k_precision(y_true: Any, y_pred: Any, k: int = 10, greater_is_better: bool = False
                    ) -> float:
    """Fraction of the ``k`` architectures ranked best by the prediction that are among the true
    best ``k`` (NASLib's precision@k). Objectives here are minimised (error), so "best" means
    smallest unless ``greater_is_better``. Scored with sklearn's ``precision_score``."""
    a, b = _pair(y_true, y_pred)
    if not 1 <= k <= a.size:
        raise PredictorError(f"top_k_precision: k = {k} must be in 1..{a.size}")
    sign = -1.0 if greater_is_better else 1.0
    true_top = np.zeros(a.size, dtype=bool)
    pred_top = np.zeros(a.size, dtype=bool)
    true_top[np.argsort(sign * a, kind="stable")[:k]] = True
    pred_top[np.argsort(sign * b, kind="stable")[:k]] = True
    return float(precision_score(true_top, pred_top, zero_division=0.0))


def predictor_report(y_true: Any, y_pred: Any, greater_is_better: bool = False
                     ) -> dict[str, float]:
    """Every metric at once: kendall_tau, spearman_rho, pearson_r, mae, rmse, precision@10/@20."""
    a, b = _pair(y_true, y_pred)
    out = {"kendall_tau": kendall_tau(a, b), "spearman_rho": spearman_rho(a, b),
           "pearson_r": pearson_r(a, b), "mae": mae(a, b), "rmse": rmse(a, b)}
    for k in (10, 20):
        if a.size >= k:
            out[f"precision@{k}"] = top_k_precision(a, b, k, greater_is_better)
    return out


kendall_scorer = make_scorer(kendall_tau)
"""sklearn scorer (greater is better) for ``cross_val_score(..., scoring=kendall_scorer)``."""
