"""Prove the evaluator against published ground truth: an NB201 supernet on real CIFAR-10 images,
its ranking scored by NAS-Bench-201's test accuracies, beside free baselines and a search.

    python benchmarks/bench_nb201.py [--data NPZ] [--table CSV] [--C 16] [--N 2] [--epochs 60]
        [--cells 1000] [--levers] [--search-evals 300] [--out results/nb201_fidelity.json]

Data: the CIFAR-10 subset (``--data``, else ``$EVO_NAS_CIFAR_NPZ``, else
``$EVO_NAS_DATA/cifar10-subset/cifar10_subset.npz``): the 4,660 training images are split into
weights (80 %) and a held-out split (20 %) for BN statistics and scoring; the 932 test images are
not used for ranking. Truth: ``--table``, else ``$EVO_NAS_NB201_CSV``, else
``$EVO_NAS_DATA/nb201/nb201_cifar10.csv``, column ``c10_test_acc`` of each cell's own row. When
none names a file, or it is missing, the benchmark exits with one line naming the flag and the
variables.

Cells: ``--cells`` distinct isomorphism classes (NB201's canonical representatives, see
``evo_nas.spaces.nb201``) drawn with a fixed seed; the one class of disconnected cells (output cut
from input) is kept when drawn, as a search meets it. Every figure is computed on the same cells
for the supernet and for each baseline (params, FLOPs, zero-cost proxies at initialisation), with
paired bootstrap CIs (``evo_nas.truth``). Then NSGA-II and the surrogate loop search the trained
supernet (error + FLOPs, ``--search-evals`` supernet evaluations) and their fronts are re-scored
with the table, beside the same NSGA-II with params as the accuracy stand-in.

The study itself lives in :mod:`evo_nas.nb201_fidelity` (also ``evo-nas fidelity --truth
nb201``); this script keeps the benchmark's flags and adds the lever table and the re-scoring.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evo_nas.errors import EvoNasError  # noqa: E402
from evo_nas.nb201_fidelity import (  # noqa: E402, F401  (re-exported for scripts importing us)
    CIFAR_ENV,
    CIFAR_FILE,
    CIFAR_FOLDER,
    DEFAULT,
    HYBRID3,
    HYBRID_WEIGHT,
    LEVERS,
    NB201_ENV,
    NB201_FILE,
    NB201_FOLDER,
    QUICK_LEVERS,
    NB201Study,
    NB201Truth,
    describe,
    draw_cells,
    hv_ratio,
    hybrids,
    hybrids_summary,
    levers_summary,
    load_study_data,
    machine,
    plot,
    recipe,
    rescore,
    resolve_data_path,
    run_levers,
    run_study,
    save,
    score,
    train,
    ws_search,
)

OUT = ROOT / "benchmarks" / "results"
Truth = NB201Truth  # the benchmark's old name


def parser() -> argparse.ArgumentParser:
    """The benchmark's flags (unchanged since the committed results were made)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--table")
    ap.add_argument("--C", type=int, default=8)
    ap.add_argument("--N", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=200, help="sub-network passes per image")
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--lever-cells", type=int, default=200)
    ap.add_argument("--quick-levers", action="store_true", help="only the first five lever rows")
    ap.add_argument("--lever-rows", help="comma-separated indices of the lever rows to run "
                                         "(default all; e.g. 0,2 for default and strict fair)")
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
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    try:
        npz = resolve_data_path(args.data, "--data", CIFAR_ENV, CIFAR_FILE, CIFAR_FOLDER,
                                what="CIFAR-10 subset")
        table = resolve_data_path(args.table, "--table", NB201_ENV, NB201_FILE, NB201_FOLDER,
                                  what="NB201 table")
        study = NB201Study(C=args.C, N=args.N, epochs=args.epochs, cells=args.cells,
                           search_evals=args.search_evals, seed=args.seed,
                           cell_seed=args.cell_seed,
                           proxies=tuple(filter(None, args.proxies.split(","))))
        truth = NB201Truth(table)
        data = load_study_data(npz, study)
    except EvoNasError as e:
        sys.exit(f"bench_nb201: {e}")
    say = print
    if args.rescore:
        X = draw_cells(args.cells, args.cell_seed)
        say(describe(X, data, args.C, args.N, args.epochs))
        doc = rescore(json.loads(args.rescore.read_text()), data, truth, args.seed, log=say)
        out = save({"what": "hybrids of the recorded supernet losses with free proxies, on the "
                            f"cells of {args.rescore.name}; weights fixed beforehand on a "
                            "separate seed-0 probe",
                    "summary": doc["summary"],
                    "weights": {"hybrid": HYBRID_WEIGHT, "hybrid3": HYBRID3},
                    "report": doc["report"], "minutes": (time.perf_counter() - t_start) / 60,
                    "machine": machine()}, args.out or OUT / "nb201_hybrids.json")
        say(f"wrote {out}")
        return
    if args.levers:
        X = draw_cells(args.cells, args.cell_seed)
        say(describe(X, data, args.C, args.N, args.epochs))
        only = ([int(i) for i in args.lever_rows.split(",")] if args.lever_rows else None)
        rows = run_levers(data, truth, X[: args.lever_cells], args.C, args.N, args.epochs,
                          args.seed, quick=args.quick_levers, log=say, only=only)
        out = save({"what": "NB201 supernet training levers at equal compute, each scored on "
                            f"the same {min(args.lever_cells, len(X))} cells against NB201 "
                            "c10_test_acc",
                    "summary": levers_summary(rows),
                    "setting": {"C": args.C, "N": args.N, "epochs": args.epochs,
                                "minutes": (time.perf_counter() - t_start) / 60},
                    "levers": rows, "machine": machine()},
                   args.out or OUT / "nb201_levers.json")
        say(f"wrote {out}")
        return

    doc = run_study(study, data, truth, log=say, t_start=t_start)
    out = save(doc, args.out or OUT / "nb201_fidelity.json")
    plot(doc, out.with_suffix(".png"))
    say(f"wrote {out} ({doc['summary']['setting']['minutes']:.1f} min)")


if __name__ == "__main__":
    main()
