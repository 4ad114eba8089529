"""Predictors that need no hand-made features, measured on a user's own NAS-Bench-201 table.

The space is what a user with only the CSV would write: six genes ``op0..op5`` whose options are
the table's op codes 0..4, read with ``TabularProblem.from_csv`` -- no ``features=``, no
canonical form -- once as plain genes, and once with the one-line declaration of what the genes
are: ``cell=CellGraph(edges, zero=0)`` (each gene is an edge of the 4-node cell DAG, code 0 is
the zero op). Two measurements:

1. Kendall tau of each predictor lever (regressor x generic encoding) on CIFAR-10 test error,
   trained on 100 random architectures and tested on all 15,525 others; median of 3 seeds. The
   rows ``default`` and ``default | declared cell`` are what ``make_predictor()`` / the surrogate
   loop use on each space; on the plain genes the default infers the cell graph from its
   training rows (``evo_nas.predictors.infer_cell``; which graph it found, per seed, is in
   ``inferred_cell``), and ``infer_cell=False`` is a row. A control on tables over the same
   genomes with no cell in them (additive, pairwise; 10 seeds) shows what a wrongly inferred
   graph costs. A reference row shows the hand-made NB201 cell features (``load_nb201``'s
   ``features``) that a user cannot know.
2. (without ``--no-hv``) the surrogate-assisted loop (``SurrogateAssistedSearch``, default
   predictor) at 300 real evaluations on accuracy vs FLOPs and vs each HW-NAS-Bench latency, the
   cost a cheap column, on the declared-cell space, the plain genes, and the plain genes with
   ``infer_cell=False`` (``--hv-spaces``). HV as in ``bench_search.py``: pymoo's indicator on
   (test error %, cost), ideal = true front minimum, nadir = (20 % error, true front's maximum
   cost), reference (1.1, 1.1), reported as a fraction of the true front's HV.

    OMP_NUM_THREADS=1 python benchmarks/bench_predictor.py [--quick] [--no-hv] [--data PATH]

Writes benchmarks/results/predictor.json (top-level ``summary``; ``--quick``: predictor_quick.json)
and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # small matrices: BLAS threads only contend

import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from evo_nas.algorithms.surrogate import SurrogateAssistedSearch, hypervolume  # noqa: E402
from evo_nas.cell import CellGraph  # noqa: E402
from evo_nas.data_paths import resolve_nb201_path  # noqa: E402
from evo_nas.errors import DataError  # noqa: E402
from evo_nas.machine import machine_info  # noqa: E402
from evo_nas.predictors import (  # noqa: E402
    AdaptivePredictor,
    RankTargetRegressor,
    as_predictor,
    auto_encoding,
    infer_cell,
    kendall_tau,
    make_predictor,
    make_regressor,
)
from evo_nas.space import Choice, SearchSpace  # noqa: E402
from evo_nas.spaces.nb201 import NB201_EDGES  # noqa: E402
from problems.tabular import TabularProblem, load_nb201  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
TAU_TARGET, HV_TARGET = 0.75, 0.995
COSTS = {"flops": "flops_m", "latency_pixel3": "hwnb_pixel3_ms",
         "latency_raspi4": "hwnb_raspi4_ms", "latency_eyeriss": "hwnb_eyeriss_ms",
         "latency_fpga": "hwnb_fpga_ms"}
OH_C = ("onehot", "counts")


def user_problem(data: Path, cost: str = "flops", cell: bool = False) -> TabularProblem:
    """NB201 as a user defines it from the plain CSV: op codes as options, error and one cost;
    ``cell``: plus the declaration that the genes are the cell's edges and code 0 the zero op."""
    genes = [f"op{i}" for i in range(6)]
    graph = CellGraph(dict(zip(genes, NB201_EDGES, strict=True)), zero=0) if cell else None
    space = SearchSpace([Choice(g, (0, 1, 2, 3, 4)) for g in genes], name="my_nb201",
                        cell=graph)
    return TabularProblem.from_csv(
        data, space, objectives=["error", cost],
        metrics={"error": lambda t: 100 - t["c10_test_acc"], cost: COSTS[cost]}, cheap=[cost])


def _rank(name: str):
    return lambda rs: RankTargetRegressor(make_regressor(name, rs))


# lever -> (regressor factory(random_state), encoding); every regressor is scikit-learn's
LEVERS = {
    "gb_log | onehot+counts (previous default)": (lambda rs: make_regressor("gb_log", rs), OH_C),
    "gb_log | onehot": (lambda rs: make_regressor("gb_log", rs), "onehot"),
    "gb_log | auto (interactions)": (lambda rs: make_regressor("gb_log", rs), "auto"),
    "gb rank-target | onehot+counts": (_rank("gb"), OH_C),
    "gb rank-target | auto": (_rank("gb"), "auto"),
    "ridge rank-target | onehot+counts+pairs": (_rank("ridge"), OH_C + ("pairs",)),
    "ridge rank-target | auto": (_rank("ridge"), "auto"),
    "rf rank-target | auto": (_rank("rf"), "auto"),
    "kernel_ridge rank-target | auto": (_rank("kernel_ridge"), "auto"),
    "gp | onehot+counts": (lambda rs: make_regressor("gp", rs), OH_C),
    "mlp | onehot+counts": (lambda rs: make_regressor("mlp", rs), OH_C),
    "adaptive (CV tau: rf, gb, ridge, kernel_ridge) | auto":
        (lambda rs: AdaptivePredictor(("rf", "gb", "ridge", "kernel_ridge"), random_state=rs),
         "auto"),
    "ensemble (rf+gb+mlp+kr) | auto": (lambda rs: make_regressor("ensemble", rs), "auto"),
}
# the same CSV space with ``cell=CellGraph(edges, zero=0)`` declared: "auto" then holds the
# live-path features (evo_nas.cell)
CELL_LEVERS = {
    "gb+ridge rank-target (plain default) | auto, declared cell":
        (lambda rs: make_regressor("default", rs), "auto"),
    "gb rank-target | auto, declared cell": (_rank("gb"), "auto"),
    "gb_log | onehot+counts+cell, declared cell (previous cell default)":
        (lambda rs: make_regressor("gb_log", rs), OH_C + ("cell",)),
    "gb_log | auto + pair blocks, declared cell":
        (lambda rs: make_regressor("gb_log", rs),
         OH_C + ("ordinal", "cell", "pair_counts", "pairs")),
    "rf rank-target | auto, declared cell": (_rank("rf"), "auto"),
}
QUICK_LEVERS = ("gb rank-target | auto, declared cell",
                "gb_log | onehot+counts (previous default)", "gb rank-target | auto",
                "ridge rank-target | auto")


def tau_at(make, X: np.ndarray, y: np.ndarray, n: int, seeds: list[int], test: int | None
           ) -> tuple[list[float], float]:
    """Kendall tau (scipy) on the rest (or ``test`` of them) after training on ``n`` random rows,
    per seed; and the median fit time."""
    taus, secs = [], []
    for s in seeds:
        idx = np.random.default_rng(s).permutation(len(X))
        tr, te = idx[:n], idx[n:] if test is None else idx[n:n + test]
        model = make(s)
        t0 = time.perf_counter()
        model.fit(X[tr], y[tr])
        secs.append(time.perf_counter() - t0)
        taus.append(kendall_tau(y[te], model.predict(X[te])))
    return taus, float(np.median(secs))


def bench_tau(data: Path, seeds: list[int], n: int, quick: bool, test: int | None) -> dict:
    problem = user_problem(data)
    space, X, y = problem.space, problem.genomes, problem.values["error"]
    rows: dict[str, dict] = {}

    def record(name: str, make, Xs=X, ys=y) -> None:
        taus, sec = tau_at(make, Xs, ys, n, seeds, test)
        rows[name] = {"tau_per_seed": [round(t, 4) for t in taus],
                      "tau_median": round(float(np.median(taus)), 4),
                      "fit_seconds_median": round(sec, 3)}
        print(f"  {name:58s} tau@{n} = {np.median(taus):.3f}  "
              f"({', '.join(f'{t:.3f}' for t in taus)})  fit {sec:.2f} s", flush=True)

    print(f"Kendall tau at {n} training architectures, user-defined NB201 (no features=):")
    for name, (reg, enc) in LEVERS.items():
        if quick and name not in QUICK_LEVERS:
            continue
        record(name, lambda s, reg=reg, enc=enc: as_predictor(reg(s), space, encoding=enc))
    record("default", lambda s: make_predictor(space=space, random_state=s))
    record("default, no cell inference (infer_cell=False)",
           lambda s: make_predictor(space=space, random_state=s, infer_cell=False))
    cspace = user_problem(data, cell=True).space
    for name, (reg, enc) in CELL_LEVERS.items():
        if quick and name not in QUICK_LEVERS:
            continue
        record(name, lambda s, reg=reg, enc=enc: as_predictor(reg(s), cspace, encoding=enc))
    record("default | declared cell", lambda s: make_predictor(space=cspace, random_state=s))
    ref = load_nb201(data)  # reference only: the hand-made cell features a user cannot know
    record("reference: default + hand-made nb201_features (load_nb201)",
           lambda s: make_predictor(space=ref.space, features=ref.features, random_state=s),
           ref.genomes, ref.values["error"])
    lat: dict[str, dict] = {}
    if not quick:  # the surrogate predicts latency when it is not a cheap column
        full = TabularProblem.from_csv(
            data, space, objectives=["latency_pixel3"],
            metrics={c: col for c, col in COSTS.items() if c != "flops"})
        for c in full.values:
            lat[c] = {}
            for label, make in (("default", lambda s: make_predictor(space=space,
                                                                     random_state=s)),
                                ("previous default", lambda s: make_predictor(
                                    "gb_log", space, encoding=OH_C, random_state=s))):
                taus, _ = tau_at(make, X, full.values[c], n, seeds, test)
                lat[c][label] = round(float(np.median(taus)), 4)
            print(f"  latency {c:15s} tau@{n}: default {lat[c]['default']:.3f}, previous "
                  f"{lat[c]['previous default']:.3f}", flush=True)
    return {"n_train": n, "seeds": seeds, "test": "all other rows" if test is None else test,
            "auto_encoding": list(auto_encoding(space)), "rows": rows,
            "latency_targets_tau": lat, "inferred_cell": inferred_cells(space, X, y, n, seeds),
            "no_cell_control": {} if quick else no_cell_control(space, X, n, test)}


def inferred_cells(space: SearchSpace, X: np.ndarray, y: np.ndarray, n: int, seeds: list[int]
                   ) -> list[dict]:
    """Per seed, the graph the default predictor inferred from its ``n`` rows, and whether it is
    NB201's (the same input -> output paths: a graph and its mirror image are one cell)."""
    truth = {frozenset(p) for p in CellGraph(dict(zip(space.names, NB201_EDGES, strict=True)),
                                             zero=0).paths()}
    out = []
    for s in seeds:
        tr = np.random.default_rng(s).permutation(len(X))[:n]
        graph, score = infer_cell(space, X[tr], y[tr])
        paths = None if graph is None else {frozenset(p) for p in graph.paths()}
        out.append({"seed": s, "edges": None if graph is None else graph.edges,
                    "zero": None if graph is None else graph.zero,
                    "loo_r2": round(score, 4),
                    "is_nb201": graph is not None and graph.zero == 0 and paths == truth})
    print(f"  inferred graph is NB201's on {sum(o['is_nb201'] for o in out)}/{len(out)} seeds",
          flush=True)
    return out


def no_cell_control(space: SearchSpace, X: np.ndarray, n: int, test: int | None,
                    seeds: int = 10) -> dict:
    """Tables over the same genomes with no cell in them, where the scan still picks some graph
    (the best of 2,160 is rarely the plain code): tau with and without the inference. Targets:
    per-gene effects plus noise ("additive"), and plus random effects of every gene pair
    ("pairwise"); weights drawn once (seed 123)."""
    rng = np.random.default_rng(123)
    w1, w2 = rng.normal(size=(6, 5)), rng.normal(size=(15, 25)) * 0.5
    additive = w1[np.arange(6), X].sum(1)
    pairs = sum(w2[k, X[:, i] * 5 + X[:, j]] for k, (i, j) in
                enumerate((i, j) for i in range(6) for j in range(i + 1, 6)))
    tables = {"additive": additive + rng.normal(size=len(X)) * 0.5,
              "pairwise": additive + pairs + rng.normal(size=len(X)) * 0.5}
    out = {}
    for name, y in tables.items():
        with_inf, _ = tau_at(lambda s: make_predictor(space=space, random_state=s), X, y, n,
                             list(range(seeds)), test)
        without, _ = tau_at(lambda s: make_predictor(space=space, random_state=s,
                                                     infer_cell=False), X, y, n,
                            list(range(seeds)), test)
        diff = np.array(with_inf) - np.array(without)
        out[name] = {"tau_default_per_seed": [round(t, 4) for t in with_inf],
                     "tau_no_inference_per_seed": [round(t, 4) for t in without],
                     "paired_mean_diff": round(float(diff.mean()), 4),
                     "paired_se": round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 4)}
        print(f"  no-cell control {name:9s}: tau@{n} default {np.median(with_inf):.3f}, without "
              f"inference {np.median(without):.3f}, paired {diff.mean():+.3f} "
              f"± {diff.std(ddof=1) / np.sqrt(len(diff)):.3f}", flush=True)
    return out


def hv_ratio(problem: TabularProblem, cost: str, budget: int) -> float:
    front = problem.true_front(["error", cost])
    T = np.array([[r["error"], r[cost]] for r in front])
    ideal, nadir = T.min(axis=0), np.array([20.0, T[:, 1].max()])
    F = np.array([[h["error"], h[cost]] for h in problem.history[:budget]], dtype=float)
    return hypervolume(F, ideal, nadir) / hypervolume(T, ideal, nadir)


HV_SPACES = {"cell": "declared cell", "plain": "plain genes (graph inferred)",
             "plain_noinfer": "plain genes, infer_cell=False"}


def bench_hv(data: Path, seeds: list[int], budget: int, costs: list[str], sp: str) -> dict:
    out: dict = {}
    print(f"Surrogate loop, default predictor, {budget} real evaluations (cost cheap), "
          f"{HV_SPACES[sp]}:")
    for cost in costs:
        ratios, secs = [], []
        for s in seeds:
            problem = user_problem(data, cost, cell=sp == "cell")
            predictor = "default" if sp != "plain_noinfer" else make_predictor(
                space=problem.space, random_state=s, infer_cell=False)
            t0 = time.perf_counter()
            SurrogateAssistedSearch(budget=budget, predictor=predictor).run(problem, seed=s)
            secs.append(time.perf_counter() - t0)
            ratios.append(hv_ratio(problem, cost, budget))
        out[cost] = {"hv_ratio_per_seed": [round(r, 5) for r in ratios],
                     "hv_ratio_median": round(float(np.median(ratios)), 5),
                     "seconds_per_run": round(float(np.mean(secs)), 1)}
        print(f"  error vs {cost:15s} HV ratio median {np.median(ratios):.4f} "
              f"({', '.join(f'{r:.4f}' for r in ratios)}), {np.mean(secs):.0f} s/run", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path,
                    help="the NB201 table: nb201_cifar10.csv or its folder (default "
                         "$EVO_NAS_NB201_CSV, else $EVO_NAS_DATA/nb201)")
    ap.add_argument("--quick", action="store_true",
                    help="three levers + default, 1 seed, 3000 test rows, HV on FLOPs only")
    ap.add_argument("--no-hv", action="store_true", help="skip the surrogate-loop HV runs")
    ap.add_argument("--hv-seeds", type=int, default=10)
    ap.add_argument("--hv-spaces", default="cell,plain,plain_noinfer",
                    help="comma list of 'cell' (declared cell graph), 'plain' (genes only; the "
                         "default predictor infers the graph) and 'plain_noinfer' (genes only, "
                         "infer_cell=False)")
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--out", type=Path, default=None,
                    help="default results/predictor.json (--quick: predictor_quick.json)")
    args = ap.parse_args(argv)
    try:
        args.data = resolve_nb201_path(args.data, "--data")
    except DataError as e:
        sys.exit(f"bench_predictor: {e}")
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    t0 = time.perf_counter()
    seeds = [0] if args.quick else [0, 1, 2]
    tau = bench_tau(args.data, seeds, 100, args.quick, 3000 if args.quick else None)
    hv: dict[str, dict] = {}
    if not args.no_hv:
        costs = ["flops"] if args.quick else list(COSTS)
        hv_seeds = list(range(1 if args.quick else args.hv_seeds))
        for sp in args.hv_spaces.split(","):
            if sp not in HV_SPACES:
                ap.error(f"--hv-spaces: {sp!r} is not one of {sorted(HV_SPACES)}")
            hv[sp] = bench_hv(args.data, hv_seeds, args.budget, costs, sp)
    rows = tau["rows"]

    def hv_of(sp: str) -> dict | None:
        return {c: v["hv_ratio_median"] for c, v in hv[sp].items()} if sp in hv else None

    default, cell = rows["default"]["tau_median"], rows["default | declared cell"]["tau_median"]
    summary = {
        "tau_100": {k: v["tau_median"] for k, v in rows.items()},
        "tau_100_default": default,
        "tau_100_default_declared_cell": cell,
        "tau_100_default_no_cell_inference":
            rows["default, no cell inference (infer_cell=False)"]["tau_median"],
        "inferred_graph_is_nb201": [o["is_nb201"] for o in tau["inferred_cell"]],
        "tau_100_previous_default": rows.get("gb_log | onehot+counts (previous default)",
                                             {}).get("tau_median"),
        "tau_target": TAU_TARGET,
        "tau_target_met_by_default": default >= TAU_TARGET,
        "tau_target_met_by_default_with_declared_cell": cell >= TAU_TARGET,
        "tau_target_met_by_any_plain_lever": any(
            v["tau_median"] >= TAU_TARGET for k, v in rows.items()
            if not k.startswith("reference") and "declared cell" not in k),
        "hv_ratio_300": hv_of("cell"),
        "hv_ratio_300_plain_genes": hv_of("plain"),
        "hv_ratio_300_plain_genes_no_inference": hv_of("plain_noinfer"),
        "hv_target": HV_TARGET,
        "hv_target_met": None if "cell" not in hv else {
            c: v >= HV_TARGET for c, v in hv_of("cell").items()},
        "settings": {"quick": args.quick, "seeds": seeds, "n_train": 100,
                     "hv_budget": args.budget, "hv_seeds": None if not hv else
                     (1 if args.quick else args.hv_seeds), "hv_spaces": sorted(hv),
                     "space": "six genes op0..op5, options = CSV op codes 0..4, from_csv, "
                              "no features=; 'declared cell' adds cell=CellGraph(edges, "
                              "zero=0); hv_ratio_300 is on the declared-cell space, "
                              "_plain_genes on the plain one (graph inferred by the default "
                              "predictor), _no_inference with infer_cell=False",
                     "seconds": round(time.perf_counter() - t0, 1)},
        "machine": machine_info(packages=("scikit-learn", "scipy", "pymoo", "numpy")),
    }
    doc = {"summary": summary, "tau": tau, "hv": hv,
           "hv_definition": "pymoo HV on (test error %, cost); ideal = true front minimum, "
                            "nadir = (20 % error, true front maximum cost), reference (1.1, 1.1); "
                            "ratio to the true front's HV"}
    if args.out is None:
        args.out = OUT / ("predictor_quick.json" if args.quick else "predictor.json")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\n{'predictor (tau at 100, median)':60s} tau")
    for k, v in summary["tau_100"].items():
        print(f"{k:60s} {v:.3f}")
    print(f"default meets tau >= {TAU_TARGET}: {summary['tau_target_met_by_default']} (plain), "
          f"{summary['tau_target_met_by_default_with_declared_cell']} (declared cell)")
    for sp, res in hv.items():
        for c, v in res.items():
            print(f"surrogate HV ratio ({sp}) error vs {c:15s} {v['hv_ratio_median']:.4f}  "
                  f"(>= {HV_TARGET}: {v['hv_ratio_median'] >= HV_TARGET})")
    print(f"wrote {args.out} in {summary['settings']['seconds']} s")


if __name__ == "__main__":
    main()
