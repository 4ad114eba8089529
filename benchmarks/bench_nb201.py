"""Prove the evaluator against published ground truth: an NB201 supernet on real CIFAR-10 images,
its ranking scored by NAS-Bench-201's test accuracies, beside free baselines and a search.

    python benchmarks/bench_nb201.py [--data NPZ] [--table CSV] [--C 16] [--N 2] [--epochs 60]
        [--cells 1000] [--levers] [--search-evals 300] [--out results/nb201_fidelity.json]

Data: the CIFAR-10 subset (``--data`` or ``$EVO_NAS_CIFAR_NPZ``; default
``../shared/data/cifar10-subset/cifar10_subset.npz``): the 4,660 training images are split into
weights (80 %) and a held-out split (20 %) for BN statistics and scoring; the 932 test images are
not used for ranking. Truth: ``--table`` / ``$EVO_NAS_NB201_CSV`` (default
``../shared/data/nb201/nb201_cifar10.csv``), column ``c10_test_acc`` of each cell's own row.

Cells: ``--cells`` distinct isomorphism classes (NB201's canonical representatives, see
``evo_nas.spaces.nb201``) drawn with a fixed seed; the one class of disconnected cells (output cut
from input) is kept when drawn, as a search meets it. Every figure is computed on the same cells
for the supernet and for each baseline (params, FLOPs, zero-cost proxies at initialisation), with
paired bootstrap CIs (``evo_nas.truth``). Then NSGA-II and the surrogate loop search the trained
supernet (error + FLOPs, ``--search-evals`` supernet evaluations) and their fronts are re-scored
with the table, beside the same NSGA-II with params as the accuracy stand-in.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evo_nas.algorithms.surrogate import hypervolume  # noqa: E402
from evo_nas.data import load_dataset  # noqa: E402
from evo_nas.nn import FewShotSupernet  # noqa: E402
from evo_nas.nn.nb201 import NB201Supernet  # noqa: E402
from evo_nas.objectives import SupernetAccuracy  # noqa: E402
from evo_nas.proxies import proxy_scores  # noqa: E402
from evo_nas.search import search  # noqa: E402
from evo_nas.spaces.nb201 import NB201Costs, nb201_index, nb201_row_index  # noqa: E402
from evo_nas.train import TrainConfig, train_supernet  # noqa: E402
from evo_nas.truth import ranking_report  # noqa: E402
from problems import NASProblem  # noqa: E402
from problems.tabular import read_csv_columns  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "data"

# The default recipe (the best lever row measured; README "How truthfully does the NB201 supernet
# rank?"). Keys: supernet options, TrainConfig fields, eval options, few-shot split.
DEFAULT = {"supernet": {}, "train": {"sampler": "uniform", "n_random": 1, "distill": False,
                                     "lr": 0.05, "weight_decay": 5e-4, "batch_size": 128,
                                     "sampler_options": {"by_class": True}},
           "eval": {"bn": "batch", "score": "loss", "eval_images": 500}, "fewshot": None}
# The hybrid evaluator: rank average weighting params 0.75 and the supernet 0.25 (both label-free
# at search time). The weight was fixed on a 300-cell probe drawn with cell seed 0; the study
# draws its cells with --cell-seed (default 1).
HYBRID_WEIGHT = 0.25
# A three-way hybrid, weights fixed on the same seed-0 probe (grid over 0..1 in steps of 0.25):
# rank(params) + rank(NWOT) + 0.75 rank(supernet), normalised.
HYBRID3 = {"params": 1.0, "nwot": 1.0, "supernet": 0.75}


class Truth:
    """NB201's table: true test accuracy, params and FLOPs by canonical cell."""

    def __init__(self, path: Path) -> None:
        cols = read_csv_columns(path)
        self.rows = nb201_row_index(cols)
        self.acc = np.asarray(cols["c10_test_acc"], dtype=float)
        self.params = np.asarray(cols["params_mb"], dtype=float)
        self.flops = np.asarray(cols["flops_m"], dtype=float)

    def of(self, X: np.ndarray, column: str) -> np.ndarray:
        return getattr(self, column)[self.rows[[nb201_index(x) for x in X]]]

    def front(self) -> np.ndarray:
        """(error %, FLOPs) of every cell, the truth a search is compared with."""
        return np.column_stack([100.0 - self.acc, self.flops])


def _path(arg: str | None, env: str, default: Path, what: str) -> Path:
    p = Path(arg or os.environ.get(env) or default)
    if not p.is_file():
        sys.exit(f"bench_nb201: {what} not found at {str(p)!r}; pass it as an argument or "
                 f"set ${env}")
    return p


def recipe(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(base))
    for key, value in changes.items():
        section, _, field = key.partition(".")
        if field:
            out[section][field] = value
        else:
            out[section] = value
    return out


def train(rec: dict[str, Any], data: Any, C: int, N: int, epochs: int, seed: int
          ) -> tuple[Any, dict[str, Any]]:
    """A supernet trained with recipe ``rec`` for ``epochs`` sub-network passes per image.

    Samplers that train k sub-networks per step get ``epochs / k`` epochs, so every row of a
    lever table costs the same number of sub-network forward/backward passes."""
    torch.manual_seed(seed)
    net = NB201Supernet(C=C, N=N, **rec["supernet"])
    tr = dict(rec["train"])
    per_step = 5 if tr.get("sampler") == "fair" else int(tr.get("n_random", 1)) + (
        1 if tr.get("distill") else 0)
    fs = rec.get("fewshot")
    t0 = time.perf_counter()
    if fs:  # one-shot for a share of the passes, then split and fine-tune
        share = float(fs.get("oneshot_share", 0.5))
        e1 = max(1, round(epochs * share / per_step))
        train_supernet(net, data, TrainConfig(epochs=e1, seed=seed, **tr))
        net = FewShotSupernet(net, fs.get("gene", "op0"))
        log = train_supernet(net, data, TrainConfig(epochs=max(1, round(epochs / per_step) - e1),
                                                     seed=seed + 1, **tr))
    else:
        log = train_supernet(net, data, TrainConfig(epochs=max(1, round(epochs / per_step)),
                                                     seed=seed, **tr))
    return net, {"train_seconds": time.perf_counter() - t0, "final_loss": log[-1]["loss"],
                 "subnets_per_step": per_step}


def score(net: Any, data: Any, X: np.ndarray, ev: dict[str, Any], seed: int
          ) -> tuple[np.ndarray, np.ndarray, float]:
    """(accuracy %, loss, seconds) of every cell on the held-out split."""
    acc = SupernetAccuracy(net, data, split="val", calib_images=ev.get("calib_images", 256),
                           batch_size=500, seed=seed, bn=ev.get("bn", "recalibrate"),
                           eval_images=ev.get("eval_images"))
    t0 = time.perf_counter()
    out = acc(net.space.decode_many(X))
    return 100.0 - out["error"], out["loss"], time.perf_counter() - t0


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x, kind="stable"), kind="stable") / max(len(x) - 1, 1)


def hv_ratio(F: np.ndarray, truth: Truth) -> float:
    """HV of re-scored points (error %, FLOPs) over the true front's, bench_search's scale."""
    T = truth.front()
    ideal = T.min(axis=0)
    nadir = np.array([20.0, T[:, 1].max()])
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    true_front = T[NonDominatedSorting().do(T, only_non_dominated_front=True)]
    return hypervolume(F, ideal, nadir) / hypervolume(true_front, ideal, nadir)


class TableFlops:
    """NB201's own FLOPs convention (the table's ``flops_m``), so fronts compare with the truth."""

    cheap = True

    def __init__(self, net: Any) -> None:
        self.costs = NB201Costs(C=16, N=5)

    def __call__(self, configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        return {"flops": np.array([self.costs.table_flops(c) / 1e6 for c in configs])}


class TableParams:
    """Params (M) of the C=16 N=5 network, negated: the accuracy stand-in a search maximises."""

    cheap = True

    def __init__(self) -> None:
        self.costs = NB201Costs(C=16, N=5)

    def __call__(self, configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        return {"neg_params": np.array([-self.costs(c)[1] / 1e6 for c in configs])}


class HybridScore:
    """The hybrid evaluator as a per-architecture metric: 0.75 x the params percentile among all
    canonical cells + 0.25 x the supernet-loss percentile among the study's scored cells (lower
    loss = higher percentile), negated for minimisation."""

    cheap = False

    def __init__(self, acc: SupernetAccuracy, all_params: np.ndarray, ref_loss: np.ndarray
                 ) -> None:
        self.acc, self.costs = acc, NB201Costs(C=16, N=5)
        self.params, self.loss = np.sort(all_params), np.sort(ref_loss)

    def __call__(self, configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        loss = self.acc(configs)["loss"]
        p = np.array([self.costs(c)[1] / 1e6 for c in configs])
        p_pct = np.searchsorted(self.params, p, side="right") / len(self.params)
        l_pct = 1.0 - np.searchsorted(self.loss, loss, side="left") / len(self.loss)
        return {"neg_hybrid": -(HYBRID_WEIGHT * l_pct + (1 - HYBRID_WEIGHT) * p_pct)}


def ws_search(net: Any, data: Any, truth: Truth, algorithm: str, evals: int, seed: int,
              ev: dict[str, Any], accuracy: str = "supernet",
              hybrid: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """A search over the supernet (or params, or the hybrid), its front re-scored with the
    table."""
    flops = TableFlops(net)
    if accuracy == "hybrid":
        acc = SupernetAccuracy(net, data, split="val", calib_images=ev.get("calib_images", 256),
                               batch_size=500, seed=seed, bn=ev.get("bn", "recalibrate"),
                               eval_images=ev.get("eval_images"))
        key = "neg_hybrid"
        objectives = {key: HybridScore(acc, *hybrid), "flops": flops}
    elif accuracy == "supernet":
        acc = SupernetAccuracy(net, data, split="val", calib_images=ev.get("calib_images", 256),
                               batch_size=500, seed=seed, bn=ev.get("bn", "recalibrate"),
                               eval_images=ev.get("eval_images"))
        key = "loss" if ev.get("score") == "loss" else "error"
        objectives = {key: acc, "flops": flops}
    else:
        key, objectives = "neg_params", {"neg_params": TableParams(), "flops": flops}
    problem = NASProblem(net.space, objectives)
    t0 = time.perf_counter()
    pop = 20  # both spend at most pop x generations = ``evals`` supernet evaluations
    res = search(problem, algorithm, pop_size=pop, generations=max(1, evals // pop), seed=seed)
    X = net.space.encode_many([r["config"] for r in res.pareto])
    true_err = 100.0 - truth.of(X, "acc")
    true_flops = truth.of(X, "flops")
    seen = len(problem.history)
    return {"algorithm": algorithm, "accuracy_from": accuracy, "evaluations": seen,
            "front_size": len(X), "seconds": time.perf_counter() - t0,
            "hv_ratio": hv_ratio(np.column_stack([true_err, true_flops]), truth),
            "best_true_acc": float(100.0 - true_err.min()),
            "front": [{"genome": x.tolist(), "true_acc": float(100 - e), "flops": float(f)}
                      for x, e, f in zip(X, true_err, true_flops, strict=True)]}


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(), "load_avg": os.getloadavg()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--table")
    ap.add_argument("--C", type=int, default=8)
    ap.add_argument("--N", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=200, help="sub-network passes per image")
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--lever-cells", type=int, default=200)
    ap.add_argument("--quick-levers", action="store_true", help="only the first five lever rows")
    ap.add_argument("--levers", action="store_true",
                    help="instead of the main study, train and score every lever row (equal "
                         "compute, --lever-cells cells) and write nb201_levers.json")
    ap.add_argument("--proxies", default="synflow,nwot")
    ap.add_argument("--search-evals", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="data split, weights, searches")
    ap.add_argument("--cell-seed", type=int, default=1, help="which cells are scored")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--rescore", type=Path, metavar="STUDY_JSON",
                    help="train nothing: recompute the proxies of an earlier study's cells "
                         "(deterministic) and report every hybrid (writes nb201_hybrids.json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    npz = _path(args.data, "EVO_NAS_CIFAR_NPZ", SHARED / "cifar10-subset" / "cifar10_subset.npz",
                "CIFAR-10 subset")
    truth = Truth(_path(args.table, "EVO_NAS_NB201_CSV", SHARED / "nb201" / "nb201_cifar10.csv",
                        "NB201 table"))
    data = load_dataset("npz", path=npz, seed=args.seed, val_fraction=0.2)
    space = NB201Supernet(C=4, N=1).space
    classes = space.classes()
    rng = np.random.default_rng(args.cell_seed)
    X = classes[np.sort(rng.choice(len(classes), min(args.cells, len(classes)), replace=False))]
    true_acc = truth.of(X, "acc")
    params, flops = truth.of(X, "params"), truth.of(X, "flops")
    say = print
    say(f"{len(X)} cells (of {len(classes)} classes), {len(data.train)} training / "
        f"{len(data.val)} held-out images, C={args.C} N={args.N}, {args.epochs} epochs")
    if args.rescore:
        return rescore(args, data, truth, say, t_start)
    if args.levers:
        out = args.out or OUT / "nb201_levers.json"
        rows = run_levers(data, truth, X[: args.lever_cells], args, say)
        doc = {"what": "NB201 supernet training levers at equal compute, each scored on the same "
                       f"{min(args.lever_cells, len(X))} cells against NB201 c10_test_acc",
               "summary": levers_summary(rows),
               "setting": {"C": args.C, "N": args.N, "epochs": args.epochs,
                           "minutes": (time.perf_counter() - t_start) / 60},
               "levers": rows, "machine": machine()}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1))
        say(f"wrote {out}")
        return

    # ------------------------------------------------------------------ default recipe
    net, info = train(DEFAULT, data, args.C, args.N, args.epochs, args.seed)
    say(f"default recipe trained in {info['train_seconds']:.0f} s")
    acc, loss, secs = score(net, data, X, DEFAULT["eval"], args.seed)
    say(f"scored {len(X)} cells in {secs:.0f} s")
    scores: dict[str, np.ndarray] = {"supernet_loss": -loss, "supernet_acc": acc,
                                     "params": params, "flops": flops}
    proxy_secs = {}
    for p in filter(None, args.proxies.split(",")):
        t0 = time.perf_counter()
        init = NB201Supernet(C=args.C, N=args.N)
        scores[p] = proxy_scores(init, space.decode_many(X), data, p, seed=args.seed)
        proxy_secs[p] = time.perf_counter() - t0
        say(f"{p} in {proxy_secs[p]:.0f} s")
    main_key = "supernet_loss" if DEFAULT["eval"]["score"] == "loss" else "supernet_acc"
    if "nwot" in scores:
        scores.update(hybrids(loss, params, scores["nwot"]))
    else:
        scores["hybrid"] = HYBRID_WEIGHT * _ranks(-loss) + (1 - HYBRID_WEIGHT) * _ranks(params)
    report = ranking_report(scores, true_acc, reference="params", groups=params)
    for k, r in report.items():
        say(f"{k:>16}: tau {r['tau']:.3f} [{r['tau_ci95'][0]:.3f}, {r['tau_ci95'][1]:.3f}]  "
            f"P@5% {r['p_at_top5']:.2f}  best-of-200 {r['best_of_200']:.2f}")

    # ------------------------------------------------------------------ searches
    searches = {}
    all_params = np.array([NB201Costs(C=16, N=5)(c)[1] / 1e6 for c in space.decode_many(classes)])
    for name, algo, accuracy in (("nsga2", "nsga2", "supernet"),
                                 ("surrogate", "surrogate", "supernet"),
                                 ("hybrid_nsga2", "nsga2", "hybrid"),
                                 ("params_nsga2", "nsga2", "params")):
        searches[name] = ws_search(net, data, truth, algo, args.search_evals, args.seed,
                                   DEFAULT["eval"], accuracy, hybrid=(all_params, loss))
        s = searches[name]
        say(f"{name}: {s['evaluations']} evaluations, HV ratio {s['hv_ratio']:.3f}, best true "
            f"accuracy {s['best_true_acc']:.2f} %")

    minutes = (time.perf_counter() - t_start) / 60
    sup, par = report[main_key], report["params"]
    doc = {
        "what": "NB201 supernet on the CIFAR-10 subset, ranking scored by NB201 c10_test_acc",
        "summary": {
            "supernet_tau": sup["tau"], "params_tau": par["tau"],
            "tau_minus_params_ci95": sup["tau_minus_params_ci95"],
            "p_at_top5": sup["p_at_top5"], "params_p_at_top5": par["p_at_top5"],
            "best_of_200": sup["best_of_200"], "params_best_of_200": par["best_of_200"],
            "ws_search_best_true_acc": searches["nsga2"]["best_true_acc"],
            "ws_search_hv_ratio": searches["nsga2"]["hv_ratio"],
            "params_search_hv_ratio": searches["params_nsga2"]["hv_ratio"],
            "params_search_best_true_acc": searches["params_nsga2"]["best_true_acc"],
            "hybrid_search_hv_ratio": searches["hybrid_nsga2"]["hv_ratio"],
            "hybrid_search_best_true_acc": searches["hybrid_nsga2"]["best_true_acc"],
            "surrogate_search_hv_ratio": searches["surrogate"]["hv_ratio"],
            "tau_within_params_groups": sup["tau_within_groups"],
            "hybrid_tau": report["hybrid"]["tau"],
            "hybrid_tau_minus_params_ci95": report["hybrid"]["tau_minus_params_ci95"],
            "hybrid_p_at_top5": report["hybrid"]["p_at_top5"],
            "hybrid_best_of_200": report["hybrid"]["best_of_200"],
            "setting": {"C": args.C, "N": args.N, "epochs": args.epochs,
                        "images": len(data.train), "held_out": len(data.val),
                        "cells": len(X), "device": "cpu", "minutes": minutes},
        },
        "recipe": DEFAULT, "hybrid_weight": HYBRID_WEIGHT, "train": info,
        "score_seconds": secs, "proxy_seconds": proxy_secs,
        "report": report, "searches": searches,
        "cells": {"genomes": X.tolist(), "true_acc": true_acc.tolist(),
                  "supernet_loss": loss.tolist(), "supernet_acc": acc.tolist(),
                  **{k: np.asarray(v).tolist() for k, v in scores.items()
                     if k in ("params", "flops", *proxy_secs)}},
        "disconnected_cells": "kept: the one class of cells whose output is cut from the input "
                              "is scored like any other when drawn",
        "machine": machine(),
    }
    out = args.out or OUT / "nb201_fidelity.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    plot(doc, out.with_suffix(".png"))
    say(f"wrote {out} ({minutes:.1f} min)")


LEVERS: list[tuple[str, dict[str, Any]]] = [
    ("default (uniform by isomorphism class, batch-statistics loss)", {}),
    ("sampler: uniform by genome", {"train.sampler_options": {}}),
    ("sampler: strict fair (5 paths/step)", {"train.sampler": "fair",
                                              "train.sampler_options": {}}),
    ("eval: BN re-calibrated (256 images)", {"eval.bn": "recalibrate"}),
    ("few-shot: split on op0 after half the passes", {"fewshot": {"gene": "op0"}}),
    ("BN: no affine in cells", {"supernet": {"affine": False}}),
    ("lr 0.1", {"train.lr": 0.1}),
]
QUICK_LEVERS = 5  # --quick-levers: the first five rows only


def run_levers(data: Any, truth: Truth, X: np.ndarray, args: argparse.Namespace,
               say: Any) -> list[dict[str, Any]]:
    """Each lever a row at equal compute (same sub-network passes), scored on the same cells."""
    rows = []
    true_acc, params = truth.of(X, "acc"), truth.of(X, "params")
    for name, change in LEVERS[:QUICK_LEVERS] if args.quick_levers else LEVERS:
        change = dict(change)
        factor = change.pop("epochs_factor", 1.0)
        rec = recipe(DEFAULT, **change)
        net, info = train(rec, data, args.C, args.N, round(args.epochs * factor), args.seed)
        acc, loss, secs = score(net, data, X, rec["eval"], args.seed)
        s = -loss if rec["eval"]["score"] == "loss" else acc
        rep = ranking_report({"supernet": s, "params": params}, true_acc, reference="params",
                             groups=params, best_of=(100,), n_boot=300)
        r = rep["supernet"]
        rows.append({"lever": name, "recipe": rec, "epochs": round(args.epochs * factor), **info,
                     "score_seconds": secs, "tau": r["tau"], "tau_ci95": r["tau_ci95"],
                     "tau_minus_params_ci95": r["tau_minus_params_ci95"],
                     "p_at_top5": r["p_at_top5"], "best_of_100": r["best_of_100"],
                     "tau_within_params_groups": r["tau_within_groups"],
                     "params_tau": rep["params"]["tau"]})
        say(f"lever {name!r}: tau {r['tau']:.3f}, P@5% {r['p_at_top5']:.2f}, best-of-100 "
            f"{r['best_of_100']:.2f} ({info['train_seconds']:.0f} s)")
    return rows


def hybrids(loss: np.ndarray, params: np.ndarray, nwot: np.ndarray) -> dict[str, np.ndarray]:
    """The label-free hybrids of the supernet's loss with the free proxies (rank averages)."""
    w = HYBRID3
    total = sum(w.values())
    return {"hybrid": HYBRID_WEIGHT * _ranks(-loss) + (1 - HYBRID_WEIGHT) * _ranks(params),
            "params_nwot": (_ranks(params) + _ranks(nwot)) / 2,
            "hybrid3": (w["params"] * _ranks(params) + w["nwot"] * _ranks(nwot)
                        + w["supernet"] * _ranks(-loss)) / total}


def rescore(args: argparse.Namespace, data: Any, truth: Truth, say: Any, t_start: float) -> None:
    """Every hybrid on an earlier study's cells, its supernet losses as they were recorded."""
    doc = json.loads(args.rescore.read_text())
    cells = doc["cells"]
    X = np.array(cells["genomes"], dtype=np.int64)
    loss, true_acc = np.array(cells["supernet_loss"]), np.array(cells["true_acc"])
    params = truth.of(X, "params")
    st = doc["summary"]["setting"]
    init = NB201Supernet(C=st["C"], N=st["N"])
    configs = init.space.decode_many(X)
    proxies = {p: proxy_scores(init, configs, data, p, seed=args.seed) for p in ("synflow", "nwot")}
    scores = {"supernet_loss": -loss, "params": params, **proxies,
              **hybrids(loss, params, proxies["nwot"])}
    report = ranking_report(scores, true_acc, reference="params", groups=params)
    for k, r in report.items():
        say(f"{k:>14}: tau {r['tau']:.3f}  P@5% {r['p_at_top5']:.2f}  best-of-200 "
            f"{r['best_of_200']:.2f}")
    out = args.out or OUT / "nb201_hybrids.json"
    out.write_text(json.dumps({
        "what": "hybrids of the recorded supernet losses with free proxies, on the cells of "
                f"{args.rescore.name}; weights fixed beforehand on a separate seed-0 probe",
        "summary": hybrids_summary(report),
        "weights": {"hybrid": HYBRID_WEIGHT, "hybrid3": HYBRID3}, "report": report,
        "minutes": (time.perf_counter() - t_start) / 60, "machine": machine()}, indent=1))
    say(f"wrote {out}")


def levers_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline of a lever table: each lever's tau, the best lever, params' tau on the cells."""
    best = max(rows, key=lambda r: r["tau"])
    return {"tau_by_lever": {r["lever"]: r["tau"] for r in rows}, "best_lever": best["lever"],
            "best_tau": best["tau"], "best_tau_ci95": best["tau_ci95"],
            "params_tau": rows[0]["params_tau"]}


def hybrids_summary(report: dict[str, Any]) -> dict[str, Any]:
    """Headline of the hybrids: tau, its paired difference to params, P@5 %, best-of-200."""
    out: dict[str, Any] = {"params_tau": report["params"]["tau"],
                           "params_p_at_top5": report["params"]["p_at_top5"],
                           "params_best_of_200": report["params"]["best_of_200"]}
    for k in ("supernet_loss", "hybrid", "params_nwot", "hybrid3"):
        r = report[k]
        out.update({f"{k}_tau": r["tau"], f"{k}_tau_minus_params_ci95":
                    r["tau_minus_params_ci95"], f"{k}_p_at_top5": r["p_at_top5"],
                    f"{k}_best_of_200": r["best_of_200"]})
    return out


def plot(doc: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    cells = doc["cells"]
    a.scatter(cells["supernet_loss"], cells["true_acc"], s=6, alpha=0.5)
    a.set_xlabel("supernet held-out loss")
    a.set_ylabel("NB201 test accuracy (%)")
    a.set_title(f"supernet tau {doc['summary']['supernet_tau']:.3f}")
    names = list(doc["report"])
    taus = [doc["report"][k]["tau"] for k in names]
    err = np.array([[t - doc["report"][k]["tau_ci95"][0], doc["report"][k]["tau_ci95"][1] - t]
                    for k, t in zip(names, taus, strict=True)]).T
    b.barh(names, taus, xerr=err, color="tab:blue")
    b.set_xlabel("Kendall tau vs NB201 test accuracy (95 % CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
