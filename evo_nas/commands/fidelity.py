"""``evo-nas fidelity``: how truthfully does a supernet rank sub-networks?

Two references. Without ``--truth`` (see evo_nas.fidelity): stand-alone training of K
sub-networks on digits; writes ``<out>`` (JSON: settings, per-architecture scores, the sampler
table with Kendall tau, bootstrap CI, Spearman rho and top-k overlap) and a scatter PNG next to
it, and prints the table. ``--truth nb201`` (see evo_nas.nb201_fidelity): NAS-Bench-201's
published test accuracies, the study of ``benchmarks/bench_nb201.py``; writes the same JSON as
that benchmark (``summary`` first) and its PNG, and prints the headline.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path
from typing import Any

from evo_nas.errors import ConfigError

__all__ = ["TRUTHS", "check_truth_args", "config_from_args", "nb201_study_from_args", "register",
           "run", "run_nb201"]

# ground-truth references --truth accepts (more may come: other tabular benchmarks)
TRUTHS = ("nb201",)
DEFAULT_OUT = "runs/fidelity/fidelity.json"
DEFAULT_NB201_OUT = "runs/fidelity/nb201_fidelity.json"


def register(subparsers: Any) -> None:
    """Add the ``fidelity`` sub-command."""
    p = subparsers.add_parser(
        "fidelity", help="rank fidelity of supernet samplers vs stand-alone training",
        description="Train K sub-networks stand-alone and one supernet per sampler, then compare "
                    "their rankings (Kendall tau with a bootstrap CI, Spearman rho, top-k). "
                    "With --truth nb201: train the NB201 supernet on the CIFAR-10 subset and "
                    "score its ranking, free baselines and searches against NAS-Bench-201's "
                    "published accuracies.")
    p.add_argument("--quick", action="store_true",
                   help="smoke run (k=4, 1 epoch, 2 samplers; with --truth nb201: C=4, 8 "
                        "epochs on 400 images, 100 cells, 40-evaluation searches): checks the "
                        "pipeline in ~1 min")
    p.add_argument("--truth", metavar="NAME",
                   help="score against published ground truth instead of stand-alone "
                        "training: nb201 (NAS-Bench-201 on the CIFAR-10 subset)")
    nb = p.add_argument_group("--truth nb201")
    nb.add_argument("--nb201", metavar="PATH",
                    help="NB201 table: nb201_cifar10.csv or its folder (default: "
                         "<data-dir>/nb201, else $EVO_NAS_NB201_CSV, else $EVO_NAS_DATA/nb201; "
                         "none of them: an error)")
    nb.add_argument("--cifar", metavar="PATH",
                    help="CIFAR-10 subset: cifar10_subset.npz or its folder (default: "
                         "<data-dir>/cifar10-subset, else $EVO_NAS_CIFAR_NPZ, else "
                         "$EVO_NAS_DATA/cifar10-subset; none of them: an error)")
    nb.add_argument("--cells", type=int, help="NB201 cells scored (default 1000)")
    nb.add_argument("--search-evals", type=int,
                    help="supernet evaluations per search (default 300)")
    nb.add_argument("--cell-seed", type=int, help="which cells are scored (default 1)")
    p.add_argument("--k", type=int, help="architectures, spread over the FLOPs range (default 14)")
    p.add_argument("--seeds", type=int, help="stand-alone trainings per architecture (default 3)")
    p.add_argument("--supernet-seeds", type=int,
                   help="supernets trained per sampler, from different seeds (default 2)")
    p.add_argument("--samplers", help="comma-separated, e.g. uniform,sandwich,fair,flops_bucket,"
                                      "attentive,attentive:worstup; NAME@N trains N sub-networks "
                                      "per step at the same compute (uniform@2)")
    p.add_argument("--supernet-epochs", type=int,
                   help="with --truth nb201: sub-network passes per training image (default 200)")
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
    p.add_argument("--data-dir", help="local folder of a torchvision dataset; with --truth "
                                      "nb201: the folder holding nb201/ and cifar10-subset/ "
                                      "(default $EVO_NAS_DATA)")
    p.add_argument("--seed", type=int)
    p.add_argument("--jobs", type=int, help="parallel worker processes (default 2)")
    p.add_argument("--threads", type=int,
                   help="torch CPU threads of this process (default: torch's choice)")
    p.add_argument("--device", help="cpu (default) or cuda")
    p.add_argument("--out", help=f"JSON path, PNG beside (default {DEFAULT_OUT}; with --truth "
                                 f"nb201: {DEFAULT_NB201_OUT})")
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


# flags of the stand-alone protocol (meaningless against a table) and of the NB201 study
_STANDALONE_ONLY = ("k", "seeds", "supernet_seeds", "samplers", "standalone_epochs",
                    "batch_size", "init", "spacing", "band", "reuse_standalone", "preset",
                    "dataset", "jobs", "device")
_NB201_ONLY = ("nb201", "cifar", "cells", "search_evals", "cell_seed")


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    return [f"--{n.replace('_', '-')} = {getattr(args, n)!r}" for n in names
            if getattr(args, n, None) is not None and getattr(args, n) is not False]


def check_truth_args(args: argparse.Namespace) -> None:
    """Refuse, before any work, a --truth value that is unknown and flags that the chosen
    reference would silently ignore (a user would believe they took effect)."""
    truth = getattr(args, "truth", None)
    if truth is None:
        extra = _given(args, _NB201_ONLY)
        if extra:
            raise ConfigError(f"{', '.join(extra)}: only used with --truth nb201; add "
                              "--truth nb201 or drop them")
        return
    if truth not in TRUTHS:
        close = difflib.get_close_matches(str(truth), TRUTHS, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"--truth = {truth!r}: choose one of {list(TRUTHS)}{hint}")
    extra = _given(args, _STANDALONE_ONLY)
    if extra:
        raise ConfigError(f"{', '.join(extra)}: not used with --truth {truth} (they set the "
                          "stand-alone protocol); drop them. The NB201 study takes --nb201, "
                          "--cifar, --data-dir, --cells, --supernet-epochs, --search-evals, "
                          "--seed, --cell-seed, --threads, --quick")


def nb201_study_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~evo_nas.nb201_fidelity.NB201Study` the flags describe."""
    from evo_nas.nb201_fidelity import NB201Study

    fields = {"cells": "cells", "search_evals": "search_evals", "seed": "seed",
              "cell_seed": "cell_seed", "supernet_epochs": "epochs"}
    changes = {f: getattr(args, a) for a, f in fields.items() if getattr(args, a) is not None}
    return NB201Study.quick(**changes) if args.quick else NB201Study(**changes)


def run_nb201(args: argparse.Namespace) -> int:
    """The NB201 ground-truth study: every input checked first, then train, score, search."""
    import time

    from evo_nas import nb201_fidelity as nb
    from evo_nas.config import check_writable_file

    t_start = time.perf_counter()
    study = nb201_study_from_args(args)
    table = nb.resolve_data_path(args.nb201, "--nb201", nb.NB201_ENV, nb.NB201_FILE,
                                 nb.NB201_FOLDER, args.data_dir, what="NB201 table",
                                 data_dir_name="--data-dir")
    npz = nb.resolve_data_path(args.cifar, "--cifar", nb.CIFAR_ENV, nb.CIFAR_FILE,
                               nb.CIFAR_FOLDER, args.data_dir, what="CIFAR-10 subset",
                               data_dir_name="--data-dir")
    out_path = args.out or DEFAULT_NB201_OUT
    check_writable_file(out_path, "--out")  # before the training, not after
    say = (lambda _m: None) if args.quiet else print
    truth = nb.NB201Truth(table)
    data = nb.load_study_data(npz, study)
    doc = nb.run_study(study, data, truth, log=say, t_start=t_start)
    doc["settings"] = {**nb.study_settings(study), "quick": bool(args.quick),
                       "nb201": str(table), "cifar": str(npz)}
    out = nb.save(doc, out_path)
    print(nb.format_summary(doc))
    msg = f"results in {out}"
    if not args.no_plot:
        msg += f" and {nb.plot(doc, Path(out).with_suffix('.png'))}"
    print(msg)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the study, print the table, write JSON (+ PNG)."""
    from evo_nas.config import check_writable_file
    from evo_nas.fidelity import format_table, plot_fidelity, run_fidelity, save_result

    check_truth_args(args)
    if args.truth is not None:
        return run_nb201(args)
    cfg = config_from_args(args)
    out_path = args.out or DEFAULT_OUT
    check_writable_file(out_path, "--out")  # before hours of training, not after
    say = (lambda _m: None) if args.quiet else print
    result = run_fidelity(cfg, log=say)
    out = save_result(result, out_path)
    print(format_table(result))
    msg = f"wall {result['wall_seconds']:.0f} s; results in {out}"
    if not args.no_plot:
        png = plot_fidelity(result, Path(out).with_suffix(".png"))
        msg += f" and {png}"
    print(msg)
    return 0
