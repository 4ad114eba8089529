"""Surrogate-assisted NSGA-II (the NSGANetV2 / MSuNAS loop) under a real-evaluation budget.

    initial design -> real evaluation -> fit predictors -> NSGA-II on the predictors
        -> pick a batch (non-dominated, spread, never evaluated before; part of it from the
           single-gene neighbours of the real front) -> real evaluation -> ...

It is a loop around pymoo, not a pymoo ``Algorithm``: each round runs a full NSGA-II on a
:class:`problems.surrogate.SurrogateProblem`. Real evaluations go through ``problem.measure``, so
the problem's history and cache hold every one of them, and the budget counts exactly those.
Expensive metrics (not marked ``cheap``) are predicted; cheap ones (FLOPs) stay exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.indicators.hv import HV
from pymoo.operators.crossover.ux import UniformCrossover
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.optimize import minimize
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from sklearn.base import clone

from evo_nas.errors import ConfigError
from evo_nas.predictors import as_predictor, check_predictor, kendall_tau, make_predictor
from evo_nas.result import SearchResult, pareto_rows
from operators import (
    BudgetRepair,
    CanonicalDuplicateElimination,
    CanonicalRepair,
    ChoiceMutation,
)
from problems.nas import NASProblem
from problems.surrogate import SurrogateProblem, is_cheap

__all__ = ["SurrogateAssistedSearch", "hypervolume", "make_surrogate", "select_batch",
           "surrogate_search"]

SELECTIONS = ("hv", "crowding")


def hypervolume(F: np.ndarray, ideal: Sequence[float], nadir: Sequence[float],
                ref: float = 1.1) -> float:
    """pymoo HV of ``F`` (minimised) normalised to ``(F - ideal) / (nadir - ideal)`` with the
    reference point ``ref`` in every coordinate; points beyond it count nothing."""
    F = np.atleast_2d(np.asarray(F, dtype=float))
    ideal, nadir = np.asarray(ideal, dtype=float), np.asarray(nadir, dtype=float)
    F = F[np.all(np.isfinite(F), axis=1)]
    if len(F) == 0:
        return 0.0
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    Z = (F - ideal) / span
    Z = Z[np.all(Z < ref, axis=1)]
    if len(Z) == 0:
        return 0.0
    return float(HV(ref_point=np.full(F.shape[1], ref))(Z))


def select_batch(F: np.ndarray, k: int, method: str = "hv") -> np.ndarray:
    """Indices of ``k`` rows of ``F`` (predicted objectives, minimised): whole non-dominated
    fronts while they fit, then spread within the front that does not, by greedy hypervolume
    contribution (``"hv"``) or crowding distance (``"crowding"``)."""
    if method not in SELECTIONS:
        raise ConfigError(f"selection = {method!r}: choose one of {SELECTIONS}")
    F = np.asarray(F, dtype=float)
    if k >= len(F):
        return np.arange(len(F))
    chosen: list[int] = []
    for front in NonDominatedSorting().do(F):
        room = k - len(chosen)
        if room <= 0:
            break
        if len(front) <= room:
            chosen.extend(int(i) for i in front)
            continue
        chosen.extend(int(i) for i in _spread(F[front], room, method, front))
    return np.asarray(chosen, dtype=np.int64)


def _spread(Ff: np.ndarray, room: int, method: str, front: np.ndarray) -> list[int]:
    lo, hi = Ff.min(axis=0), Ff.max(axis=0)
    Z = (Ff - lo) / np.where(hi > lo, hi - lo, 1.0)
    if method == "crowding":
        cd = calc_crowding_distance(Z)
        return [int(front[i]) for i in np.argsort(-cd, kind="stable")[:room]]
    # greedy hypervolume subset selection: each pick adds the most to the picks so far
    ref = np.full(Z.shape[1], 1.1)
    hv = HV(ref_point=ref)
    picked: list[int] = []
    left = list(range(len(Z)))
    base = 0.0
    for _ in range(room):
        gains = [hv(Z[picked + [i]]) - base for i in left]
        j = left[int(np.argmax(gains))]
        base += max(gains)
        picked.append(j)
        left.remove(j)
    return [int(front[i]) for i in picked]


class SurrogateAssistedSearch:
    """Surrogate-assisted NSGA-II with a hard budget of real evaluations.

    ``predictor``: a built-in name (:data:`evo_nas.predictors.PREDICTORS`), any scikit-learn
    regressor (an encoder is put in front, see :func:`evo_nas.predictors.as_predictor`), or a
    mapping ``{metric: predictor}``; cloned and refitted on all real evaluations each round.
    ``features``: genome feature function for the encoder (default: the problem's ``features``
    attribute, e.g. NB201 cell features).
    ``budget``: real evaluations this run may spend, initial design included.
    ``n_initial``: random initial design inside cheap budgets (default ``min(50, budget // 4)``,
    at least 10; the smallest and largest architectures first when ``include_extremes``).
    ``batch_size``: architectures evaluated per round.
    ``pop_size``, ``generations``: the NSGA-II run on the surrogate each round.
    ``selection``: ``"hv"`` or ``"crowding"`` spread of the batch.
    ``local_fraction``: share of each batch taken from never-evaluated single-gene neighbours of
    the real front, chosen on the surrogate the same way (local search around what is known to
    be good; on NAS-Bench-201 it adds about 0.001 of the true front's HV at 300 evaluations).
    ``expensive``: metrics to predict (default: objectives and budget metrics not marked cheap).
    ``hv_bounds``: ``(ideal, nadir)`` in objective units for the reported HV curve (default: the
    initial design's range; values are normalised HV with reference 1.1, so may exceed 1).

    ``info`` of the result: settings, ``hv_curve`` (``[real evaluations, HV]`` after the initial
    design and each round), ``rounds`` (per round: HV, fit time, candidates seen on the surrogate,
    Kendall tau of the batch's predictions against its real values) and, with cheap budgets,
    ``budget_repair`` counters (every repair the loop made, on the surrogate included).
    """

    def __init__(
        self,
        predictor: str | Any | Mapping[str, Any] = "default",
        budget: int | None = None,
        n_initial: int | None = None,
        batch_size: int = 20,
        pop_size: int = 100,
        generations: int = 30,
        selection: str = "hv",
        expensive: Sequence[str] | None = None,
        features: Callable[[np.ndarray], Any] | None = None,
        include_extremes: bool = True,
        hv_bounds: tuple[Sequence[float], Sequence[float]] | None = None,
        local_fraction: float = 0.3,
    ) -> None:
        self.predictor = predictor
        self.budget = budget
        self.n_initial = n_initial
        self.batch_size = batch_size
        self.pop_size = pop_size
        self.generations = generations
        self.selection = selection
        self.expensive = expensive
        self.features = features
        self.include_extremes = include_extremes
        self.hv_bounds = hv_bounds
        self.local_fraction = local_fraction

    # ----------------------------------------------------------------- checks
    def _settings(self, budget: int | None) -> tuple[int, int]:
        budget = self.budget if budget is None else budget
        if not isinstance(budget, int | np.integer) or budget < 1:
            raise ConfigError(f"surrogate budget = {budget!r}: must be a positive int (real "
                              f"evaluations)")
        n_init = self.n_initial if self.n_initial is not None else \
            max(min(50, budget // 4), min(budget, 10))
        if not isinstance(n_init, int | np.integer) or n_init < 2:
            raise ConfigError(f"surrogate n_initial = {n_init!r}: must be an int >= 2 (a "
                              f"predictor needs data)")
        if budget < n_init:
            raise ConfigError(f"surrogate budget = {budget} is smaller than the initial design "
                              f"n_initial = {n_init}")
        for name in ("batch_size", "pop_size", "generations"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ConfigError(f"surrogate {name} = {v!r}: must be a positive int")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"surrogate selection = {self.selection!r}: choose one of "
                              f"{SELECTIONS}")
        if not 0.0 <= float(self.local_fraction) <= 1.0:
            raise ConfigError(f"surrogate local_fraction = {self.local_fraction!r}: must be in "
                              f"[0, 1]")
        return int(budget), int(n_init)

    def _expensive(self, problem: NASProblem) -> list[str]:
        needed = list(dict.fromkeys([*problem.objective_names, *problem.budgets]))
        if self.expensive is None:
            return [n for n in needed if not is_cheap(problem, n)]
        names = list(self.expensive)
        for n in names:
            if n not in problem.metrics:
                raise ConfigError(f"surrogate expensive = {n!r}: not a metric of the problem "
                                  f"(known: {sorted(problem.metrics)})")
        return names

    def _base_predictors(self, problem: NASProblem, names: list[str], seed: int
                         ) -> dict[str, Any]:
        features = self.features if self.features is not None else \
            getattr(problem, "features", None)
        spec = self.predictor
        out = {}
        for n in names:
            p = spec.get(n, "default") if isinstance(spec, Mapping) else spec
            if isinstance(p, str):
                out[n] = make_predictor(p, problem.space, features=features, random_state=seed)
            else:
                check_predictor(p, f"predictor for {n!r}")
                out[n] = as_predictor(p, problem.space, features=features)
        return out

    # ----------------------------------------------------------------- the loop
    def run(self, problem: NASProblem, seed: int = 0, budget: int | None = None,
            progress: bool = False) -> SearchResult:
        """Spend at most ``budget`` new real evaluations on ``problem``; return its result."""
        if not isinstance(problem, NASProblem):
            raise ConfigError(f"surrogate search needs a NASProblem, got "
                              f"{type(problem).__name__}")
        budget, n_init = self._settings(budget)
        problem.check_budgets()
        space = problem.space
        rng = np.random.default_rng(seed)
        expensive = self._expensive(problem)
        base = self._base_predictors(problem, expensive, seed)
        has_cheap_budget = any(is_cheap(problem, n) for n in problem.budgets)
        repair = BudgetRepair.from_problem(problem) if has_cheap_budget else CanonicalRepair(space)
        seen = {np.asarray(h["genome"], dtype=np.int64).tobytes() for h in problem.history}
        start = len(problem.history)
        t0 = time.perf_counter()

        def spent() -> int:
            return len(problem.history) - start

        # 1. initial design (inside cheap budgets; the extremes first: cheap to know, they anchor
        #    the front)
        first = self._fresh(space, repair, rng, n_init, seen, extremes=self.include_extremes)
        problem.measure(first)
        seen.update(r.tobytes() for r in first)
        ideal, nadir = self._bounds(problem, start)
        rounds: list[dict[str, Any]] = []
        curve = [[spent(), self._hv(problem, start, ideal, nadir)]]

        # 2. rounds: fit -> NSGA-II on the surrogate -> batch -> real evaluation
        while spent() < budget:
            k = min(self.batch_size, budget - spent())
            t_fit = time.perf_counter()
            fitted, info = self._fit(problem, base, expensive)
            t_fit = time.perf_counter() - t_fit
            sp = SurrogateProblem(problem, fitted, record=True)
            algo = NSGA2(pop_size=self.pop_size, sampling=self._seeds(problem, repair, rng),
                         crossover=UniformCrossover(prob=0.9), mutation=ChoiceMutation(space),
                         repair=repair, eliminate_duplicates=CanonicalDuplicateElimination(space))
            minimize(sp, algo, ("n_gen", self.generations), seed=int(rng.integers(2**31 - 1)),
                     verbose=False, copy_algorithm=False)  # so the repair's counters add up
            X, F, G = sp.visited()
            new = np.array([r.tobytes() not in seen for r in X], dtype=bool)
            ok = new & np.all(np.isfinite(F), axis=1)
            if G.size:
                ok &= np.all(G <= 0, axis=1)
            idx = np.flatnonzero(ok)
            k_local = int(round(self.local_fraction * k))
            local = self._local(problem, sp, repair, seen, k_local) if k_local else X[:0]
            taken = seen | {r.tobytes() for r in local}
            idx = np.array([i for i in idx if X[i].tobytes() not in taken], dtype=np.int64)
            k_global = k - len(local)
            pick = idx[select_batch(F[idx], k_global, self.selection)] if idx.size else idx
            batch = np.concatenate([local, X[pick]])
            if len(batch) < k:  # surrogate ran dry: top up with fresh random architectures
                extra = self._fresh(space, repair, rng, k - len(batch),
                                    seen | {r.tobytes() for r in batch}, extremes=False)
                batch = np.concatenate([batch, extra]) if len(extra) else batch
            if len(batch) == 0:
                break  # every architecture inside the budget has been evaluated
            predicted = sp.values(batch)
            problem.measure(batch)
            seen.update(r.tobytes() for r in batch)
            hv = self._hv(problem, start, ideal, nadir)
            curve.append([spent(), hv])
            rounds.append({"n_evals": spent(), "hv": hv, "fit_seconds": round(t_fit, 3),
                           "candidates": int(idx.size), **info,
                           "batch_tau": self._batch_tau(problem, batch, predicted, expensive)})
            if progress:
                print(f"surrogate: {spent()}/{budget} evaluations, HV {hv:.4f}")

        front = pareto_rows(problem.history, problem.objective_names)
        if not front:
            raise problem.no_front_error(f"{spent()} surrogate-guided evaluations")
        return SearchResult(
            problem.objective_names, dict(problem.budgets), problem.history, front,
            time.perf_counter() - t0,
            {"algorithm": "surrogate", "seed": seed, "budget": budget, "n_initial": n_init,
             "batch_size": self.batch_size, "pop_size": self.pop_size,
             "generations": self.generations, "selection": self.selection,
             "local_fraction": self.local_fraction,
             "predictor": _describe(self.predictor), "expensive": expensive,
             "hv_bounds": {"ideal": list(map(float, ideal)), "nadir": list(map(float, nadir))},
             "hv_curve": curve, "rounds": rounds,
             **({"budget_repair": dict(repair.stats)} if isinstance(repair, BudgetRepair)
                else {})})

    def run_search(self, problem: NASProblem, pop_size: int, generations: int, seed: int = 0,
                   progress: bool = False) -> SearchResult:
        """Entry point for :func:`evo_nas.search.search`: without an explicit ``budget`` the
        loop spends ``pop_size * generations`` real evaluations, what NSGA-II would."""
        budget = self.budget if self.budget is not None else pop_size * generations
        return self.run(problem, seed=seed, budget=budget, progress=progress)

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def _fresh(space: Any, repair: Any, rng: np.random.Generator, n: int, seen: set[bytes],
               extremes: bool) -> np.ndarray:
        """Up to ``n`` distinct, never-evaluated genomes inside the cheap budgets (bounded)."""
        out: list[np.ndarray] = []
        keys = set(seen)
        pool = [space.smallest(), space.largest()] if extremes else []
        for _ in range(20):
            if len(out) >= n:
                break
            cand = np.concatenate([np.array(pool, dtype=np.int64).reshape(-1, space.n_var),
                                   space.sample(2 * (n - len(out)), rng)])
            pool = []
            cand = repair._do(None, cand)
            for r in cand:
                k = r.tobytes()
                if k not in keys and len(out) < n:
                    keys.add(k)
                    out.append(r)
        return np.array(out, dtype=np.int64).reshape(-1, space.n_var)

    def _seeds(self, problem: NASProblem, repair: Any, rng: np.random.Generator) -> np.ndarray:
        """Initial NSGA-II population: the real front so far (the surrogate search starts from
        what is known to be good) plus random genomes."""
        front = pareto_rows(problem.history, problem.objective_names)
        good = [np.asarray(r["genome"], dtype=np.int64) for r in front][: self.pop_size // 2]
        rest = repair._do(None, problem.space.sample(self.pop_size - len(good), rng))
        return np.concatenate([np.array(good, dtype=np.int64).reshape(-1, problem.n_var), rest])

    def _local(self, problem: NASProblem, sp: SurrogateProblem, repair: Any, seen: set[bytes],
               k: int) -> np.ndarray:
        """``k`` never-evaluated single-gene neighbours of the real front, chosen on the
        surrogate like the global batch (local search around what is known to be good)."""
        space = problem.space
        front = [np.asarray(r["genome"], dtype=np.int64)
                 for r in pareto_rows(problem.history, problem.objective_names)]
        cand = []
        for x in front:
            act = space.active(x)
            for g in np.flatnonzero(act):
                for v in range(int(space.n_options[g])):
                    if v != x[g]:
                        y = x.copy()
                        y[g] = v
                        cand.append(y)
        if not cand:
            return np.zeros((0, space.n_var), dtype=np.int64)
        C = repair._do(None, np.stack(cand))
        uniq = {r.tobytes(): r for r in C if r.tobytes() not in seen}
        if not uniq:
            return np.zeros((0, space.n_var), dtype=np.int64)
        C = np.stack(list(uniq.values()))
        vals = sp.values(C)
        F = np.column_stack([vals[o] for o in problem.objective_names])
        ok = np.all(np.isfinite(F), axis=1)
        for name, bound in problem.budgets.items():
            ok &= vals[name] <= bound
        C, F = C[ok], F[ok]
        if not len(C):
            return C
        return C[select_batch(F, k, self.selection)]

    @staticmethod
    def _fit(problem: NASProblem, base: Mapping[str, Any], names: list[str]
             ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Refit a clone of each predictor on every finite real value of its metric (failed
        evaluations are recorded in the history, never used as targets)."""
        X = np.array([h["genome"] for h in problem.history], dtype=np.int64)
        fitted, info = {}, {}
        for n in names:
            y = np.array([h[n] for h in problem.history], dtype=float)
            ok = np.isfinite(y)
            if ok.sum() < 2:
                raise ConfigError(f"surrogate: fewer than 2 finite real values of {n!r} to fit a "
                                  f"predictor on (failed evaluations are skipped)")
            model = clone(base[n]).fit(X[ok], y[ok])
            fitted[n] = model
            best = getattr(model[-1] if hasattr(model, "steps") else model, "best_name_", None)
            if best is not None:
                info[f"{n}_predictor"] = best
        return fitted, info

    def _bounds(self, problem: NASProblem, start: int) -> tuple[np.ndarray, np.ndarray]:
        if self.hv_bounds is not None:
            ideal, nadir = (np.asarray(b, dtype=float) for b in self.hv_bounds)
            if ideal.shape != (problem.n_obj,) or nadir.shape != (problem.n_obj,):
                raise ConfigError(f"hv_bounds must be two vectors of {problem.n_obj} values")
            return ideal, nadir
        F = _feasible_F(problem, start)
        if len(F) == 0:
            return np.zeros(problem.n_obj), np.ones(problem.n_obj)
        return F.min(axis=0), F.max(axis=0)

    @staticmethod
    def _hv(problem: NASProblem, start: int, ideal: np.ndarray, nadir: np.ndarray) -> float:
        F = _feasible_F(problem, start)
        return hypervolume(F, ideal, nadir) if len(F) else 0.0

    @staticmethod
    def _batch_tau(problem: NASProblem, batch: np.ndarray, predicted: dict[str, np.ndarray],
                   names: list[str]) -> dict[str, float]:
        """How well the surrogate ranked the batch it chose (Kendall tau, predicted vs real)."""
        recs = problem.measure(batch)  # cached: no new evaluation
        out = {}
        for n in names:
            real = np.array([r[n] for r in recs], dtype=float)
            ok = np.isfinite(real)
            if ok.sum() >= 2 and n in predicted:
                out[n] = round(kendall_tau(real[ok], predicted[n][ok]), 4)
        return out


def _feasible_F(problem: NASProblem, start: int) -> np.ndarray:
    rows = [h for h in problem.history[start:] if h["feasible"]]
    if not rows:
        return np.zeros((0, problem.n_obj))
    return np.array([[h[o] for o in problem.objective_names] for h in rows], dtype=float)


def _describe(p: Any) -> Any:
    if isinstance(p, str):
        return p
    if isinstance(p, Mapping):
        return {k: _describe(v) for k, v in p.items()}
    return type(p).__name__


def make_surrogate(space: Any = None, pop_size: int = 20, **kwargs: Any
                   ) -> SurrogateAssistedSearch:
    """Registry builder (``search.algorithm = "surrogate"``). The registry's ``pop_size`` only
    sets the default budget (``pop_size * generations`` real evaluations, in ``run_search``);
    the surrogate NSGA-II population is the ``surrogate_pop_size`` keyword (default 100)."""
    if "surrogate_pop_size" in kwargs:
        kwargs["pop_size"] = kwargs.pop("surrogate_pop_size")
    predictor = kwargs.get("predictor", "default")
    if isinstance(predictor, str):
        from evo_nas.predictors import PREDICTORS

        if predictor not in PREDICTORS:
            from evo_nas.errors import ConfigError

            raise ConfigError(f"search.options.predictor = {predictor!r}: choose one of "
                              f"{sorted(PREDICTORS)}")
    return SurrogateAssistedSearch(**kwargs)


def surrogate_search(problem: NASProblem, budget: int = 300, seed: int = 0,
                     predictor: str | Any | Mapping[str, Any] = "default", **kwargs: Any
                     ) -> SearchResult:
    """Function form: ``SurrogateAssistedSearch(predictor, budget, **kwargs).run(problem)``."""
    return SurrogateAssistedSearch(predictor=predictor, budget=budget, **kwargs).run(
        problem, seed=seed)

