"""Surrogate predictors: genome encodings, scikit-learn regressors, rank metrics, selection.

A predictor maps integer genomes to one metric. Every built-in is a plain scikit-learn pipeline
(encoder + regressor), and any scikit-learn regressor plugs in through :func:`as_predictor`.
"""

from evo_nas.predictors.encoding import (
    ENCODINGS,
    MAX_AUTO_FEATURES,
    GenomeEncoder,
    auto_encoding,
    onehot,
    option_counts,
    ordinal,
    pair_counts,
    pairwise_onehot,
)
from evo_nas.predictors.metrics import (
    kendall_scorer,
    kendall_tau,
    mae,
    pearson_r,
    predictor_report,
    rmse,
    spearman_rho,
    top_k_precision,
)
from evo_nas.predictors.models import (
    DEFAULT_PREDICTOR,
    PREDICTORS,
    AdaptivePredictor,
    CellInferenceRegressor,
    LogTargetRegressor,
    RankTargetRegressor,
    as_predictor,
    cell_default,
    make_predictor,
    make_regressor,
)
from evo_nas.predictors.structure import (
    MAX_CELL_EDGES,
    cell_hypotheses,
    infer_cell,
    scan_rows,
)
from evo_nas.predictors.validation import PredictorError, check_predictor, check_targets

__all__ = [
    "DEFAULT_PREDICTOR",
    "ENCODINGS",
    "MAX_AUTO_FEATURES",
    "MAX_CELL_EDGES",
    "PREDICTORS",
    "AdaptivePredictor",
    "CellInferenceRegressor",
    "GenomeEncoder",
    "LogTargetRegressor",
    "PredictorError",
    "RankTargetRegressor",
    "as_predictor",
    "auto_encoding",
    "cell_default",
    "cell_hypotheses",
    "check_predictor",
    "check_targets",
    "infer_cell",
    "kendall_scorer",
    "kendall_tau",
    "mae",
    "make_predictor",
    "make_regressor",
    "onehot",
    "option_counts",
    "ordinal",
    "pair_counts",
    "pairwise_onehot",
    "pearson_r",
    "predictor_report",
    "rmse",
    "scan_rows",
    "spearman_rho",
    "top_k_precision",
]
