"""NASProblem: architectures as integer genomes, named metrics as objectives and budgets."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import getitem
from typing import TYPE_CHECKING, Any

import numpy as np
from pymoo.core.problem import Problem

from evo_nas.errors import BudgetError, ConfigError, EvoNasError
from evo_nas.metrics import Metric, is_cheap, metric_values
from evo_nas.space import SearchSpace

if TYPE_CHECKING:
    from evo_nas.parallel import Executor


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
        executor: Executor | None = None,
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
        self.n_real = 0  # distinct genomes this run computed (cache and archive hits excluded)
        self.archive: Any = None
        self.executor: Executor | None = executor  # None: expensive metrics run in this process
        self._prepared: Any = None
        self.on_evaluated: Callable[[], Any] | None = None  # called after each real evaluation
        self.run = "default"
        self.scope = f"{space.name}|{','.join(sorted(self.metrics))}"
        super().__init__(n_var=space.n_var, n_obj=len(self.objective_names),
                         n_ieq_constr=len(self.budgets), xl=space.xl, xu=space.xu, vtype=int)

    def __getstate__(self) -> dict[str, Any]:
        """Picklable without its executor (a pool or a Dask client belongs to this process) or
        its per-evaluation callback."""
        state = self.__dict__.copy()
        state["executor"], state["_prepared"], state["on_evaluated"] = None, None, None
        return state

    def attach(self, archive: Any, run: str, scope: str | None = None) -> NASProblem:
        """Store every evaluation in ``archive`` under ``run`` and reuse any earlier successful
        evaluation with the same ``scope`` (space + evaluator identity) instead of recomputing.
        Rows this run already committed (a resumed run) are loaded back into :attr:`history`."""
        self.archive, self.run = archive, run
        if scope is not None:
            self.scope = scope
        reused = archive.reused_keys(run, self.scope)
        for row in archive.rows(run):
            self._record(row["key"], row["genome"], row["config"], row["metrics"],
                         row["seconds"], row["status"], row["fault"], commit=False)
            self.n_real += row["key"] not in reused
        return self

    def unseen(self, X: np.ndarray) -> list[str]:
        """The distinct canonical keys of ``X``, in order of first appearance, that would need a
        real evaluation: neither in memory nor a successful archive entry of this scope."""
        X = np.atleast_2d(self.space.canonical(np.round(X).astype(np.int64)))
        keys = list(dict.fromkeys(self.space.keys(X)))
        keys = [k for k in keys if k not in self._cache]
        if keys and self.archive is not None:
            cached = self.archive.lookup(self.scope, keys)
            keys = [k for k in keys if k not in cached]
        return keys

    # ----------------------------------------------------------------- evaluation
    def measure(self, X: np.ndarray) -> list[dict[str, float]]:
        """Every metric for every genome of ``X``; each distinct canonical genome is computed once
        (memory cache, then the archive), and each new result is committed as soon as it and
        every result before it in the batch exist (so the archive's order is the batch's order
        of first appearance, whatever the number of workers).

        New genomes are computed together: cheap metrics (``cheap = True``: cost models, lookup
        tables) in one call on the whole list (on the genome matrix for metrics with a
        ``batch_genomes`` method), expensive ones one architecture per task through
        :attr:`executor` (in this process when None; see :mod:`evo_nas.parallel`).

        A metric that raises (other than an :class:`EvoNasError`, which is a user error and
        propagates) or returns NaN marks that architecture failed: its metrics are NaN, it is
        infeasible, the error is recorded, and the search goes on. So does a worker process that
        dies on it when it runs alone (its one retry; see :class:`evo_nas.parallel.WorkerDied`).
        """
        X = np.atleast_2d(self.space.canonical(np.round(X).astype(np.int64)))
        keys = self.space.keys(X)
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if todo:
            first: dict[str, int] = {}
            for i, k in enumerate(keys):
                first.setdefault(k, i)
            cached = self.archive.lookup(self.scope, todo) if self.archive is not None else {}
            new = [k for k in todo if k not in cached]
            rows = X[[first[k] for k in new]] if new else X[:0]
            configs = self._decode(rows)
            results = self._compute_new(rows, configs)
            done: dict[int, tuple[dict[str, float], str, str | None, float]] = {}
            j = 0
            genomes = X.tolist()
            for k in todo:
                row = genomes[first[k]]
                if k in cached:
                    self._record(k, row, self.space.decode(row), cached[k]["metrics"],
                                 cached[k]["seconds"], "ok", None)
                    continue
                while j not in done:
                    i, out = next(results)
                    done[i] = out
                values, status, error, seconds = done.pop(j)
                self.n_real += 1
                if self.on_evaluated is not None:  # e.g. a progress bar, per evaluation
                    self.on_evaluated()
                self._record(k, row, configs[j], values, seconds, status, error)
                j += 1
        return [self._cache[k] for k in keys]

    def _decode(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """``space.decode`` of canonical rows, without canonicalising again (the hot path)."""
        opts = [c.options for c in self.space.choices]
        names = [c.name for c in self.space.choices]
        return [dict(zip(names, map(getitem, opts, row), strict=True))
                for row in rows.tolist()]

    def _compute_new(self, rows: np.ndarray, configs: list[dict[str, Any]]
                     ) -> Iterator[tuple[int, tuple[dict[str, float], str, str | None, float]]]:
        """``(index, (values, status, error, seconds))`` for each new genome, in the order they
        finish: cheap metrics first, in one call; then the expensive ones through the executor."""
        n = len(configs)
        if not n:
            return
        cheap = {k: f for k, f in self.metrics.items() if is_cheap(f)}
        dear = {k: f for k, f in self.metrics.items() if k not in cheap}
        t0 = time.perf_counter()
        cheap_vals, cheap_err = self._compute_cheap(cheap, rows, configs)
        share = (time.perf_counter() - t0) / n
        if not dear:  # every metric is cheap: whole rows at once (the zero-cost hot path)
            names = list(self.metrics)
            table = np.column_stack([cheap_vals[k] for k in names])
            finite = np.isfinite(table).all(axis=1).tolist()
            for i, row in enumerate(table.tolist()):
                if cheap_err[i] is not None:
                    yield i, self._outcome({}, "failed", cheap_err[i], share)
                elif finite[i]:
                    yield i, (dict(zip(names, row, strict=True)), "ok", None, share)
                else:
                    yield i, self._outcome(dict(zip(names, row, strict=True)), "ok", None, share)
            return
        tasks = [(dear, c) for i, c in enumerate(configs) if cheap_err[i] is None]
        index = [i for i in range(n) if cheap_err[i] is None]
        columns = {k: v.tolist() for k, v in cheap_vals.items()}  # Python floats, read once
        for i in range(n):
            if cheap_err[i] is not None:
                yield i, self._outcome({}, "failed", cheap_err[i], share)
        if not tasks:
            return
        executor = self.executor
        if executor is None:
            from evo_nas.parallel import SerialExecutor

            executor = SerialExecutor()
        elif self._prepared is not executor:
            specs = {}
            for f in dear.values():
                spec = getattr(f, "worker_spec", None)
                if spec is not None:
                    specs[spec.digest] = spec
            executor.prepare(list(specs.values()))
            self._prepared = executor
        from evo_nas.parallel import WorkerDied

        for t, res in executor.run(evaluate_expensive, tasks):
            i = index[t]
            if isinstance(res, WorkerDied):
                yield i, self._outcome({}, "failed", f"WorkerDied: {res.message}", share)
                continue
            values, status, error, seconds = res
            if status == "raise":
                raise error  # an EvoNasError: a user error, as in the driver
            values = {**{k: v[i] for k, v in columns.items()}, **values}
            yield i, self._outcome(values, status, error, seconds + share)

    def _outcome(self, values: dict[str, float], status: str, error: Any, seconds: float
                 ) -> tuple[dict[str, float], str, str | None, float]:
        """Metrics in :attr:`metrics` order (NaN when failed) and the status NaN values give."""
        if status != "ok":
            values = {}
        nan = float("nan")
        values = {k: float(values.get(k, nan)) for k in self.metrics}
        if status == "ok" and not all(map(math.isfinite, values.values())):
            status = "nan"
            error = "non-finite " + ", ".join(
                n for n, v in values.items() if not math.isfinite(v))
        return values, status, error, seconds

    @staticmethod
    def _compute_cheap(metrics: Mapping[str, Metric], rows: np.ndarray,
                       configs: list[dict[str, Any]]
                       ) -> tuple[dict[str, np.ndarray], list[str | None]]:
        """Cheap metrics of all new genomes in one call; if that raises, one call per genome, so
        a fault fails only its own architecture."""
        n = len(configs)
        if not metrics:
            return {}, [None] * n
        try:
            return NASProblem._compute_values(metrics, configs, rows), [None] * n
        except EvoNasError:
            raise
        except Exception:
            pass
        vals = {k: np.full(n, np.nan) for k in metrics}
        errors: list[str | None] = [None] * n
        for i in range(n):
            try:
                one = NASProblem._compute_values(metrics, [configs[i]], rows[i:i + 1])
            except EvoNasError:
                raise
            except Exception as e:  # a fault in one evaluation must not end the search
                errors[i] = f"{type(e).__name__}: {e}"
                continue
            for k, v in one.items():
                vals[k][i] = v[0]
        return vals, errors

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

    def cheap_objectives(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """The objectives that are free to look up (``cheap`` metrics: cost models, lookup
        tables) on the genomes ``X``, NaN where a cheap budget is broken: what informed
        operators may consult without an evaluation (nothing is recorded; a search counts these
        calls as lookups). Empty when no objective is cheap."""
        names = [n for n in self.objective_names if is_cheap(self.metrics[n])]
        if not names:
            return {}
        X = np.atleast_2d(self.space.canonical(np.asarray(X)))
        bounded = [n for n in self.budgets if is_cheap(self.metrics[n])]
        metrics = {n: self.metrics[n] for n in dict.fromkeys(names + bounded)}
        by_genome = all(getattr(m, "batch_genomes", None) is not None for m in metrics.values())
        configs = [{}] * len(X) if by_genome else self._decode(X)  # unread when by genome
        values = metric_values(metrics, configs, X)
        ok = np.ones(len(X), dtype=bool)
        for n in bounded:
            ok &= values[n] <= self.budgets[n]
        return {n: np.where(ok, values[n], np.nan) for n in names}

    def _compute(self, configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        return self._compute_values(self.metrics, configs)

    @staticmethod
    def _compute_values(metrics: Mapping[str, Metric], configs: list[dict[str, Any]],
                        genomes: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Named value arrays of ``metrics`` on ``configs`` (also what a worker runs); see
        :func:`evo_nas.metrics.metric_values`."""
        return metric_values(metrics, configs, genomes)

    def is_feasible(self, rec: Mapping[str, float]) -> bool:
        for n in self.objective_names:
            if not math.isfinite(rec[n]):
                return False
        return all(rec[n] <= b for n, b in self.budgets.items())

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
        cheap = [n for n in names if is_cheap(self.metrics[n])]
        if not cheap:
            return
        config = self.space.decode(self.space.smallest())
        values = metric_values({n: self.metrics[n] for n in cheap}, [config])
        for n in cheap:
            val = float(values[n][0])
            if val > self.budgets[n]:
                raise BudgetError(
                    f"budget {n} <= {self.budgets[n]:g} cannot be met: the smallest architecture "
                    f"of space {self.space.name!r} already has {n} = {val:.4g}"
                )


def evaluate_expensive(metrics: Mapping[str, Metric], config: dict[str, Any]
                       ) -> tuple[dict[str, float], str, Any, float]:
    """One architecture's expensive metrics: the task an executor runs (in a worker process, or
    in the driver). Returns ``(values, status, error, seconds)``; a fault is returned, not
    raised, so it comes back as data; an :class:`EvoNasError` comes back with status
    ``"raise"`` for the driver to raise."""
    t0 = time.perf_counter()
    try:
        values = {n: float(v[0]) for n, v in NASProblem._compute_values(metrics, [config]).items()}
    except EvoNasError as e:
        return {}, "raise", e, time.perf_counter() - t0
    except Exception as e:  # a fault in one evaluation must not end the search
        return {}, "failed", f"{type(e).__name__}: {e}", time.perf_counter() - t0
    return values, "ok", None, time.perf_counter() - t0
