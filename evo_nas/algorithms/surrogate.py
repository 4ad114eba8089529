"""Surrogate-assisted NSGA-II (the NSGANetV2 / MSuNAS loop) under a real-evaluation budget.

    initial design -> real evaluation -> fit predictors -> NSGA-II on the predictors
        -> pick a batch (non-dominated, spread, never evaluated before; part of it from the
           single-gene neighbours of the real front) -> real evaluation -> ...

It is a loop around pymoo, not a pymoo ``Algorithm``: each round runs a full NSGA-II on a
:class:`problems.surrogate.SurrogateProblem`. Real evaluations go through ``problem.measure``, so
the problem's history and cache hold every one of them, and the budget counts exactly the
distinct ones it computed (``problem.n_real``; archive hits are free). Expensive metrics (not
marked ``cheap``) are predicted; cheap ones (FLOPs) stay exact. With an archive attached, the
loop's state is saved at every round boundary, so a killed run resumes exactly (see
:class:`SurrogateAssistedSearch`).
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
from tqdm.auto import tqdm

from evo_nas.algorithms.lookups import LookupCounter, counting_cheap_lookups
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
    ``budget``: distinct real evaluations this run may spend, initial design included (archive
    and cache hits are free); the run stops at exactly that many unless the space runs out.
    ``n_initial``: random initial design inside cheap budgets (default ``min(50, budget // 4)``,
    at least 10; the smallest and largest architectures first when ``include_extremes``).
    ``batch_size``: architectures evaluated per round (``search(pop_size=...)`` sets it).
    ``max_rounds``: the most rounds after the initial design (``search(generations=...)``;
    ``None``: until the budget is spent).
    ``inner_pop_size``, ``inner_generations``: the NSGA-II run on the predictors each round.
    ``selection``: ``"hv"`` or ``"crowding"`` spread of the batch.
    ``local_fraction``: share of each batch taken from never-evaluated single-gene neighbours of
    the real front, chosen on the surrogate the same way (local search around what is known to
    be good). Default 0.5: on a user's NB201 table with a declared cell, 10 seeds of 300
    evaluations, HV ratio 0.9958 / 0.9962 / 0.9948 (FLOPs / pixel3 / fpga) against 0.9950 /
    0.9947 / 0.9948 at 0.3 (``benchmarks/bench_predictor.py``).
    ``expensive``: metrics to predict (default: objectives and budget metrics not marked cheap).
    ``hv_bounds``: ``(ideal, nadir)`` in objective units for the reported HV curve (default: the
    initial design's range; values are normalised HV with reference 1.1, so may exceed 1).

    With an archive attached to the problem (:meth:`NASProblem.attach`) the loop is a resumable
    run like NSGA-II: after the initial design and after every round its state (the evaluated
    genomes in order, the round, the RNG, the curves and counters) is saved with
    :meth:`Archive.save_state`, and a later :meth:`run` on the same archived run continues from
    the last saved round. The interrupted round is replayed from the same state, so it picks
    the same batch; what it had already evaluated is read back from the archive. A killed run
    therefore spends exactly the budget and ends with the front of an uninterrupted one.

    ``info`` of the result: settings, ``real_evaluations``, ``cheap_lookups`` (cheap metrics
    computed on genomes never evaluated: the surrogate's exact costs, budget repairs),
    ``stop_reason`` (``budget``, ``rounds``, ``exhausted``), ``hv_curve`` (``[real evaluations,
    HV]`` after the initial design and each round), ``rounds`` (per round: HV, fit time,
    candidates seen on the surrogate, Kendall tau of the batch's predictions against its real
    values) and, with cheap budgets, ``budget_repair`` counters.
    """

    def __init__(
        self,
        predictor: str | Any | Mapping[str, Any] = "default",
        budget: int | None = None,
        n_initial: int | None = None,
        batch_size: int = 20,
        inner_pop_size: int = 100,
        inner_generations: int = 30,
        selection: str = "hv",
        expensive: Sequence[str] | None = None,
        features: Callable[[np.ndarray], Any] | None = None,
        include_extremes: bool = True,
        hv_bounds: tuple[Sequence[float], Sequence[float]] | None = None,
        local_fraction: float = 0.5,
        max_rounds: int | None = None,
    ) -> None:
        self.predictor = predictor
        self.budget = budget
        self.n_initial = n_initial
        self.batch_size = batch_size
        self.inner_pop_size = inner_pop_size
        self.inner_generations = inner_generations
        self.selection = selection
        self.expensive = expensive
        self.features = features
        self.include_extremes = include_extremes
        self.hv_bounds = hv_bounds
        self.local_fraction = local_fraction
        self.max_rounds = max_rounds

    # ----------------------------------------------------------------- checks
    def _settings(self, budget: int | None) -> tuple[int, int]:
        budget = self.budget if budget is None else budget
        if budget is None:
            raise ConfigError("surrogate budget: not set; give budget = N real evaluations "
                              "(search(budget=N), config search.budget, --budget N)")
        if not isinstance(budget, int | np.integer) or isinstance(budget, bool) or budget < 1:
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
        for name in ("batch_size", "inner_pop_size", "inner_generations"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ConfigError(f"surrogate {name} = {v!r}: must be a positive int")
        if self.max_rounds is not None and (not isinstance(self.max_rounds, int | np.integer)
                                            or self.max_rounds < 1):
            raise ConfigError(f"surrogate max_rounds = {self.max_rounds!r}: must be a positive "
                              f"int or None")
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

    def _run_settings(self, budget: int, n_init: int, seed: int, expensive: list[str]
                      ) -> dict[str, Any]:
        """What must match for a saved run to be continued (JSON, as stored)."""
        return {"algorithm": "surrogate", "seed": seed, "budget": budget, "n_initial": n_init,
                "batch_size": int(self.batch_size), "max_rounds": self.max_rounds,
                "inner_pop_size": int(self.inner_pop_size),
                "inner_generations": int(self.inner_generations), "selection": self.selection,
                "local_fraction": float(self.local_fraction),
                "include_extremes": bool(self.include_extremes),
                "predictor": _describe(self.predictor), "expensive": expensive}

    # ----------------------------------------------------------------- the loop
    def run(self, problem: NASProblem, seed: int = 0, budget: int | None = None,
            progress: bool = False) -> SearchResult:
        """Spend ``budget`` distinct real evaluations on ``problem`` (resuming its archived run
        when one was saved); return its result."""
        if not isinstance(problem, NASProblem):
            raise ConfigError(f"surrogate search needs a NASProblem, got "
                              f"{type(problem).__name__}")
        budget, n_init = self._settings(budget)
        problem.check_budgets()
        expensive = self._expensive(problem)
        base = self._base_predictors(problem, expensive, seed)
        settings = self._run_settings(budget, n_init, seed, expensive)
        saved = problem.archive.last_state(problem.run) if problem.archive is not None else None
        if saved is not None and saved[1].get("settings") != settings:
            raise ConfigError(f"run {problem.run!r} was started with {saved[1].get('settings')};"
                              f" resuming it with {settings} would not continue the same search")
        state = saved[1] if saved is not None else None
        with counting_cheap_lookups(problem, state["cheap_lookups"] if state else 0) as lookups:
            return self._loop(problem, seed, budget, n_init, expensive, base, settings, state,
                              lookups, progress)

    def _loop(self, problem: NASProblem, seed: int, budget: int, n_init: int,
              expensive: list[str], base: dict[str, Any], settings: dict[str, Any],
              state: dict[str, Any] | None, lookups: LookupCounter, progress: bool
              ) -> SearchResult:
        space = problem.space
        has_cheap_budget = any(is_cheap(problem, n) for n in problem.budgets)
        repair = BudgetRepair.from_problem(problem) if has_cheap_budget else CanonicalRepair(space)
        t0 = time.perf_counter()
        run = _LoopState(problem)
        if state is None:  # a fresh run: what the problem knows already is prior knowledge
            run.start(problem.history, problem.n_real, np.random.default_rng(seed))
        else:
            run.restore(state, repair)
        resumed_from = state["round"] if state else None
        bar = tqdm(total=budget, initial=min(run.spent(), budget), desc="surrogate",
                   unit="eval", disable=not progress, leave=False)
        if progress:  # the bar moves as each real evaluation finishes, not once per round
            problem.on_evaluated = lambda: bar.update(min(run.spent(), budget) - bar.n)

        def boundary() -> None:
            """Save the state of this round boundary (with an archive) and show progress."""
            run.mark = run.spent()
            if problem.archive is not None:
                problem.archive.save_state(problem.run, run.round,
                                           run.state(settings, repair, lookups.n))
            bar.update(min(run.spent(), budget) - bar.n)
            if run.curve:
                bar.set_postfix(round=run.round, hv=f"{run.curve[-1][1]:.4f}")

        try:
            if state is None:
                boundary()  # round 0: a kill during the initial design replays it exactly
            if run.round == 0:
                # 1. initial design (inside cheap budgets; the extremes first: cheap to know,
                #    they anchor the front)
                first = self._fresh(space, repair, run.rng, n_init, run.seen,
                                    extremes=self.include_extremes)
                run.evaluate(first)
                run.ideal, run.nadir = self._bounds(problem, run.rows(new=True))
                run.curve = [[run.spent(), self._hv(problem, run.rows(new=True), run.ideal,
                                                    run.nadir)]]
                run.round = 1
                boundary()
            # 2. rounds: fit -> NSGA-II on the surrogate -> batch -> real evaluation
            # decided from the real evaluations at the boundary: a replayed round picks the
            # same batch even though part of it was committed (and counted) before a kill
            while run.mark < budget:
                if self.max_rounds is not None and run.round > self.max_rounds:
                    run.stop = "rounds"
                    break
                batch, rec = self._round(problem, run, repair, base, expensive,
                                         min(self.batch_size, budget - run.mark))
                if len(batch) == 0:
                    run.stop = "exhausted"  # every architecture inside the budgets is known
                    break
                run.rounds.append(rec)
                run.round += 1
                boundary()
            else:
                run.stop = "budget"
        finally:
            problem.on_evaluated = None
            bar.close()

        rows = run.rows(new=True)
        # the front of everything the loop learnt, in learning order (ties resolve the same way
        # in a resumed run, whatever order the archive committed the interrupted round in)
        front = pareto_rows(run.rows(), problem.objective_names)
        if not front:
            raise problem.no_front_error(f"{run.spent()} surrogate-guided evaluations")
        return SearchResult(
            problem.objective_names, dict(problem.budgets), problem.history, front,
            time.perf_counter() - t0,
            {**settings, "real_evaluations": run.spent(), "cheap_lookups": lookups.n,
             "stop_reason": run.stop, "resumed_from_round": resumed_from,
             "failed_evaluations": sum(r["status"] != "ok" for r in rows),
             "hv_bounds": {"ideal": list(map(float, run.ideal)),
                           "nadir": list(map(float, run.nadir))},
             "hv_curve": run.curve, "rounds": run.rounds,
             **({"budget_repair": dict(repair.stats)} if isinstance(repair, BudgetRepair)
                else {})})

    def _round(self, problem: NASProblem, run: _LoopState, repair: Any, base: dict[str, Any],
               expensive: list[str], k: int) -> tuple[np.ndarray, dict[str, Any]]:
        """One round: fit on what is known, search the surrogate, evaluate a batch of up to
        ``k`` never-evaluated architectures for real. Returns the batch and the round's record
        (an empty batch when nothing new is left)."""
        space = problem.space
        t_fit = time.perf_counter()
        fitted, info = self._fit(run.rows(), base, expensive)
        t_fit = time.perf_counter() - t_fit
        sp = SurrogateProblem(problem, fitted, record=True)
        algo = NSGA2(pop_size=self.inner_pop_size,
                     sampling=self._seeds(problem, run.rows(), repair, run.rng),
                     crossover=UniformCrossover(prob=0.9), mutation=ChoiceMutation(space),
                     repair=repair, eliminate_duplicates=CanonicalDuplicateElimination(space))
        minimize(sp, algo, ("n_gen", self.inner_generations),
                 seed=int(run.rng.integers(2**31 - 1)), verbose=False,
                 copy_algorithm=False)  # so the repair's counters add up
        X, F, G = sp.visited()
        new = np.array([r.tobytes() not in run.seen for r in X], dtype=bool)
        ok = new & np.all(np.isfinite(F), axis=1)
        if G.size:
            ok &= np.all(G <= 0, axis=1)
        idx = np.flatnonzero(ok)
        k_local = int(round(self.local_fraction * k))
        local = (self._local(problem, run.rows(), sp, repair, run.seen, k_local) if k_local
                 else X[:0])
        taken = run.seen | {r.tobytes() for r in local}
        idx = np.array([i for i in idx if X[i].tobytes() not in taken], dtype=np.int64)
        pick = idx[select_batch(F[idx], k - len(local), self.selection)] if idx.size else idx
        batch = np.concatenate([local, X[pick]])
        if len(batch) < k:  # surrogate ran dry: top up with fresh random architectures
            extra = self._fresh(space, repair, run.rng, k - len(batch),
                                run.seen | {r.tobytes() for r in batch}, extremes=False)
            batch = np.concatenate([batch, extra]) if len(extra) else batch
        if len(batch) == 0:
            return batch, {}
        predicted = sp.values(batch)
        run.evaluate(batch)
        hv = self._hv(problem, run.rows(new=True), run.ideal, run.nadir)
        run.curve.append([run.spent(), hv])
        return batch, {"n_evals": run.spent(), "hv": hv, "fit_seconds": round(t_fit, 3),
                       "candidates": int(idx.size), **info,
                       "batch_tau": self._batch_tau(problem, batch, predicted, expensive)}

    def run_search(self, problem: NASProblem, budget: int | None = None,
                   generations: int | None = None, seed: int = 0, progress: bool = False
                   ) -> SearchResult:
        """Entry point for :func:`evo_nas.search.search`: ``budget`` real evaluations (this
        object's own ``budget`` when not given), ``generations`` caps the rounds."""
        if generations is not None:
            self.max_rounds = generations
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

    def _seeds(self, problem: NASProblem, rows: list[dict[str, Any]], repair: Any,
               rng: np.random.Generator) -> np.ndarray:
        """Initial NSGA-II population: the real front so far (the surrogate search starts from
        what is known to be good) plus random genomes."""
        front = pareto_rows(rows, problem.objective_names)
        good = [np.asarray(r["genome"], dtype=np.int64) for r in front][: self.inner_pop_size // 2]
        rest = repair._do(None, problem.space.sample(self.inner_pop_size - len(good), rng))
        return np.concatenate([np.array(good, dtype=np.int64).reshape(-1, problem.n_var), rest])

    def _local(self, problem: NASProblem, rows: list[dict[str, Any]], sp: SurrogateProblem,
               repair: Any, seen: set[bytes], k: int) -> np.ndarray:
        """``k`` never-evaluated single-gene neighbours of the real front, chosen on the
        surrogate like the global batch (local search around what is known to be good)."""
        space = problem.space
        front = [np.asarray(r["genome"], dtype=np.int64)
                 for r in pareto_rows(rows, problem.objective_names)]
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
    def _fit(rows: list[dict[str, Any]], base: Mapping[str, Any], names: list[str]
             ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Refit a clone of each predictor on every finite real value of its metric, in the
        order the loop learnt them (failed evaluations are kept, never used as targets)."""
        X = np.array([h["genome"] for h in rows], dtype=np.int64)
        fitted, info = {}, {}
        for n in names:
            y = np.array([h[n] for h in rows], dtype=float)
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

    def _bounds(self, problem: NASProblem, rows: list[dict[str, Any]]
                ) -> tuple[np.ndarray, np.ndarray]:
        if self.hv_bounds is not None:
            ideal, nadir = (np.asarray(b, dtype=float) for b in self.hv_bounds)
            if ideal.shape != (problem.n_obj,) or nadir.shape != (problem.n_obj,):
                raise ConfigError(f"hv_bounds must be two vectors of {problem.n_obj} values")
            return ideal, nadir
        F = _feasible_F(problem, rows)
        if len(F) == 0:
            return np.zeros(problem.n_obj), np.ones(problem.n_obj)
        return F.min(axis=0), F.max(axis=0)

    @staticmethod
    def _hv(problem: NASProblem, rows: list[dict[str, Any]], ideal: np.ndarray,
            nadir: np.ndarray) -> float:
        F = _feasible_F(problem, rows)
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


class _LoopState:
    """What the loop knows at a round boundary, and its JSON form for the archive.

    ``known`` lists the genomes the loop has learnt, in the order it learnt them: first what the
    problem knew when the run started (``n_prior``), then the initial design and each batch.
    Everything the loop decides reads these rows, never the problem's whole history, so a
    resumed run that finds rows committed after its last boundary still decides as before.
    """

    def __init__(self, problem: NASProblem) -> None:
        self.problem = problem
        self.known: list[np.ndarray] = []
        self.seen: set[bytes] = set()
        self.n_prior = 0
        self.base_real = 0
        self.mark = 0  # real evaluations spent at the last round boundary
        self.round = 0
        self.rng = np.random.default_rng(0)
        self.ideal = np.zeros(problem.n_obj)
        self.nadir = np.ones(problem.n_obj)
        self.curve: list[list[float]] = []
        self.rounds: list[dict[str, Any]] = []
        self.stop: str | None = None
        self._rows: dict[bytes, dict[str, Any]] = {}
        self._indexed = 0

    def start(self, history: list[dict[str, Any]], n_real: int, rng: np.random.Generator
              ) -> None:
        self._learn([np.asarray(h["genome"], dtype=np.int64) for h in history])
        self.n_prior, self.base_real, self.rng = len(self.known), int(n_real), rng

    def restore(self, state: dict[str, Any], repair: Any) -> None:
        self._learn([np.asarray(g, dtype=np.int64) for g in state["known"]])
        self.n_prior, self.base_real = state["n_prior"], state["base_real"]
        self.round, self.mark = state["round"], state["spent"]
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]
        self.ideal = np.asarray(state["ideal"], dtype=float)
        self.nadir = np.asarray(state["nadir"], dtype=float)
        self.curve, self.rounds = state["curve"], state["rounds"]
        if isinstance(repair, BudgetRepair):
            repair.stats.update(state.get("repair_stats", {}))
        missing = [g for g in self.known if g.tobytes() not in self._index()]
        if missing:  # known rows always come from this run's archive; a gap is not ours to fill
            raise ConfigError(f"run {self.problem.run!r}: {len(missing)} architectures of the "
                              f"saved surrogate state are not in the archive")

    def state(self, settings: dict[str, Any], repair: Any, lookups: int) -> dict[str, Any]:
        return {"settings": settings, "round": self.round, "n_prior": self.n_prior,
                "base_real": self.base_real, "spent": self.mark,
                "known": [g.tolist() for g in self.known],
                "rng": self.rng.bit_generator.state, "ideal": self.ideal.tolist(),
                "nadir": self.nadir.tolist(), "curve": self.curve, "rounds": self.rounds,
                "cheap_lookups": lookups,
                "repair_stats": dict(repair.stats) if isinstance(repair, BudgetRepair) else {}}

    def spent(self) -> int:
        """Distinct real evaluations this run has made (archive and cache hits excluded)."""
        return self.problem.n_real - self.base_real

    def evaluate(self, X: np.ndarray) -> None:
        """Real evaluation of ``X`` (cached where known), then learn it."""
        if len(X):
            self.problem.measure(X)
        self._learn(list(np.atleast_2d(X).astype(np.int64)))

    def _learn(self, genomes: list[np.ndarray]) -> None:
        for g in genomes:
            g = np.asarray(self.problem.space.canonical(g[None, :])[0], dtype=np.int64)
            if g.tobytes() not in self.seen:
                self.seen.add(g.tobytes())
                self.known.append(g)

    def _index(self) -> dict[bytes, dict[str, Any]]:
        hist = self.problem.history
        for h in hist[self._indexed:]:
            self._rows[np.asarray(h["genome"], dtype=np.int64).tobytes()] = h
        self._indexed = len(hist)
        return self._rows

    def rows(self, new: bool = False) -> list[dict[str, Any]]:
        """History rows of the known genomes in learning order (``new``: this run's only)."""
        index = self._index()
        known = self.known[self.n_prior:] if new else self.known
        return [index[g.tobytes()] for g in known]


def _feasible_F(problem: NASProblem, rows: list[dict[str, Any]]) -> np.ndarray:
    rows = [h for h in rows if h["feasible"]]
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
    """Registry builder (``search.algorithm = "surrogate"``). ``pop_size`` is what it is for
    every algorithm, the architectures evaluated per generation: here, per round (the loop's
    ``batch_size``); the NSGA-II on the predictors has ``inner_pop_size``/``inner_generations``,
    and the budget comes from ``search(budget=...)``."""
    predictor = kwargs.get("predictor", "default")
    if isinstance(predictor, str):
        from evo_nas.predictors import PREDICTORS

        if predictor not in PREDICTORS:
            raise ConfigError(f"search.options.predictor = {predictor!r}: choose one of "
                              f"{sorted(PREDICTORS)}")
    return SurrogateAssistedSearch(batch_size=pop_size, **kwargs)


def surrogate_search(problem: NASProblem, budget: int = 300, seed: int = 0,
                     predictor: str | Any | Mapping[str, Any] = "default", progress: bool = False,
                     **kwargs: Any) -> SearchResult:
    """Function form: ``SurrogateAssistedSearch(predictor, budget, **kwargs).run(problem)``."""
    return SurrogateAssistedSearch(predictor=predictor, budget=budget, **kwargs).run(
        problem, seed=seed, progress=progress)
