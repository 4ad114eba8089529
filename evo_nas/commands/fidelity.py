"""``evo-nas fidelity``: how truthfully does a supernet rank sub-networks? (see evo_nas.fidelity)

Writes ``<out>`` (JSON: settings, per-architecture scores, the sampler table with Kendall tau,
bootstrap CI, Spearman rho and top-k overlap) and a scatter PNG next to it, and prints the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register", "run", "config_from_args"]


def register(subparsers: Any) -> None:
    """Add the ``fidelity`` sub-command."""
    p = subparsers.add_parser(
        "fidelity", help="rank fidelity of supernet samplers vs stand-alone training",
        description="Train K sub-networks stand-alone and one supernet per sampler, then compare "
                    "their rankings (Kendall tau with a bootstrap CI, Spearman rho, top-k).")
    p.add_argument("--quick", action="store_true",
                   help="smoke run (k=4, 1 epoch, 2 samplers): checks the pipeline in ~1 min")
    p.add_argument("--k", type=int, help="architectures, spread over the FLOPs range (default 14)")
    p.add_argument("--seeds", type=int, help="stand-alone trainings per architecture (default 3)")
    p.add_argument("--supernet-seeds", type=int,
                   help="supernets trained per sampler, from different seeds (default 2)")
    p.add_argument("--samplers", help="comma-separated, e.g. uniform,sandwich,fair,flops_bucket,"
                                      "attentive,attentive:worstup; NAME@N trains N sub-networks "
                                      "per step at the same compute (uniform@2)")
    p.add_argument("--supernet-epochs", type=int)
    p.add_argument("--standalone-epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--init", choices=("fresh", "same"),
                   help="stand-alone initial weights: fresh (default) or the supernet's")
    p.add_argument("--spacing", choices=("log", "linear", "band"),
                   help="FLOPs spacing of the K targets: log (default) or linear over the whole "
                        "range, or band: all within +-15 %% of the middle (similar sizes)")
    p.add_argument("--band", type=float, help="relative half-width of --spacing band "
                                              "(default 0.15)")
    p.add_argument("--reuse-standalone", metavar="JSON",
                   help="take the stand-alone results of an earlier study with the same "
                        "settings and train only the supernets (adds samplers cheaply)")
    p.add_argument("--preset", help="search space preset (default tiny)")
    p.add_argument("--dataset", help="default digits_hard (offline); digits, mnist, cifar10, ...")
    p.add_argument("--data-dir", help="local folder of a torchvision dataset")
    p.add_argument("--seed", type=int)
    p.add_argument("--jobs", type=int, help="parallel worker processes (default 2)")
    p.add_argument("--device", help="cpu (default) or cuda")
    p.add_argument("--out", default="runs/fidelity/fidelity.json", help="JSON path (PNG beside)")
    p.add_argument("--no-plot", action="store_true", help="skip the scatter PNG")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=run)


_FIELDS = {"k": "k", "seeds": "seeds", "supernet_seeds": "supernet_seeds",
           "supernet_epochs": "supernet_epochs",
           "standalone_epochs": "standalone_epochs", "batch_size": "batch_size", "init": "init",
           "spacing": "spacing", "band": "band", "preset": "preset", "dataset": "dataset",
           "data_dir": "data_dir", "seed": "seed", "jobs": "n_jobs", "device": "device",
           "reuse_standalone": "reuse_standalone"}


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~evo_nas.fidelity.FidelityConfig` the flags describe."""
    from evo_nas.fidelity import FidelityConfig

    changes: dict[str, Any] = {f: getattr(args, a) for a, f in _FIELDS.items()
                               if getattr(args, a, None) is not None}
    if args.samplers:
        changes["samplers"] = [s.strip() for s in args.samplers.split(",") if s.strip()]
    if args.quick:
        cfg = FidelityConfig.quick(**changes)
        if "k" in changes and cfg.top_k > cfg.k:
            cfg.top_k = cfg.k
        return cfg
    return FidelityConfig(**changes)


def run(args: argparse.Namespace) -> int:
    """Run the study, print the table, write JSON (+ PNG)."""
    from evo_nas.config import check_writable_file
    from evo_nas.fidelity import format_table, plot_fidelity, run_fidelity, save_result

    cfg = config_from_args(args)
    check_writable_file(args.out, "--out")  # before hours of training, not after
    say = (lambda _m: None) if args.quiet else print
    result = run_fidelity(cfg, log=say)
    out = save_result(result, args.out)
    print(format_table(result))
    msg = f"wall {result['wall_seconds']:.0f} s; results in {out}"
    if not args.no_plot:
        png = plot_fidelity(result, Path(out).with_suffix(".png"))
        msg += f" and {png}"
    print(msg)
    return 0
