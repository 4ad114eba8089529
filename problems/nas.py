"""NASProblem: architectures as integer genomes, named metrics as objectives and budgets."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.problem import Problem

from evo_nas.errors import BudgetError, ConfigError, EvoNasError
from evo_nas.space import SearchSpace

Metric = Callable[[list[dict[str, Any]]], Any]
"""A metric maps a list of configs to one value per config, or to a dict of named value arrays
(so one callable, such as a cost model or the supernet evaluator, can feed several names)."""


class NASProblem(Problem):
    """A vectorised pymoo problem over a :class:`SearchSpace` (``vtype=int``).

    ``objectives`` maps names to metrics, all minimised (use ``error``, not accuracy).
    ``budgets`` maps a metric name to its upper bound; each becomes ``G = value - bound <= 0``.
    ``metrics`` holds extra named metrics that only budgets use. Every distinct canonical genome is
    evaluated once: results are cached and every evaluation is kept in :attr:`history`
    (attach an :class:`~evo_nas.archive.Archive` to persist them and reuse them across runs).
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
        self._cache: dict[str, dict[str, float]] = {}
        self.archive: Any = None
        self.run = "default"
        self.scope = f"{space.name}|{','.join(sorted(self.metrics))}"
        super().__init__(n_var=space.n_var, n_obj=len(self.objective_names),
                         n_ieq_constr=len(self.budgets), xl=space.xl, xu=space.xu, vtype=int)

    def attach(self, archive: Any, run: str, scope: str | None = None) -> NASProblem:
        """Store every evaluation in ``archive`` under ``run`` and reuse any earlier successful
        evaluation with the same ``scope`` (space + evaluator identity) instead of recomputing.
        Rows this run already committed (a resumed run) are loaded back into :attr:`history`."""
        self.archive, self.run = archive, run
        if scope is not None:
            self.scope = scope
        for row in archive.rows(run):
            self._record(row["key"], row["genome"], row["config"], row["metrics"],
                         row["seconds"], row["status"], row["fault"], commit=False)
        return self

    # ----------------------------------------------------------------- evaluation
    def measure(self, X: np.ndarray) -> list[dict[str, float]]:
        """Every metric for every genome of ``X``; each distinct canonical genome is computed once
        (memory cache, then the archive), and each new result is committed as soon as it exists.

        A metric that raises (other than an :class:`EvoNasError`, which is a user error and
        propagates) or returns NaN marks that architecture failed: its metrics are NaN, it is
        infeasible, the error is recorded, and the search goes on.
        """
        X = np.atleast_2d(self.space.canonical(np.round(X).astype(np.int64)))
        keys = [self.space.key(row) for row in X]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if todo:
            first = {k: keys.index(k) for k in todo}
            cached = self.archive.lookup(self.scope, todo) if self.archive is not None else {}
            for k in todo:
                row = X[first[k]]
                config = self.space.decode(row)
                if k in cached:
                    self._record(k, row.tolist(), config, cached[k]["metrics"],
                                 cached[k]["seconds"], "ok", None)
                    continue
                t0 = time.perf_counter()
                status, error = "ok", None
                try:
                    values = {n: float(v[0]) for n, v in self._compute([config]).items()}
                except EvoNasError:
                    raise
                except Exception as e:  # a fault in one evaluation must not end the search
                    values = {n: float("nan") for n in self.metrics}
                    status, error = "failed", f"{type(e).__name__}: {e}"
                if status == "ok" and not all(math.isfinite(v) for v in values.values()):
                    status = "nan"
                    error = "non-finite " + ", ".join(
                        n for n, v in values.items() if not math.isfinite(v))
                self._record(k, row.tolist(), config, values, time.perf_counter() - t0,
                             status, error)
        return [self._cache[k] for k in keys]

    def _record(self, key: str, genome: list[int], config: dict[str, Any],
                values: dict[str, float], seconds: float, status: str, error: str | None,
                commit: bool = True) -> None:
        feasible = status == "ok" and self.is_feasible(values)
        if commit and self.archive is not None:
            self.archive.add(self.run, self.scope, {
                "key": key, "genome": genome, "config": config, "metrics": values,
                "feasible": feasible, "status": status, "fault": error, "seconds": seconds})
        self._cache[key] = values
        self.history.append({"eval": len(self.history), "genome": genome, "config": config,
                             **values, "feasible": feasible, "seconds": seconds,
                             "status": status, "fault": error})

    def failures(self) -> list[dict[str, Any]]:
        """Evaluations that raised or returned non-finite values."""
        return [r for r in self.history if r["status"] != "ok"]

    def no_front_error(self, after: str) -> BudgetError:
        """The error of a search that ends with nothing feasible (``after``: how many evaluations,
        in words). When every evaluation failed, the budgets are not the cause: the message says
        so and shows the first fault, which is what to fix."""
        failed = self.failures()
        first = ""
        if failed:
            fault = failed[0]["fault"] or failed[0]["status"]
            first = (fault.strip().splitlines() or [""])[0]
        if self.history and len(failed) == len(self.history):
            return BudgetError(f"every evaluation failed ({after}); the first: {first}")
        budget = ", ".join(f"{k} <= {v:g}" for k, v in self.budgets.items())
        msg = (f"no evaluated architecture meets the budgets ({budget}) after {after}"
               if budget else f"no evaluated architecture is feasible after {after}")
        if failed:
            msg += f"; {len(failed)} of them failed, the first: {first}"
        return BudgetError(msg)

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
