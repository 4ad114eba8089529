"""Search operators at equal real evaluations: evo-nas NSGA-II vs pymoo's integer NSGA-II, and
multi-objective regularized / tournament evolution vs random search.

Every algorithm is driven through pymoo's ask/tell interface by :func:`run`, which counts the
*distinct canonical genomes* evaluated (cache hits are free, as in a real search) and truncates
the last offspring batch so that exactly ``budget`` distinct architectures are evaluated.
The score is the HV ratio of everything evaluated, as in ``bench_search.py``: pymoo's HV on
(error %, cost) normalised with ideal = the true front's minimum and nadir = (20 % error, the true
front's maximum cost), reference (1.1, 1.1), divided by the true front's HV.

Tables: NAS-Bench-201 CIFAR-10 test error against FLOPs and against each HW-NAS-Bench latency
(all 15,625 cells, disconnected ones kept), and ``mbv3`` — a MobileNetV3-style space built here
(:func:`mobilenet_table`; ordered genes, conditional per-block genes) with analytic MACs and a
synthetic accuracy, every one of its canonical architectures enumerated for the true front,
and ``widths`` — channel widths of a 6-layer CNN (:func:`widths_table`; 6 genes of 8 ordered
options), analytic MACs and a synthetic accuracy, all 262,144 architectures enumerated.

    OMP_NUM_THREADS=1 python benchmarks/bench_operators.py [--quick] [--seeds N] [--budget N]
        [--variants nsga2,pymoo_nsga2,...] [--ablations] [--tables widths_flops,...]

Writes benchmarks/results/operators.json (``--quick``: operators_quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from pymoo.algorithms.moo.nsga2 import NSGA2, binary_tournament  # noqa: E402
from pymoo.core.evaluator import Evaluator  # noqa: E402
from pymoo.core.problem import Problem  # noqa: E402
from pymoo.operators.crossover.sbx import SBX  # noqa: E402
from pymoo.operators.crossover.ux import UniformCrossover  # noqa: E402
from pymoo.operators.mutation.pm import PM, mut_pm  # noqa: E402
from pymoo.operators.repair.rounding import RoundingRepair  # noqa: E402
from pymoo.operators.sampling.rnd import IntegerRandomSampling  # noqa: E402
from pymoo.operators.selection.tournament import TournamentSelection  # noqa: E402
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting  # noqa: E402

from evo_nas.algorithms import make_nsga2, make_regularized, make_tournament  # noqa: E402
from evo_nas.algorithms.surrogate import hypervolume  # noqa: E402
from evo_nas.costs import GenomeCosts  # noqa: E402
from evo_nas.data_paths import resolve_nb201_path  # noqa: E402
from evo_nas.errors import DataError  # noqa: E402
from evo_nas.machine import machine_info  # noqa: E402
from evo_nas.space import Choice, SearchSpace  # noqa: E402
from evo_nas.spaces.mobilenet import MobileNetSpec, StageSpec  # noqa: E402
from operators import (  # noqa: E402
    CanonicalDuplicateElimination,
    CanonicalRepair,
    ChoiceMutation,
    ChoiceSampling,
    MixedCrossover,
    NeighbourMutation,
)
from problems.tabular import load_nb201  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
NB201_COSTS = ("flops", "latency_raspi4", "latency_pixel3", "latency_eyeriss", "latency_fpga")
ALGOS = ("nsga2", "pymoo_nsga2", "regularized", "tournament", "random")


# --------------------------------------------------------------------------- tables
class Table:
    """A two-objective table: ``f(X) -> (n, 2)`` on canonical genomes, and its true front."""

    def __init__(self, name: str, space: SearchSpace, f: Callable[[np.ndarray], np.ndarray],
                 front: np.ndarray, how: str) -> None:
        self.name, self.space, self.f, self.how = name, space, f, how
        self.front = front
        self.ideal = front.min(axis=0)
        self.nadir = np.array([20.0, front[:, 1].max()])
        self.true_hv = hypervolume(front, self.ideal, self.nadir)

    def hv_ratio(self, F: np.ndarray) -> float:
        return hypervolume(F, self.ideal, self.nadir) / self.true_hv


def _front(F: np.ndarray) -> np.ndarray:
    F = np.unique(F, axis=0)
    return F[NonDominatedSorting().do(F, only_non_dominated_front=True)]


def nb201_tables(data: Path) -> list[Table]:
    """NB201 error vs each cost; genomes index a dense array (base-5 digits)."""
    problem = load_nb201(data, objectives=("error", "flops"))
    space = problem.space
    radix = np.cumprod(np.r_[1, space.n_options[::-1][:-1]])[::-1]
    dense = {}
    idx = problem.genomes @ radix
    for name in ("error", *NB201_COSTS):
        arr = np.full(int(np.prod(space.n_options)), np.nan)
        arr[idx] = problem.values[name]
        dense[name] = arr
    out = []
    for cost in NB201_COSTS:
        def f(X: np.ndarray, cost: str = cost) -> np.ndarray:
            i = X @ radix
            return np.column_stack([dense["error"][i], dense[cost][i]])
        F = np.column_stack([problem.values["error"], problem.values[cost]])
        out.append(Table(f"nb201_{cost}", space, f, _front(F),
                         f"NAS-Bench-201 CIFAR-10 test error vs {cost} (15,625 cells)"))
    return out


MBV3_SPEC = MobileNetSpec(
    name="bench", in_channels=3, num_classes=10, resolutions=(24, 28, 32),
    stem_channels=16, stem_stride=1,
    stages=(StageSpec(widths=(16, 24), depths=(1, 2), stride=1),
            StageSpec(widths=(32, 40), depths=(1, 2), stride=2),
            StageSpec(widths=(64, 80), depths=(1, 2), stride=2, act="hswish")),
    kernels=(3, 5), expands=(3, 4, 6), head_channels=256, head_act="hswish")


def _enumerate_mbv3(space: SearchSpace) -> np.ndarray:
    """Every canonical genome of the MBV3 bench space (too many raw genomes for
    ``space.classes()``): per stage the canonical (w, d, k0, e0, k1, e1) rows, then a product."""
    stage = space.canonical(np.column_stack([np.zeros(144, dtype=np.int64),
                                             *np.indices((2, 2, 2, 3, 2, 3)).reshape(6, -1),
                                             np.zeros((144, 12), dtype=np.int64)]))[:, 1:7]
    stage = np.unique(stage, axis=0)
    n = len(stage)
    r, a, b, c = (g.reshape(-1) for g in np.indices((3, n, n, n)))
    return np.column_stack([r, stage[a], stage[b], stage[c]])


def mobilenet_table() -> Table:
    """MobileNetV3-style space (resolution, 3 stages x width, depth 1-2, per-block kernel 3/5 and
    expand 3/4/6; 1,778,112 canonical architectures, all enumerated) with analytic MACs
    (:class:`evo_nas.costs.GenomeCosts`) and a synthetic accuracy: saturating in a capacity score
    that weighs resolution, width, depth, kernel and expand per stage differently from their
    MACs (late-stage depth and kernels pay off most per MAC), with diminishing returns and a
    deterministic per-architecture noise of 0.25 % (a hash of the genome)."""
    space = MBV3_SPEC.space()
    costs = GenomeCosts(space)
    names = space.names
    col = {n: i for i, n in enumerate(names)}
    stage_w = np.array([0.6, 1.0, 1.4])  # later stages matter more for accuracy

    def error(X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        cap = 0.9 * X[:, col["res"]]
        for i in range(3):
            d = X[:, col[f"s{i}.d"]] + 1
            cap = cap + stage_w[i] * (0.5 * X[:, col[f"s{i}.w"]] + 0.8 * (d - 1))
            for j in range(2):
                on = d > j
                k = X[:, col[f"s{i}.b{j}.k"]]
                e = X[:, col[f"s{i}.b{j}.e"]]
                gain = 0.35 * k * (1.0 + 0.5 * i) + 0.3 * np.sqrt(e)  # expand: diminishing
                cap = cap + stage_w[i] * np.where(on, gain, 0.0)
        # deterministic per-architecture noise from a hash of the canonical genome
        h = (X.astype(np.uint64) * np.arange(1, X.shape[1] + 1, dtype=np.uint64)
             * np.uint64(2654435761)).sum(axis=1) % np.uint64(1_000_003)
        noise = (h.astype(float) / 1_000_003 - 0.5) * 0.5
        return 4.0 + 14.0 * np.exp(-cap / 4.0) + noise

    def f(X: np.ndarray) -> np.ndarray:
        return np.column_stack([error(X), costs(X)[0] / 1e6])

    classes = _enumerate_mbv3(space)
    F = f(classes)
    return Table("mbv3_flops", space, f, _front(F),
                 "MobileNetV3-style space, analytic MMACs vs synthetic error "
                 f"({len(classes):,} canonical architectures enumerated)")


def widths_table() -> Table:
    """Channel-width search (AutoSlim-style): a plain 6-layer 3x3 CNN on 32x32 input, stride 2
    at layers 3 and 5, each layer's width one of 8, 16, ..., 64 (8 ordered options; 262,144
    architectures, all enumerated). Cost: analytic MMACs. Synthetic error: saturating in a
    capacity that grows with log-width (later layers weigh more), minus a penalty for a narrow
    bottleneck (the narrowest layer, relative to the mean), plus 0.25 % hash noise."""
    widths = tuple(range(8, 65, 8))
    space = SearchSpace([Choice(f"w{i}", widths) for i in range(6)], name="widths")
    W = np.asarray(widths, dtype=float)
    sizes = np.array([32, 32, 16, 16, 8, 8], dtype=float)
    imp = np.array([0.5, 0.7, 0.9, 1.1, 1.3, 1.5])

    def f(X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        w = W[X]
        cin = np.column_stack([np.full(len(X), 3.0), w[:, :-1]])
        macs = (sizes ** 2 * 9 * cin * w).sum(axis=1) + w[:, -1] * 10
        lw = np.log2(w / 8.0)
        cap = (imp * lw).sum(axis=1) - 1.2 * np.maximum(0.0, lw.mean(axis=1) - lw.min(axis=1))
        h = (X.astype(np.uint64) * np.arange(1, 7, dtype=np.uint64) * np.uint64(2654435761)
             ).sum(axis=1) % np.uint64(1_000_003)
        noise = (h.astype(float) / 1_000_003 - 0.5) * 0.5
        return np.column_stack([5.0 + 14.0 * np.exp(-cap / 5.0) + noise, macs / 1e6])

    grid = np.indices((8,) * 6).reshape(6, -1).T
    return Table("widths_flops", space, f, _front(f(grid)),
                 "6-layer CNN channel widths 8..64 (8 ordered options each), analytic MMACs vs "
                 "synthetic error (262,144 architectures enumerated)")


# --------------------------------------------------------------------------- counting problem
class Counting(Problem):
    """``vtype=int`` problem over a table that records each distinct canonical genome once."""

    def __init__(self, table: Table) -> None:
        sp = table.space
        super().__init__(n_var=sp.n_var, n_obj=2, xl=sp.xl, xu=sp.xu, vtype=int)
        self.table = table
        self.seen: dict[bytes, np.ndarray] = {}

    def keys(self, X: np.ndarray) -> list[bytes]:
        C = self.table.space.canonical(np.round(np.asarray(X, dtype=float)).astype(np.int64))
        return [r.tobytes() for r in np.atleast_2d(C)]

    def _evaluate(self, X: np.ndarray, out: dict, *args: Any, **kwargs: Any) -> None:
        C = self.table.space.canonical(np.round(np.asarray(X, dtype=float)).astype(np.int64))
        F = self.table.f(C)
        for k, row in zip(self.keys(C), F, strict=True):
            self.seen.setdefault(k, row)
        out["F"] = F

    def cheap_objectives(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """The cost column, free to look up (as a table's cost column or a cost model is for
        ``NASProblem``): what evo-nas's sampling consults to anchor the cost axis."""
        C = self.table.space.canonical(np.asarray(X))
        return {"cost": self.table.f(C)[:, 1]}

    def front_F(self) -> np.ndarray:
        return np.array(list(self.seen.values()))


def run(table: Table, algo: Any, budget: int, seed: int) -> Counting:
    """Ask/tell until exactly ``budget`` distinct canonical genomes are evaluated."""
    problem = Counting(table)
    if algo == "random":
        rng = np.random.default_rng(seed)
        while len(problem.seen) < budget:
            X = table.space.sample(budget, rng)
            keep, new = [], set()
            for i, k in enumerate(problem.keys(X)):
                if k not in problem.seen and k not in new and len(problem.seen) + len(new) < budget:
                    new.add(k)
                    keep.append(i)
            problem.evaluate(X[keep])
        return problem
    algo.setup(problem, termination=("n_gen", 10**9), seed=seed, verbose=False)
    stall = 0
    while len(problem.seen) < budget and stall < 50:
        pop = algo.ask()
        if pop is None or len(pop) == 0:
            stall += 1
            continue
        left = budget - len(problem.seen)
        new: set[bytes] = set()
        cut = len(pop)
        for i, k in enumerate(problem.keys(pop.get("X"))):
            if k not in problem.seen and k not in new:
                if len(new) == left:
                    cut = i
                    break
                new.add(k)
        stall = stall + 1 if not new else 0
        pop = pop[:cut]
        Evaluator().eval(problem, pop)
        algo.tell(infills=pop)
    return problem


# --------------------------------------------------------------------------- algorithms
def pymoo_nsga2(pop_size: int = 20, eta: float = 3.0) -> NSGA2:
    """pymoo's integer recipe (docs, 'Discrete Variable Problem'): integer sampling, SBX and PM
    with eta 3 on floats, rounded."""
    return NSGA2(pop_size=pop_size, sampling=IntegerRandomSampling(),
                 crossover=SBX(prob=1.0, eta=eta, vtype=float, repair=RoundingRepair()),
                 mutation=PM(prob=1.0, eta=eta, vtype=float, repair=RoundingRepair()),
                 eliminate_duplicates=True)


def categorical(space: SearchSpace) -> SearchSpace:
    """The same space with every gene flagged categorical (``ordered=False``)."""
    return SearchSpace([Choice(c.name, c.options, c.active_if, False) for c in space.choices],
                       name=space.name, canonicalizer=space.canonicalizer)


def old_nsga2(space: SearchSpace) -> NSGA2:
    """evo-nas NSGA-II before issue 13: uniform crossover, one-gene-always categorical
    mutation (rate 1 / n_active, at least one change)."""
    return NSGA2(pop_size=20, sampling=ChoiceSampling(space),
                 crossover=UniformCrossover(prob=0.9), mutation=ChoiceMutation(space),
                 repair=CanonicalRepair(space),
                 eliminate_duplicates=CanonicalDuplicateElimination(space))


def nsga2_ops(space: SearchSpace, ordered: str = "sbx", range_rate: bool = True,
              mutation_genes: float = 0.3, step: str = "neighbour") -> NSGA2:
    """``make_nsga2(space, pop_size=20, crossover_prob=0.9)`` of an earlier session, built
    by hand, with one operator choice changed (ablations):
    ``ordered`` crossover of ordered genes (``"sbx"`` or the older ``"blend"``), the
    range-scaled mutation rate on or off, and ``step="pm"``: pymoo's PM(eta=3) on the option
    index of ordered genes instead of neighbour steps."""
    mutation: Any = NeighbourMutation(space, n_genes=mutation_genes, range_rate=range_rate)
    if step == "pm":
        mutation = _PMOrdered(space, n_genes=mutation_genes, range_rate=range_rate)
    return NSGA2(pop_size=20, sampling=ChoiceSampling(space),
                 crossover=MixedCrossover(space, prob=0.9, ordered=ordered),
                 mutation=mutation, repair=CanonicalRepair(space),
                 eliminate_duplicates=CanonicalDuplicateElimination(space))


class _PMOrdered(NeighbourMutation):
    """NeighbourMutation whose ordered genes, when picked, move by pymoo's polynomial mutation
    (eta 3) on the option index, rounded (a draw that rounds back leaves the gene as it was);
    categorical genes as before."""

    def _do(self, problem: Any, X: np.ndarray, *args: Any, random_state: Any = None,
            **kwargs: Any) -> np.ndarray:
        rng = random_state
        X = self.space.canonical(np.round(X).astype(np.int64))
        Y = super()._do(problem, X, *args, random_state=rng, **kwargs)
        moved = (Y != X) & self.space.ordered[None, :] & self.space.active(X)
        for g in np.flatnonzero(moved.any(axis=0)):
            rows = np.flatnonzero(moved[:, g])
            xu = np.array([self.space.n_options[g] - 1.0])
            Z = mut_pm(X[rows, g:g + 1].astype(float), np.zeros(1), xu,
                       np.full(len(rows), 3.0), np.ones(len(rows)), False, random_state=rng)
            Y[rows, g] = np.clip(np.rint(Z[:, 0]), 0, xu[0]).astype(np.int64)
        return self.space.canonical(Y)


def swap_categorical(algo: NSGA2) -> NSGA2:
    """The default NSGA-II with uniform swaps on categorical genes (the default before SBX on
    their cost-ordered index)."""
    algo.mating.crossover.categorical = "swap"
    return algo


def generational(algo: NSGA2) -> NSGA2:
    """NSGA-II made generational again: ``pop_size`` children per generation from pymoo's
    binary tournaments (domination, then crowding); with ``crossover_prob=0.9``, the default
    before steady-state."""
    algo.n_offsprings = algo.pop_size
    algo.mating.selection = TournamentSelection(func_comp=binary_tournament)
    return algo


def make(name: str, space: SearchSpace) -> Any:
    """The algorithms as a user gets them with ``search(..., pop_size=20)``, and ablations."""
    builders: dict[str, Callable[[], Any]] = {
        "nsga2": lambda: make_nsga2(space, pop_size=20),
        "pymoo_nsga2": lambda: pymoo_nsga2(),
        "regularized": lambda: make_regularized(space, pop_size=20),
        "tournament": lambda: make_tournament(space, pop_size=20),
        "random": lambda: "random",
        # ablations: what each change is worth
        "nsga2_old": lambda: old_nsga2(space),
        "nsga2_rate1": lambda: make_nsga2(space, pop_size=20, mutation_genes=1.0),
        "nsga2_categorical": lambda: make_nsga2(categorical(space), pop_size=20),
        "nsga2_swap": lambda: swap_categorical(make_nsga2(space, pop_size=20)),
        "nsga2_generational": lambda: generational(make_nsga2(space, pop_size=20,
                                                              crossover_prob=0.9)),
        "nsga2_fixed_rate": lambda: make_nsga2(space, pop_size=20, crossover_prob=0.9),
        "nsga2_prev": lambda: nsga2_ops(space, ordered="blend", range_rate=False),
        "nsga2_blend": lambda: nsga2_ops(space, ordered="blend"),
        "nsga2_flat": lambda: nsga2_ops(space, range_rate=False),
        "nsga2_pm": lambda: nsga2_ops(space, step="pm"),
        "pymoo_nsga2_canonical": lambda: NSGA2(
            pop_size=20, sampling=ChoiceSampling(space),
            crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
            mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
            repair=CanonicalRepair(space), eliminate_duplicates=True),
        "regularized_random_weights": lambda: make_regularized(space, pop_size=20,
                                                               fitness="random_weights"),
        "tournament_random_weights": lambda: make_tournament(space, pop_size=20,
                                                             fitness="random_weights"),
        "regularized_single_objective": lambda: make_regularized(space, pop_size=20,
                                                                 objective=0),
    }
    if name not in builders:
        raise ValueError(f"unknown algorithm {name!r}: {sorted(builders)}")
    return builders[name]()


ABLATIONS = ("nsga2_old", "nsga2_prev", "nsga2_blend", "nsga2_flat", "nsga2_pm", "nsga2_rate1",
             "nsga2_categorical", "nsga2_swap", "nsga2_generational", "nsga2_fixed_rate",
             "pymoo_nsga2_canonical",
             "regularized_random_weights", "tournament_random_weights",
             "regularized_single_objective")


# --------------------------------------------------------------------------- report
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    help="the NB201 table: nb201_cifar10.csv or its folder (default "
                         "$EVO_NAS_NB201_CSV, else $EVO_NAS_DATA/nb201)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="2 seeds, budget 100, two tables")
    ap.add_argument("--algos", "--variants", dest="algos", default=",".join(ALGOS),
                    help=f"comma-separated; ablations: {','.join(ABLATIONS)}")
    ap.add_argument("--ablations", action="store_true", help="also run the ablation rows")
    ap.add_argument("--tables", default="", help="comma-separated table names (default: all)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    seeds = list(range(2 if args.quick else args.seeds))
    budget = 100 if args.quick else args.budget
    algos = args.algos.split(",") + (list(ABLATIONS) if args.ablations else [])
    t0 = time.perf_counter()
    want = set(args.tables.split(",")) if args.tables else None
    if args.quick:
        want = {"nb201_flops", "widths_flops"}
    tables = []
    if want is None or any(w.startswith("nb201") for w in want):
        try:
            tables = nb201_tables(resolve_nb201_path(args.data, "--data"))
        except DataError as e:
            sys.exit(f"bench_operators: {e}")
    if want is None or "mbv3_flops" in want:  # 1.8 M architectures: ~15 s to enumerate
        tables.append(mobilenet_table())
    tables.append(widths_table())
    if want is not None:
        tables = [t for t in tables if t.name in want]
    print(f"tables built in {time.perf_counter() - t0:.1f} s", flush=True)
    results: dict[str, Any] = {}
    for table in tables:
        results[table.name] = {"how": table.how, "true_front_points": len(table.front)}
        for a in algos:
            t1 = time.perf_counter()
            hv = []
            for s in seeds:
                p = run(table, make(a, table.space), budget, s)
                assert len(p.seen) == budget, (a, len(p.seen))
                hv.append(table.hv_ratio(p.front_F()))
            results[table.name][a] = {"median": round(float(np.median(hv)), 5),
                                      "per_seed": np.round(hv, 5).tolist(),
                                      "seconds_per_run": round((time.perf_counter() - t1)
                                                               / len(seeds), 3)}
            print(f"{table.name:>22} {a:>18}: median {np.median(hv):.4f} "
                  f"min {np.min(hv):.4f}  ({results[table.name][a]['seconds_per_run']} s/run)",
                  flush=True)
    summary: dict[str, Any] = {}
    for name, res in results.items():
        med = {a: res[a]["median"] for a in algos if a in res}
        row: dict[str, Any] = {"median_hv_ratio": med}
        if "nsga2" in med and "pymoo_nsga2" in med:
            row["nsga2_ge_pymoo_nsga2"] = med["nsga2"] >= med["pymoo_nsga2"]
        for a in ("regularized", "tournament"):
            if a in med and "random" in med:
                row[f"{a}_ge_random"] = med[a] >= med["random"]
        summary[name] = row
    main_algos = [a for a in algos if a in ALGOS]
    print("\nmedian HV ratio at", budget, "real evaluations,", len(seeds), "seeds")
    print(f"{'table':>22} " + " ".join(f"{a:>12}" for a in main_algos))
    for name, row in summary.items():
        print(f"{name:>22} " + " ".join(f"{row['median_hv_ratio'][a]:>12.4f}"
                                        for a in main_algos))
    doc = {
        "what": "median HV ratio to the true front at equal real (distinct canonical) "
                "evaluations",
        "command": "OMP_NUM_THREADS=1 python benchmarks/bench_operators.py "
                   + " ".join(argv if argv is not None else sys.argv[1:]),
        "budget": budget, "seeds": seeds,
        "settings": {"pop_size": 20, "nsga2": "make_nsga2(space, pop_size=20): MixedCrossover "
                     "at an adaptive rate (operators.AdaptiveRate: learnt from which children "
                     "survive; uncrossed children change at least one gene) (pymoo SBX eta 3, "
                     "prob_var 0.5 on the option index of every gene: "
                     "ordered ones and categorical ones, listed cheapest first) + "
                     "NeighbourMutation 0.3 genes/child, range-scaled on ordered "
                     "genes; first population anchored by 50x cheap lookups; 5 children "
                     "per generation from tournaments of 3 by rank, then crowding",
                     "nsga2_swap": "uniform swaps on categorical genes instead of SBX",
                     "nsga2_generational": "20 children per generation from pymoo's binary "
                     "tournaments (the default before steady-state)",
                     "nsga2_fixed_rate": "crossover_prob=0.9, fixed (the default before the "
                     "adaptive rate)",
                     "nsga2_prev": "the default before: contracting 'blend' crossover "
                     "on ordered genes, flat 0.3 genes/child", "nsga2_blend": "blend crossover, "
                     "range-scaled rate", "nsga2_flat": "SBX, flat rate", "nsga2_pm": "SBX, "
                     "range-scaled rate, ordered steps by pymoo PM(eta 3) on the index",
                     "pymoo_nsga2": "NSGA2(pop 20, "
                     "IntegerRandomSampling, SBX(prob=1, eta=3) + PM(prob=1, eta=3), "
                     "RoundingRepair, eliminate_duplicates=True): pymoo docs' integer recipe",
                     "regularized/tournament": "make_regularized/make_tournament(space, "
                     "pop_size=20) defaults: Pareto-rank tournaments of 5, 5 children/gen",
                     "random": "distinct uniform random canonical genomes",
                     "counting": "distinct canonical genomes evaluated; last batch truncated"},
        "summary": summary, "results": results,
        "machine": machine_info(packages=("numpy", "pymoo")),
        "seconds_total": round(time.perf_counter() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("operators_quick.json" if args.quick else "operators.json")
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path} in {doc['seconds_total']} s")


if __name__ == "__main__":
    main()
