"""Hard-budget operators: repair over-budget children, sample inside the budget.

Both take a *cheap* cost callable (config list -> values; analytic FLOPs, a latency table) and
upper bounds. Neither loops without end: the repair makes at most ``max_tries`` greedy moves per
child and then falls back to the cheapest genome; the sampler draws at most ``max_rounds``
batches and repairs what rejection could not fill. Both count what they did (``stats``), so a
result can say how often the budget bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling

from evo_nas.errors import BudgetError, ConfigError
from evo_nas.metrics import is_cheap, metric_values
from evo_nas.space import SearchSpace

__all__ = ["BudgetRepair", "BudgetSampling", "budget_cost", "cheap_budgets", "operator_stats"]

CostFn = Callable[[list[dict[str, Any]]], Any]


class _Budget:
    """Costs of genomes as an (n, m) array against m upper bounds."""

    def __init__(self, space: SearchSpace, cost: CostFn, budgets: Any) -> None:
        if not callable(cost):
            raise ConfigError(f"budget cost must be callable (configs -> values), got "
                              f"{type(cost).__name__}")
        self.space = space
        self.cost = cost
        if isinstance(budgets, Mapping):
            self.names: list[str] | None = list(budgets)
            bounds = [budgets[n] for n in self.names]
        else:
            self.names = None
            bounds = list(np.atleast_1d(np.asarray(budgets, dtype=float)))
        self.bounds = np.asarray(bounds, dtype=float)
        if self.bounds.size == 0 or not np.all(np.isfinite(self.bounds)):
            raise ConfigError(f"budgets = {budgets!r}: need finite upper bounds")
        self.scale = np.maximum(np.abs(self.bounds), 1e-12)

    def costs(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        if len(X) == 0:
            return np.zeros((0, self.bounds.size))
        res = self.cost(self.space.decode_many(X))
        if isinstance(res, Mapping):
            if self.names is None:
                raise ConfigError("budget cost returned named values; give budgets as a "
                                  "mapping {name: bound}")
            missing = [n for n in self.names if n not in res]
            if missing:
                raise ConfigError(f"budget cost returned no values for {missing}")
            arr = np.column_stack([np.asarray(res[n], dtype=float).reshape(-1)
                                   for n in self.names])
        else:
            arr = np.asarray(res, dtype=float).reshape(len(X), -1)
        if arr.shape != (len(X), self.bounds.size):
            raise ConfigError(f"budget cost gave shape {arr.shape} for {len(X)} configs and "
                              f"{self.bounds.size} budgets")
        return arr

    def violation(self, C: np.ndarray) -> np.ndarray:
        """Summed relative excess over the bounds (0 when feasible; NaN cost counts as inf)."""
        v = np.maximum(C - self.bounds, 0.0) / self.scale
        v[~np.isfinite(C)] = np.inf
        return v.sum(axis=1)

    def describe(self) -> str:
        names = self.names or [f"cost[{i}]" for i in range(self.bounds.size)]
        return ", ".join(f"{n} <= {b:g}" for n, b in zip(names, self.bounds, strict=True))


class BudgetRepair(Repair):
    """Turn each over-budget child into a nearby feasible one.

    Greedy: at each of at most ``max_tries`` steps, try every single-gene change of every active
    gene (one vectorised cost call for all children), and keep the change that cuts the budget
    violation most, preferring the smallest jump in option index among equal cuts. So the most
    expensive genes shrink first and few genes change. A child still over budget after
    ``max_tries`` becomes the cheapest genome (``space.smallest()``); if even that breaks the
    budget, :class:`BudgetError` is raised (the budget is impossible), never an endless loop.

    ``stats``: ``calls``, ``children`` seen, ``repaired`` (were over budget and were fixed),
    ``fallback`` (replaced by the cheapest genome), ``moves`` (gene changes made).
    """

    def __init__(self, space: SearchSpace, cost: CostFn, budgets: float | Sequence[float] |
                 Mapping[str, float], max_tries: int = 20) -> None:
        super().__init__()
        if not isinstance(max_tries, int) or max_tries < 1:
            raise ConfigError(f"BudgetRepair.max_tries = {max_tries!r}: must be an int >= 1")
        self.space = space
        self.budget = _Budget(space, cost, budgets)
        self.max_tries = max_tries
        self.stats = {"calls": 0, "children": 0, "repaired": 0, "fallback": 0, "moves": 0}
        self._floor: np.ndarray | None = None

    @classmethod
    def from_problem(cls, problem: Any, max_tries: int = 20) -> BudgetRepair:
        """Repair against every budget of a NASProblem whose metric is marked ``cheap``."""
        cheap = cheap_budgets(problem)
        return cls(problem.space, budget_cost(problem, cheap), cheap, max_tries=max_tries)

    def _floor_genome(self) -> np.ndarray:
        if self._floor is None:
            low = self.space.smallest()
            v = self.budget.violation(self.budget.costs(low[None, :]))[0]
            if v > 0:
                raise BudgetError(f"budget {self.budget.describe()} cannot be met: even the "
                                  f"smallest architecture of space {self.space.name!r} exceeds it")
            self._floor = low
        return self._floor

    def _do(self, problem: Any, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        X = np.clip(np.round(np.asarray(X, dtype=float)), self.space.xl, self.space.xu)
        X = np.atleast_2d(self.space.canonical(X.astype(np.int64))).copy()
        self.stats["calls"] += 1
        self.stats["children"] += len(X)
        if len(X) == 0:
            return X
        viol = self.budget.violation(self.budget.costs(X))
        bad = np.flatnonzero(viol > 0)
        if bad.size == 0:
            return X
        self._floor_genome()  # fail loudly on an impossible budget before any search
        n_opt = self.space.n_options
        for _ in range(self.max_tries):
            if bad.size == 0:
                break
            cand, owner, jump = [], [], []
            for r in bad:
                act = self.space.active(X[r])
                for g in np.flatnonzero(act & (n_opt > 1)):
                    for k in range(int(n_opt[g])):
                        if k != X[r, g]:
                            y = X[r].copy()
                            y[g] = k
                            cand.append(y)
                            owner.append(r)
                            jump.append(abs(k - int(X[r, g])))
            if not cand:
                break
            C = self.space.canonical(np.stack(cand))
            cv = self.budget.violation(self.budget.costs(C))
            owner_a, jump_a = np.asarray(owner), np.asarray(jump)
            still = []
            for r in bad:
                idx = np.flatnonzero(owner_a == r)
                best = idx[np.lexsort((jump_a[idx], cv[idx]))[0]]
                if cv[best] < viol[r]:
                    X[r], viol[r] = C[best], cv[best]
                    self.stats["moves"] += 1
                    if viol[r] > 0:
                        still.append(r)
                # no single change helps: leave it for the fallback below
            fixed = set(bad.tolist()) - set(still)
            self.stats["repaired"] += sum(1 for r in fixed if viol[r] <= 0)
            bad = np.array(still, dtype=np.int64)
        left = np.flatnonzero(viol > 0)
        if left.size:
            X[left] = self._floor_genome()
            self.stats["fallback"] += int(left.size)
        return X

    def is_feasible(self, X: np.ndarray) -> np.ndarray:
        """Boolean mask of genomes within the budget (cheap: calls only the cost)."""
        return self.budget.violation(self.budget.costs(np.atleast_2d(X))) <= 0


class BudgetSampling(Sampling):
    """Uniform canonical genomes inside the budget: rejection sampling for at most ``max_rounds``
    oversampled batches, then :class:`BudgetRepair` on whatever is still missing (so the result
    is always full and feasible, and the time is bounded even when the feasible set is tiny).

    ``stats``: ``drawn``, ``rejected``, ``repaired`` (rows filled by repair).
    """

    def __init__(self, space: SearchSpace, cost: CostFn, budgets: float | Sequence[float] |
                 Mapping[str, float], max_rounds: int = 10, max_tries: int = 20) -> None:
        super().__init__()
        if not isinstance(max_rounds, int) or max_rounds < 1:
            raise ConfigError(f"BudgetSampling.max_rounds = {max_rounds!r}: must be an int >= 1")
        self.space = space
        self.repair = BudgetRepair(space, cost, budgets, max_tries=max_tries)
        self.max_rounds = max_rounds
        self.stats = {"drawn": 0, "rejected": 0, "repaired": 0}

    @classmethod
    def from_problem(cls, problem: Any, max_rounds: int = 10, max_tries: int = 20
                     ) -> BudgetSampling:
        """Sample inside every budget of a NASProblem whose metric is marked ``cheap``."""
        cheap = cheap_budgets(problem)
        return cls(problem.space, budget_cost(problem, cheap), cheap, max_rounds=max_rounds,
                   max_tries=max_tries)

    def _do(self, problem: Any, n_samples: int, *args: Any, random_state: Any = None,
            **kwargs: Any) -> np.ndarray:
        rng = random_state if random_state is not None else np.random.default_rng()
        got: list[np.ndarray] = []
        n_got = 0
        for _ in range(self.max_rounds):
            need = n_samples - n_got
            if need <= 0:
                break
            X = self.space.sample(2 * need, rng)
            ok = self.repair.is_feasible(X)
            self.stats["drawn"] += len(X)
            self.stats["rejected"] += int((~ok).sum())
            keep = X[ok][:need]
            got.append(keep)
            n_got += len(keep)
        if n_got < n_samples:
            extra = self.space.sample(n_samples - n_got, rng)
            got.append(self.repair._do(problem, extra))
            self.stats["repaired"] += n_samples - n_got
        return np.concatenate(got)[:n_samples] if got else self.space.sample(0, rng)


def cheap_budgets(problem: Any) -> dict[str, float]:
    """The budgets of a NASProblem whose metrics are marked ``cheap`` (raise if there are none)."""
    cheap = {n: b for n, b in problem.budgets.items()
             if is_cheap(problem.metrics[n])}
    if not cheap:
        raise ConfigError(f"no budget is on a cheap metric (budgets: {sorted(problem.budgets)}; "
                          f"mark cost metrics with a `cheap = True` attribute)")
    return cheap


def budget_cost(problem: Any, names: Sequence[str] | Mapping[str, float]) -> CostFn:
    """A cost callable returning ``{name: values}`` for the given metrics of a NASProblem,
    computed directly (not recorded as evaluations: only cheap metrics belong here)."""
    names = list(names)
    for n in names:
        if n not in problem.metrics:
            raise ConfigError(f"budgets.{n}: no metric named {n!r} (known: "
                              f"{sorted(problem.metrics)})")

    def cost(configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        # the metrics are read at call time, so a search that wraps them (to count cheap
        # lookups) sees the calls of operators built before it started
        return metric_values({n: problem.metrics[n] for n in names}, configs)

    return cost


def operator_stats(algorithm: Any) -> dict[str, dict[str, int]]:
    """Counters of the budget operators inside a pymoo algorithm (for a result's ``info``)."""
    out: dict[str, dict[str, int]] = {}
    repair = getattr(algorithm, "repair", None)
    if isinstance(repair, BudgetRepair):
        out["budget_repair"] = dict(repair.stats)
    init = getattr(algorithm, "initialization", None)
    sampling = getattr(init, "sampling", None)
    if isinstance(sampling, BudgetSampling):
        out["budget_sampling"] = dict(sampling.stats)
    return out
