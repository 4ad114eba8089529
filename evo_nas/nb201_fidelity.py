"""The NB201 ground-truth fidelity study: an NB201 supernet trained on real CIFAR-10 images, its
ranking scored by NAS-Bench-201's published test accuracies, beside free baselines and searches.

This is the library behind ``benchmarks/bench_nb201.py`` and ``evo-nas fidelity --truth nb201``
(benchmarks are not part of the package, so the command cannot import them). It holds the
training recipe, the scoring, the table of truth, the searches re-scored by the table and the
summaries, so both entry points write the same JSON.

Data: the CIFAR-10 subset (``cifar10_subset.npz``, ``$EVO_NAS_CIFAR_NPZ``); its training images
are split into weights (80 %) and a held-out split (20 %) for BN statistics and scoring; its test
images are not used for ranking. Truth: the NB201 table (``nb201_cifar10.csv``,
``$EVO_NAS_NB201_CSV``), column ``c10_test_acc`` of each cell's own row. Without an argument or
those variables both are read from the shared data folder ``$EVO_NAS_DATA`` (``nb201/`` and
``cifar10-subset/`` in it); nothing outside the repository is guessed (see
:mod:`evo_nas.data_paths`).

Cells: distinct isomorphism classes (NB201's canonical representatives, see
``evo_nas.spaces.nb201``) drawn with a fixed seed; the one class of disconnected cells (output
cut from input) is kept when drawn, as a search meets it. Every figure is computed on the same
cells for the supernet and for each baseline (params, FLOPs, zero-cost proxies at
initialisation), with paired bootstrap CIs (``evo_nas.truth``). Then NSGA-II and the surrogate
loop search the trained supernet (error + FLOPs) and their fronts are re-scored with the table,
beside the same NSGA-II with params as the accuracy stand-in and with the hybrid evaluator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evo_nas.data_paths import (  # where the data live (re-exported: their old home)
    CIFAR_ENV,
    CIFAR_FILE,
    CIFAR_FOLDER,
    DATA_ENV,
    NB201_ENV,
    NB201_FILE,
    NB201_FOLDER,
    resolve_data_path,
    shared_data_dir,
)
from evo_nas.errors import ConfigError, DataError

__all__ = [
    "CIFAR_ENV",
    "CIFAR_FILE",
    "CIFAR_FOLDER",
    "DATA_ENV",
    "DEFAULT",
    "HYBRID3",
    "HYBRID_WEIGHT",
    "LEVERS",
    "NB201_ENV",
    "NB201_FILE",
    "NB201_FOLDER",
    "QUICK_LEVERS",
    "SEARCHES",
    "HybridScore",
    "NB201Study",
    "NB201Truth",
    "TableFlops",
    "TableParams",
    "describe",
    "draw_cells",
    "format_summary",
    "hv_ratio",
    "hybrids",
    "hybrids_summary",
    "levers_summary",
    "load_study_data",
    "machine",
    "plot",
    "recipe",
    "rescore",
    "resolve_data_path",
    "run_levers",
    "run_study",
    "save",
    "score",
    "shared_data_dir",
    "study_settings",
    "study_summary",
    "train",
    "ws_search",
]


# The default recipe (the best lever row measured; README "How truthfully does the NB201 supernet
# rank?"). Keys: supernet options, TrainConfig fields, eval options, few-shot split.
DEFAULT: dict[str, Any] = {
    "supernet": {}, "train": {"sampler": "uniform", "n_random": 1, "distill": False,
                              "lr": 0.05, "weight_decay": 5e-4, "batch_size": 128,
                              "sampler_options": {"by_class": True}},
    "eval": {"bn": "batch", "score": "loss", "eval_images": 500}, "fewshot": None}
# The hybrid evaluator: rank average weighting params 0.75 and the supernet 0.25 (both label-free
# at search time). The weight was fixed on a 300-cell probe drawn with cell seed 0; the study
# draws its cells with cell seed 1 by default.
HYBRID_WEIGHT = 0.25
# A three-way hybrid, weights fixed on the same seed-0 probe (grid over 0..1 in steps of 0.25):
# rank(params) + rank(NWOT) + 0.75 rank(supernet), normalised.
HYBRID3 = {"params": 1.0, "nwot": 1.0, "supernet": 0.75}

Log = Callable[[str], Any]


# ---------------------------------------------------------------------------- settings and data
@dataclass
class NB201Study:
    """Settings of one study; the defaults are the committed 30-minute CPU run
    (``benchmarks/results/nb201_fidelity.json``), :meth:`quick` a one-minute smoke run."""

    C: int = 8
    N: int = 1
    epochs: int = 200  # sub-network passes per training image
    cells: int = 1000
    search_evals: int = 300
    proxies: tuple[str, ...] = ("synflow", "nwot")
    seed: int = 0  # data split, weights, searches
    cell_seed: int = 1  # which cells are scored
    max_train: int | None = None  # training images kept (None: all 3,728)
    eval_images: int | None = None  # held-out images scored (None: the recipe's 500)
    n_boot: int = 1000  # bootstrap replicates of every CI
    recipe: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(DEFAULT)))

    def __post_init__(self) -> None:
        from evo_nas.proxies import PROXIES

        self.proxies = tuple(self.proxies)
        for name, low in (("C", 1), ("N", 1), ("epochs", 1), ("cells", 2),
                          ("search_evals", 1), ("n_boot", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"nb201.{name} = {value!r}: must be a whole number >= {low}")
        for name in ("max_train", "eval_images"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ConfigError(f"nb201.{name} = {value!r}: must be a whole number >= 1 "
                                  "(or unset: all)")
        for p in self.proxies:
            if p not in PROXIES:
                raise ConfigError(f"nb201.proxies: {p!r} is unknown: choose from {list(PROXIES)}")
        if self.eval_images is not None:
            self.recipe = recipe(self.recipe, **{"eval.eval_images": self.eval_images})

    @classmethod
    def quick(cls, **changes: Any) -> NB201Study:
        """A smoke run of the whole pipeline, about a minute on 2 CPU cores: a C=4 N=1 supernet
        trained 8 passes per image on 400 images, 100 cells scored on 128 held-out images, and
        searches of 40 evaluations. Its figures say the pipeline works, not how well it ranks."""
        base = {"C": 4, "N": 1, "epochs": 8, "cells": 100, "search_evals": 40,
                "max_train": 400, "eval_images": 128, "n_boot": 100}
        return cls(**{**base, **changes})


def load_study_data(npz: str | Path, study: NB201Study) -> Any:
    """The CIFAR-10 subset split as the study uses it: 80 % weights, 20 % held out."""
    from evo_nas.data import load_dataset

    return load_dataset("npz", path=npz, seed=study.seed, val_fraction=0.2,
                        max_train=study.max_train)


class NB201Truth:
    """NB201's table: true test accuracy, params and FLOPs by canonical cell."""

    def __init__(self, path: str | Path) -> None:
        from evo_nas.spaces.nb201 import nb201_row_index
        from problems.tabular import read_csv_columns

        cols = read_csv_columns(path)
        for c in ("c10_test_acc", "params_mb", "flops_m"):
            if c not in cols:
                raise DataError(f"NB201 table {str(path)!r} has no column {c!r}")
        self.rows = nb201_row_index(cols)
        self.acc = np.asarray(cols["c10_test_acc"], dtype=float)
        self.params = np.asarray(cols["params_mb"], dtype=float)
        self.flops = np.asarray(cols["flops_m"], dtype=float)

    def of(self, X: np.ndarray, column: str) -> np.ndarray:
        """``column`` (acc, params or flops) of each genome's own row."""
        from evo_nas.spaces.nb201 import nb201_index

        rows = self.rows[[nb201_index(x) for x in X]]
        if (rows < 0).any():
            missing = [x.tolist() for x, r in zip(X, rows, strict=True) if r < 0][:3]
            raise DataError(f"NB201 table has no row for cells {missing}: it must hold all "
                            "15,625 cells")
        return getattr(self, column)[rows]

    def front(self) -> np.ndarray:
        """(error %, FLOPs) of every cell, the truth a search is compared with."""
        return np.column_stack([100.0 - self.acc, self.flops])


def draw_cells(n: int, cell_seed: int) -> np.ndarray:
    """``n`` distinct canonical cells (isomorphism classes) drawn with ``cell_seed``, sorted."""
    from evo_nas.nn.nb201 import NB201Supernet

    classes = NB201Supernet(C=4, N=1).space.classes()
    rng = np.random.default_rng(cell_seed)
    return classes[np.sort(rng.choice(len(classes), min(n, len(classes)), replace=False))]


def describe(X: np.ndarray, data: Any, C: int, N: int, epochs: int) -> str:
    """The study's opening line: cells, images, supernet size."""
    from evo_nas.nn.nb201 import NB201Supernet

    n_classes = len(NB201Supernet(C=4, N=1).space.classes())
    return (f"{len(X)} cells (of {n_classes} classes), {len(data.train)} training / "
            f"{len(data.val)} held-out images, C={C} N={N}, {epochs} epochs")


# ---------------------------------------------------------------------------- training, scoring
def recipe(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with dotted ``section.field`` (or whole ``section``) changes."""
    out = json.loads(json.dumps(base))
    for key, value in changes.items():
        section, _, name = key.partition(".")
        if name:
            out[section][name] = value
        else:
            out[section] = value
    return out


def train(rec: dict[str, Any], data: Any, C: int, N: int, epochs: int, seed: int
          ) -> tuple[Any, dict[str, Any]]:
    """A supernet trained with recipe ``rec`` for ``epochs`` sub-network passes per image.

    Samplers that train k sub-networks per step get ``epochs / k`` epochs, so every row of a
    lever table costs the same number of sub-network forward/backward passes."""
    from evo_nas.nn import FewShotSupernet
    from evo_nas.nn.nb201 import NB201Supernet
    from evo_nas.train import TrainConfig, train_supernet

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


def _accuracy(net: Any, data: Any, ev: dict[str, Any], seed: int) -> Any:
    from evo_nas.objectives import SupernetAccuracy

    return SupernetAccuracy(net, data, split="val", calib_images=ev.get("calib_images", 256),
                            batch_size=500, seed=seed, bn=ev.get("bn", "recalibrate"),
                            eval_images=ev.get("eval_images"))


def score(net: Any, data: Any, X: np.ndarray, ev: dict[str, Any], seed: int
          ) -> tuple[np.ndarray, np.ndarray, float]:
    """(accuracy %, loss, seconds) of every cell on the held-out split."""
    acc = _accuracy(net, data, ev, seed)
    t0 = time.perf_counter()
    out = acc(net.space.decode_many(X))
    return 100.0 - out["error"], out["loss"], time.perf_counter() - t0


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x, kind="stable"), kind="stable") / max(len(x) - 1, 1)


def hybrids(loss: np.ndarray, params: np.ndarray, nwot: np.ndarray) -> dict[str, np.ndarray]:
    """The label-free hybrids of the supernet's loss with the free proxies (rank averages)."""
    w = HYBRID3
    total = sum(w.values())
    return {"hybrid": HYBRID_WEIGHT * _ranks(-loss) + (1 - HYBRID_WEIGHT) * _ranks(params),
            "params_nwot": (_ranks(params) + _ranks(nwot)) / 2,
            "hybrid3": (w["params"] * _ranks(params) + w["nwot"] * _ranks(nwot)
                        + w["supernet"] * _ranks(-loss)) / total}


# ---------------------------------------------------------------------------- searches
def hv_ratio(F: np.ndarray, truth: NB201Truth) -> float:
    """HV of re-scored points (error %, FLOPs) over the true front's, bench_search's scale."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    from evo_nas.algorithms.surrogate import hypervolume

    T = truth.front()
    ideal = T.min(axis=0)
    nadir = np.array([20.0, T[:, 1].max()])
    true_front = T[NonDominatedSorting().do(T, only_non_dominated_front=True)]
    return hypervolume(F, ideal, nadir) / hypervolume(true_front, ideal, nadir)


class TableFlops:
    """NB201's own FLOPs convention (the table's ``flops_m``), so fronts compare with the truth."""

    cheap = True

    def __init__(self, net: Any = None) -> None:
        from evo_nas.spaces.nb201 import NB201Costs

        self.costs = NB201Costs(C=16, N=5)

    def __call__(self, configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        return {"flops": np.array([self.costs.table_flops(c) / 1e6 for c in configs])}


class TableParams:
    """Params (M) of the C=16 N=5 network, negated: the accuracy stand-in a search maximises."""

    cheap = True

    def __init__(self) -> None:
        from evo_nas.spaces.nb201 import NB201Costs

        self.costs = NB201Costs(C=16, N=5)

    def __call__(self, configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        return {"neg_params": np.array([-self.costs(c)[1] / 1e6 for c in configs])}


class HybridScore:
    """The hybrid evaluator as a per-architecture metric: 0.75 x the params percentile among all
    canonical cells + 0.25 x the supernet-loss percentile among the study's scored cells (lower
    loss = higher percentile), negated for minimisation."""

    cheap = False

    def __init__(self, acc: Any, all_params: np.ndarray, ref_loss: np.ndarray) -> None:
        from evo_nas.spaces.nb201 import NB201Costs

        self.acc, self.costs = acc, NB201Costs(C=16, N=5)
        self.params, self.loss = np.sort(all_params), np.sort(ref_loss)

    def __call__(self, configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        loss = self.acc(configs)["loss"]
        p = np.array([self.costs(c)[1] / 1e6 for c in configs])
        p_pct = np.searchsorted(self.params, p, side="right") / len(self.params)
        l_pct = 1.0 - np.searchsorted(self.loss, loss, side="left") / len(self.loss)
        return {"neg_hybrid": -(HYBRID_WEIGHT * l_pct + (1 - HYBRID_WEIGHT) * p_pct)}


def ws_search(net: Any, data: Any, truth: NB201Truth, algorithm: str, evals: int, seed: int,
              ev: dict[str, Any], accuracy: str = "supernet",
              hybrid: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """A search over the supernet (or params, or the hybrid), its front re-scored with the
    table: what a search on this evaluator would really have found."""
    from evo_nas.search import search
    from problems import NASProblem

    flops = TableFlops(net)
    if accuracy == "hybrid":
        if hybrid is None:
            raise ConfigError("ws_search: accuracy 'hybrid' needs hybrid=(all_params, loss)")
        key = "neg_hybrid"
        objectives = {key: HybridScore(_accuracy(net, data, ev, seed), *hybrid), "flops": flops}
    elif accuracy == "supernet":
        key = "loss" if ev.get("score") == "loss" else "error"
        objectives = {key: _accuracy(net, data, ev, seed), "flops": flops}
    else:
        key, objectives = "neg_params", {"neg_params": TableParams(), "flops": flops}
    problem = NASProblem(net.space, objectives)
    t0 = time.perf_counter()
    pop = 20  # both spend at most pop x generations = ``evals`` supernet evaluations
    # the surrogate loop needs its budget of real evaluations spelled out (NSGA-II keeps its
    # generation count, as in the committed study: duplicates there cost nothing)
    budget = evals if algorithm == "surrogate" else None
    res = search(problem, algorithm, pop_size=pop, generations=max(1, evals // pop), seed=seed,
                 budget=budget)
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
    """Where the figures were measured (timings depend on it)."""
    from evo_nas.machine import machine_info

    return machine_info()


# ---------------------------------------------------------------------------- the main study
# the searches of a study: (name, algorithm, what stands in for accuracy)
SEARCHES = (("nsga2", "nsga2", "supernet"), ("surrogate", "surrogate", "supernet"),
            ("hybrid_nsga2", "nsga2", "hybrid"), ("params_nsga2", "nsga2", "params"))


def run_study(study: NB201Study, data: Any, truth: NB201Truth, log: Log = print,
              t_start: float | None = None) -> dict[str, Any]:
    """Train the supernet with the study's recipe, score its ranking and the baselines' against
    the table, search it, and return the JSON document (``summary`` first)."""
    from evo_nas.nn.nb201 import NB201Supernet
    from evo_nas.proxies import proxy_scores
    from evo_nas.spaces.nb201 import NB201Costs
    from evo_nas.truth import ranking_report

    t_start = time.perf_counter() if t_start is None else t_start
    rec = study.recipe
    space = NB201Supernet(C=4, N=1).space
    classes = space.classes()
    X = draw_cells(study.cells, study.cell_seed)
    true_acc = truth.of(X, "acc")
    params, flops = truth.of(X, "params"), truth.of(X, "flops")
    log(describe(X, data, study.C, study.N, study.epochs))

    net, info = train(rec, data, study.C, study.N, study.epochs, study.seed)
    log(f"default recipe trained in {info['train_seconds']:.0f} s")
    acc, loss, secs = score(net, data, X, rec["eval"], study.seed)
    log(f"scored {len(X)} cells in {secs:.0f} s")
    scores: dict[str, np.ndarray] = {"supernet_loss": -loss, "supernet_acc": acc,
                                     "params": params, "flops": flops}
    proxy_secs = {}
    for p in study.proxies:
        t0 = time.perf_counter()
        init = NB201Supernet(C=study.C, N=study.N)
        scores[p] = proxy_scores(init, space.decode_many(X), data, p, seed=study.seed)
        proxy_secs[p] = time.perf_counter() - t0
        log(f"{p} in {proxy_secs[p]:.0f} s")
    main_key = "supernet_loss" if rec["eval"]["score"] == "loss" else "supernet_acc"
    if "nwot" in scores:
        scores.update(hybrids(loss, params, scores["nwot"]))
    else:
        scores["hybrid"] = HYBRID_WEIGHT * _ranks(-loss) + (1 - HYBRID_WEIGHT) * _ranks(params)
    report = ranking_report(scores, true_acc, reference="params", groups=params,
                            n_boot=study.n_boot)
    for k, r in report.items():
        log(f"{k:>16}: tau {r['tau']:.3f} [{r['tau_ci95'][0]:.3f}, {r['tau_ci95'][1]:.3f}]  "
            f"P@5% {r['p_at_top5']:.2f}  best-of-200 {r['best_of_200']:.2f}")

    searches = {}
    all_params = np.array([NB201Costs(C=16, N=5)(c)[1] / 1e6 for c in space.decode_many(classes)])
    for name, algo, accuracy in SEARCHES:
        searches[name] = ws_search(net, data, truth, algo, study.search_evals, study.seed,
                                   rec["eval"], accuracy, hybrid=(all_params, loss))
        s = searches[name]
        log(f"{name}: {s['evaluations']} evaluations, HV ratio {s['hv_ratio']:.3f}, best true "
            f"accuracy {s['best_true_acc']:.2f} %")

    minutes = (time.perf_counter() - t_start) / 60
    setting = {"C": study.C, "N": study.N, "epochs": study.epochs, "images": len(data.train),
               "held_out": len(data.val), "cells": len(X), "device": "cpu", "minutes": minutes}
    return {
        "what": "NB201 supernet on the CIFAR-10 subset, ranking scored by NB201 c10_test_acc",
        "summary": study_summary(report, searches, main_key, setting),
        "recipe": rec, "hybrid_weight": HYBRID_WEIGHT, "train": info,
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


def study_summary(report: dict[str, Any], searches: dict[str, Any], main_key: str,
                  setting: dict[str, Any]) -> dict[str, Any]:
    """Headline of the study: the supernet's and the hybrid's ranking figures beside params',
    and what each search found once re-scored by the table."""
    sup, par, hyb = report[main_key], report["params"], report["hybrid"]
    return {
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
        "hybrid_tau": hyb["tau"],
        "hybrid_tau_minus_params_ci95": hyb["tau_minus_params_ci95"],
        "hybrid_p_at_top5": hyb["p_at_top5"],
        "hybrid_best_of_200": hyb["best_of_200"],
        "setting": setting,
    }


def format_summary(doc: dict[str, Any]) -> str:
    """The study's headline as a few lines of text (what the command prints at the end)."""
    s = doc["summary"]
    lo, hi = s["tau_minus_params_ci95"]
    st = s["setting"]
    return "\n".join([
        f"NB201 ground truth, {st['cells']} cells, C={st['C']} N={st['N']}, {st['epochs']} "
        f"epochs on {st['images']} images ({st['minutes']:.1f} min)",
        f"  Kendall tau vs NB201 test accuracy: supernet {s['supernet_tau']:.3f}, params "
        f"{s['params_tau']:.3f} (difference CI [{lo:+.3f}, {hi:+.3f}]), hybrid "
        f"{s['hybrid_tau']:.3f}",
        f"  best-of-200: supernet {s['best_of_200']:.2f} %, params "
        f"{s['params_best_of_200']:.2f} %, hybrid {s['hybrid_best_of_200']:.2f} %",
        f"  search HV ratio (front re-scored by the table): supernet NSGA-II "
        f"{s['ws_search_hv_ratio']:.3f}, surrogate {s['surrogate_search_hv_ratio']:.3f}, "
        f"hybrid {s['hybrid_search_hv_ratio']:.3f}, params {s['params_search_hv_ratio']:.3f}",
    ])


# ---------------------------------------------------------------------------- levers, rescoring
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
QUICK_LEVERS = 5  # the first five rows only


def run_levers(data: Any, truth: NB201Truth, X: np.ndarray, C: int, N: int, epochs: int,
               seed: int, quick: bool = False, log: Log = print,
               only: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Each lever a row at equal compute (same sub-network passes), scored on the same cells;
    ``only``: the rows of :data:`LEVERS` to run (by index), e.g. the best two at more epochs."""
    from evo_nas.truth import ranking_report

    if only is not None:
        bad = [i for i in only if not 0 <= i < len(LEVERS)]
        if bad:
            raise ConfigError(f"lever rows {bad}: choose indices 0..{len(LEVERS) - 1} of "
                              f"{[name for name, _ in LEVERS]}")
    chosen = ([LEVERS[i] for i in only] if only is not None
              else LEVERS[:QUICK_LEVERS] if quick else LEVERS)
    rows = []
    true_acc, params = truth.of(X, "acc"), truth.of(X, "params")
    for name, change in chosen:
        change = dict(change)
        factor = change.pop("epochs_factor", 1.0)
        rec = recipe(DEFAULT, **change)
        net, info = train(rec, data, C, N, round(epochs * factor), seed)
        acc, loss, secs = score(net, data, X, rec["eval"], seed)
        s = -loss if rec["eval"]["score"] == "loss" else acc
        rep = ranking_report({"supernet": s, "params": params}, true_acc, reference="params",
                             groups=params, best_of=(100,), n_boot=300)
        r = rep["supernet"]
        rows.append({"lever": name, "recipe": rec, "epochs": round(epochs * factor), **info,
                     "score_seconds": secs, "tau": r["tau"], "tau_ci95": r["tau_ci95"],
                     "tau_minus_params_ci95": r["tau_minus_params_ci95"],
                     "p_at_top5": r["p_at_top5"], "best_of_100": r["best_of_100"],
                     "tau_within_params_groups": r["tau_within_groups"],
                     "params_tau": rep["params"]["tau"]})
        log(f"lever {name!r}: tau {r['tau']:.3f}, P@5% {r['p_at_top5']:.2f}, best-of-100 "
            f"{r['best_of_100']:.2f} ({info['train_seconds']:.0f} s)")
    return rows


def levers_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline of a lever table: each lever's tau, the best lever, params' tau on the cells."""
    best = max(rows, key=lambda r: r["tau"])
    return {"tau_by_lever": {r["lever"]: r["tau"] for r in rows}, "best_lever": best["lever"],
            "best_tau": best["tau"], "best_tau_ci95": best["tau_ci95"],
            "params_tau": rows[0]["params_tau"]}


def rescore(study_doc: dict[str, Any], data: Any, truth: NB201Truth, seed: int,
            log: Log = print) -> dict[str, Any]:
    """Every hybrid on an earlier study's cells, its supernet losses as they were recorded
    (the proxies are recomputed: deterministic): ``{"summary": ..., "report": ...}``."""
    from evo_nas.nn.nb201 import NB201Supernet
    from evo_nas.proxies import proxy_scores
    from evo_nas.truth import ranking_report

    cells = study_doc["cells"]
    X = np.array(cells["genomes"], dtype=np.int64)
    loss, true_acc = np.array(cells["supernet_loss"]), np.array(cells["true_acc"])
    params = truth.of(X, "params")
    st = study_doc["summary"]["setting"]
    init = NB201Supernet(C=st["C"], N=st["N"])
    configs = init.space.decode_many(X)
    proxies = {p: proxy_scores(init, configs, data, p, seed=seed) for p in ("synflow", "nwot")}
    scores = {"supernet_loss": -loss, "params": params, **proxies,
              **hybrids(loss, params, proxies["nwot"])}
    report = ranking_report(scores, true_acc, reference="params", groups=params)
    for k, r in report.items():
        log(f"{k:>14}: tau {r['tau']:.3f}  P@5% {r['p_at_top5']:.2f}  best-of-200 "
            f"{r['best_of_200']:.2f}")
    return {"summary": hybrids_summary(report), "report": report}


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


# ---------------------------------------------------------------------------- output
def save(doc: dict[str, Any], path: str | Path) -> Path:
    """Write ``doc`` as indented JSON, creating the folder (as the stand-alone study does)."""
    from evo_nas.fidelity import save_result

    return save_result(doc, path)


def plot(doc: dict[str, Any], path: str | Path) -> Path:
    """Supernet loss against true accuracy, and every evaluator's tau with its CI."""
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
    b.barh(names, taus, xerr=np.clip(err, 0, None), color="tab:blue")
    b.set_xlabel("Kendall tau vs NB201 test accuracy (95 % CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def study_settings(study: NB201Study) -> dict[str, Any]:
    """The study's settings as plain JSON values."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(study).items()}
