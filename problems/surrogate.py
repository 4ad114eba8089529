"""SurrogateProblem: a NASProblem's twin whose expensive metrics come from fitted predictors.

Searching on it costs no real evaluation: expensive metrics (accuracy, measured latency) are
predicted, cheap ones (analytic FLOPs, lookup tables; metrics marked ``cheap``) are computed
exactly, because a surrogate should only guess what it cannot know. Budgets keep their meaning
(``G = value - bound``), using the exact value where the metric is cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pymoo.core.problem import Problem

from evo_nas.errors import ConfigError
from evo_nas.metrics import is_cheap as metric_is_cheap
from evo_nas.metrics import metric_values
from problems.nas import NASProblem

__all__ = ["SurrogateProblem", "is_cheap"]


def is_cheap(problem: NASProblem, name: str) -> bool:
    """Whether metric ``name`` of ``problem`` may be computed without a real evaluation."""
    return metric_is_cheap(problem.metrics[name])


class SurrogateProblem(Problem):
    """Vectorised pymoo problem over ``problem.space`` with predicted expensive metrics.

    ``predictors`` maps metric names to *fitted* predictors that take genome matrices (see
    :func:`evo_nas.predictors.as_predictor`). Every objective and budget metric must either have
    a predictor or be cheap. ``record=True`` keeps every distinct genome this problem scored and
    its predicted values (:meth:`visited`), so a surrogate search can pick from all it saw.
    """

    def __init__(self, problem: NASProblem, predictors: Mapping[str, Any],
                 record: bool = False) -> None:
        self.base = problem
        self.space = problem.space
        self.objective_names = list(problem.objective_names)
        self.budgets = dict(problem.budgets)
        self.predictors = dict(predictors)
        for name in self.predictors:
            if name not in problem.metrics:
                raise ConfigError(f"predictor for {name!r}: the problem has no such metric "
                                  f"(known: {sorted(problem.metrics)})")
        needed = [*self.objective_names, *self.budgets]
        lacking = [n for n in needed if n not in self.predictors and not is_cheap(problem, n)]
        if lacking:
            raise ConfigError(f"metrics {lacking} are neither cheap nor predicted: give "
                              f"predictors for them or mark their callables cheap")
        self.exact = [n for n in dict.fromkeys(needed) if n not in self.predictors]
        self.record = record
        self._seen: dict[bytes, int] = {}
        self._X: list[np.ndarray] = []
        self._F: list[np.ndarray] = []
        self._G: list[np.ndarray] = []
        self.n_predicted = 0
        super().__init__(n_var=problem.n_var, n_obj=len(self.objective_names),
                         n_ieq_constr=len(self.budgets), xl=problem.xl, xu=problem.xu, vtype=int)

    def values(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted or exact value of every objective and budget metric for genomes ``X``."""
        X = np.atleast_2d(self.space.canonical(np.round(X).astype(np.int64)))
        out: dict[str, np.ndarray] = {}
        for name, model in self.predictors.items():
            if name in self.objective_names or name in self.budgets:
                out[name] = np.asarray(model.predict(X), dtype=float).reshape(-1)
        if self.exact:
            exact = {name: self.base.metrics[name] for name in self.exact}
            out.update(metric_values(exact, self.space.decode_many(X), X))
        self.n_predicted += len(X)
        return out

    def _evaluate(self, X, out, *args, **kwargs) -> None:
        X = np.atleast_2d(self.space.canonical(np.round(X).astype(np.int64)))
        vals = self.values(X)
        F = np.column_stack([vals[n] for n in self.objective_names])
        F[~np.isfinite(F)] = np.inf
        out["F"] = F
        G = None
        if self.budgets:
            G = np.column_stack([vals[n] - b for n, b in self.budgets.items()])
            G[~np.isfinite(G)] = np.inf
            out["G"] = G
        if self.record:
            for i, row in enumerate(X):
                k = row.tobytes()
                if k not in self._seen:
                    self._seen[k] = len(self._X)
                    self._X.append(row)
                    self._F.append(F[i])
                    self._G.append(G[i] if G is not None else np.zeros(0))

    def visited(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, F, G)`` of every distinct genome scored since construction (``record=True``)."""
        if not self._X:
            return (np.zeros((0, self.n_var), dtype=np.int64), np.zeros((0, self.n_obj)),
                    np.zeros((0, self.n_ieq_constr)))
        return np.stack(self._X), np.stack(self._F), np.stack(self._G)
