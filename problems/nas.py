"""NASProblem: architectures as integer genomes, named metrics as objectives and budgets."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.problem import Problem

from evo_nas.errors import BudgetError, ConfigError
from evo_nas.space import SearchSpace

Metric = Callable[[list[dict[str, Any]]], Any]
"""A metric maps a list of configs to one value per config, or to a dict of named value arrays
(so one callable, such as a cost model or the supernet evaluator, can feed several names)."""


class NASProblem(Problem):
    """A vectorised pymoo problem over a :class:`SearchSpace` (``vtype=int``).

    ``objectives`` maps names to metrics, all minimised (use ``error``, not accuracy).
    ``budgets`` maps a metric name to its upper bound; each becomes ``G = value - bound <= 0``.
    ``metrics`` holds extra named metrics that only budgets use. Every distinct canonical genome is
    evaluated once: results are cached and every evaluation is kept in :attr:`history`.
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, Metric],
        budgets: Mapping[str, float] | None = None,
        metrics: Mapping[str, Metric] | None = None,
    ) -> None:
        if not objectives:
            raise ConfigError("objectives: at least one objective is needed")
        self.space = space
        self.objective_names = list(objectives)
        self.metrics: dict[str, Metric] = {**(metrics or {}), **objectives}
        self.budgets = {k: float(v) for k, v in (budgets or {}).items()}
        for name, bound in self.budgets.items():
            if name not in self.metrics:
                raise ConfigError(
                    f"budgets.{name}: no metric named {name!r} (known: {sorted(self.metrics)})"
                )
            if not math.isfinite(bound):
                raise ConfigError(f"budgets.{name} = {bound} is not a finite number")
        self.history: list[dict[str, Any]] = []
        self._cache: dict[bytes, dict[str, float]] = {}
        super().__init__(n_var=space.n_var, n_obj=len(self.objective_names),
                         n_ieq_constr=len(self.budgets), xl=space.xl, xu=space.xu, vtype=int)

    # ----------------------------------------------------------------- evaluation
    def measure(self, X: np.ndarray) -> list[dict[str, float]]:
        """Every metric for every genome of ``X`` (cached by canonical genome)."""
        X = np.atleast_2d(self.space.canonical(np.round(X).astype(np.int64)))
        keys = [row.tobytes() for row in X]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        uniq = list(dict.fromkeys(keys[i] for i in todo))
        if uniq:
            first = {k: keys.index(k) for k in uniq}
            rows = X[[first[k] for k in uniq]]
            configs = self.space.decode_many(rows)
            t0 = time.perf_counter()
            values = self._compute(configs)
            dt = (time.perf_counter() - t0) / len(uniq)
            for j, k in enumerate(uniq):
                rec = {name: float(v[j]) for name, v in values.items()}
                self._cache[k] = rec
                self.history.append({"eval": len(self.history), "genome": rows[j].tolist(),
                                     "config": configs[j], **rec,
                                     "feasible": self.is_feasible(rec), "seconds": dt})
        return [self._cache[k] for k in keys]

    def _compute(self, configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        calls: dict[int, Any] = {}  # one call per distinct callable, even if it feeds many names
        for name, fn in self.metrics.items():
            if id(fn) not in calls:
                calls[id(fn)] = fn(configs)
            res = calls[id(fn)]
            val = res[name] if isinstance(res, Mapping) else res
            arr = np.asarray(val, dtype=float).reshape(-1)
            if arr.shape[0] != len(configs):
                raise ConfigError(
                    f"metric {name!r} returned {arr.shape[0]} values for {len(configs)} configs"
                )
            out[name] = arr
        return out

    def is_feasible(self, rec: Mapping[str, float]) -> bool:
        return all(np.isfinite(rec[n]) for n in self.objective_names) and all(
            rec[n] <= b for n, b in self.budgets.items())

    def _evaluate(self, X, out, *args, **kwargs) -> None:
        recs = self.measure(X)
        F = np.array([[r[n] for n in self.objective_names] for r in recs], dtype=float)
        # a NaN objective (failed evaluation) is infeasible, never a silent score
        bad = ~np.isfinite(F).all(axis=1)
        F[bad] = np.inf
        out["F"] = F
        if self.budgets:
            G = np.array([[r[n] - b for n, b in self.budgets.items()] for r in recs], dtype=float)
            G[bad] = np.inf
            G[~np.isfinite(G)] = np.inf
            out["G"] = G

    # ----------------------------------------------------------------- budgets
    def check_budgets(self, names: Sequence[str] | None = None) -> None:
        """Fail early when a budget is below the smallest architecture's value.

        Only metrics marked ``cheap`` (analytic costs, lookup tables) are checked, on the
        smallest genome; costs that grow with every gene make that genome the cheapest.
        """
        names = list(self.budgets) if names is None else list(names)
        cheap = [n for n in names if getattr(self.metrics[n], "cheap", False)]
        if not cheap:
            return
        config = self.space.decode(self.space.smallest())
        for n in cheap:
            fn = self.metrics[n]
            res = fn([config])
            val = float(np.asarray(res[n] if isinstance(res, Mapping) else res).reshape(-1)[0])
            if val > self.budgets[n]:
                raise BudgetError(
                    f"budget {n} <= {self.budgets[n]:g} cannot be met: the smallest architecture "
                    f"of space {self.space.name!r} already has {n} = {val:.4g}"
                )
