"""Supernet ranking fidelity on the offline digits_hard setting: every sampler side by side.

Trains K=14 sub-networks (log-spaced over the tiny preset's FLOPs range) stand-alone for 3 seeds
each (20 epochs) and two supernets per sampler from different seeds at equal steps (same epochs,
batches and 4 trained sub-networks per step), then ranks the sub-networks by validation
cross-entropy and accuracy, next to ranking them by FLOPs or parameters alone. Writes
benchmarks/results/fidelity.json and fidelity.png. About 15-20 minutes on 2 CPU cores.

    .venv/bin/python benchmarks/bench_fidelity.py [--quick] [--jobs 2] [--out PATH]

``--samplers uniform,uniform@2`` adds rows that train another number of sub-networks per step
at the same compute; ``--reuse-standalone EARLIER.json`` takes the stand-alone half of an
earlier study with the same settings, so added samplers cost only their supernets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from evo_nas.fidelity import (
    FidelityConfig,
    format_table,
    plot_fidelity,
    run_fidelity,
    save_result,
)

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (about a minute)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (1 torch thread each)")
    ap.add_argument("--out", default=None, help="JSON path (default results/fidelity.json; "
                                                "results/fidelity_quick.json with --quick)")
    ap.add_argument("--seed", type=int, default=0, help="architectures, stand-alone and supernet "
                    "seeds all derive from it (a replication uses another)")
    ap.add_argument("--samplers", default=None, help="comma-separated subset, e.g. uniform,fair; "
                    "uniform@2: 2 sub-networks per step at the same compute")
    ap.add_argument("--spacing", default=None, choices=("log", "linear", "band"),
                    help="band: K networks of similar FLOPs (+-15 %%), where size says little")
    ap.add_argument("--band", type=float, default=None,
                    help="relative half-width of --spacing band (default 0.15)")
    ap.add_argument("--seeds", type=int, default=None,
                    help="stand-alone seeds per architecture (default 3)")
    ap.add_argument("--supernet-seeds", type=int, default=None,
                    help="supernets per sampler (default 2)")
    ap.add_argument("--reuse-standalone", default=None, metavar="JSON",
                    help="stand-alone results of an earlier study with the same settings: "
                         "train only the supernets")
    args = ap.parse_args()
    torch.set_num_threads(1)
    changes = {"n_jobs": args.jobs, "seed": args.seed}
    if args.samplers:
        changes["samplers"] = args.samplers.split(",")
    changes.update({f: getattr(args, f) for f in ("spacing", "band", "seeds", "supernet_seeds",
                                                  "reuse_standalone")
                    if getattr(args, f) is not None})
    cfg = (FidelityConfig.quick if args.quick else FidelityConfig)(**changes)
    out = Path(args.out or RESULTS / ("fidelity_quick.json" if args.quick else "fidelity.json"))
    result = run_fidelity(cfg, log=print)
    save_result(result, out)
    png = plot_fidelity(result, out.with_suffix(".png"))
    print(format_table(result))
    print(f"wall {result['wall_seconds']:.0f} s -> {out}, {png}")


if __name__ == "__main__":
    main()
