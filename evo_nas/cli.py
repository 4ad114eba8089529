"""``evo-nas`` command line: train, search, demo. Wires config, pipeline and output together.

User errors (every :class:`EvoNasError`) print one line naming the field and value and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from evo_nas.errors import EvoNasError


def _budget(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"budget {text!r}: expected NAME=VALUE, e.g. flops=1.5")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"budget {text!r}: {value!r} is not a number") from None


def _options(text: str) -> dict[str, Any]:
    """``C=8,N=1`` -> {"C": 8, "N": 1} (values parsed as YAML scalars: ints, floats, bools)."""
    import yaml

    out: dict[str, Any] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"supernet option {item!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML or TOML run config (see README)")
    p.add_argument("--name", help="run name: outputs go to <runs-dir>/<name>/")
    p.add_argument("--runs-dir", help="parent folder of run directories (default: runs)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cpu (default), cuda or cuda:N")
    p.add_argument("--preset", help="supernet preset: tiny (default), cifar, imagenet "
                   "(elastic MobileNetV3), nb201 (NAS-Bench-201 cells)")
    p.add_argument("--supernet", type=_options, metavar="K=V,...",
                   help="options of the preset's supernet, e.g. C=8,N=1 for nb201")
    p.add_argument("--dataset", help="digits (default, bundled), mnist, fashion_mnist, cifar10, "
                   "npz (your own arrays: --data-path)")
    p.add_argument("--data-dir", help="local folder holding the torchvision dataset")
    p.add_argument("--data-path", metavar="FILE", help="the .npz file of --dataset npz "
                   "(train_images, train_labels, optional test_images, test_labels; uint8)")
    p.add_argument("--download", action="store_true", default=None,
                   help="allow torchvision to download the dataset into --data-dir")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--sampler", help="uniform (default), fair, sandwich, flops_bucket, attentive")
    p.add_argument("--no-distill", dest="distill", action="store_false", default=None,
                   help="train every sub-network on the labels (no in-place distillation)")
    amp = p.add_mutually_exclusive_group()
    amp.add_argument("--amp", dest="amp", action="store_true", default=None,
                     help="fp16 mixed precision on CUDA (off by default: each new sub-network "
                          "shape then costs seconds of cuDNN planning; never used on CPU)")
    amp.add_argument("--no-amp", dest="amp", action="store_false", default=None,
                     help="plain fp32 (the default)")
    p.add_argument("--state-path", help="write the training state here after every epoch")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from --state-path when it exists (after a kill)")


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--algorithm", help="search algorithm (default nsga2)")
    p.add_argument("--pop-size", type=int)
    p.add_argument("--generations", type=int)
    p.add_argument("--objectives", help="comma-separated, e.g. error,flops")
    p.add_argument("--budget", type=_budget, action="append", default=None, metavar="NAME=MAX",
                   help="upper bound on a metric in user units, e.g. flops=1.5 (MFLOPs); repeat")
    p.add_argument("--calib-images", type=int, help="images for BN re-calibration (default 500)")
    p.add_argument("--predictor", help="surrogate predictor with --algorithm surrogate: default, "
                   "rf, extra_trees, gb, gp, mlp, kernel_ridge, ensemble, adaptive")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evo-nas", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a weight-sharing supernet")
    _common(p)
    _train_args(p)
    p = sub.add_parser("search", help="constrained multi-objective search on a trained supernet")
    _common(p)
    _search_args(p)
    p.add_argument("--checkpoint", help="supernet checkpoint (default <run dir>/supernet.pt)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the latest search recorded in RUN_DIR/archive.db")
    p = sub.add_parser("demo", help="train on digits, then search under a FLOPs budget")
    _common(p)
    _train_args(p)
    _search_args(p)
    for module in _command_modules():
        module.register(sub)
    return parser


# Further sub-commands live in their own modules under evo_nas/commands/; each exposes
# ``register(subparsers)`` (adding a parser with ``set_defaults(handler=run)``) and
# ``run(args) -> int | None``, and raises EvoNasError on bad input.
COMMAND_MODULES: list[str] = ["evo_nas.commands.batch", "evo_nas.commands.report",
                              "evo_nas.commands.latency", "evo_nas.commands.export",
                              "evo_nas.commands.fidelity"]


def _command_modules() -> list[Any]:
    import importlib

    return [importlib.import_module(m) for m in COMMAND_MODULES]


# argparse destination -> dotted config path
_OVERRIDES = {
    "name": "name", "runs_dir": "runs_dir", "seed": "seed", "device": "device",
    "preset": "preset", "supernet": "supernet", "dataset": "data.dataset",
    "data_dir": "data.data_dir", "data_path": "data.path",
    "download": "data.download", "epochs": "train.epochs", "batch_size": "train.batch_size",
    "lr": "train.lr", "sampler": "train.sampler", "distill": "train.distill",
    "amp": "train.amp", "state_path": "train.state_path", "resume": "train.resume",
    "algorithm": "search.algorithm",
    "pop_size": "search.pop_size", "generations": "search.generations",
    "calib_images": "eval.calib_images",
}

DEMO_DEFAULTS: dict[str, Any] = {
    "name": "demo",
    "train": {"epochs": 20},
    "search": {"pop_size": 24, "generations": 12, "objectives": ["error", "flops"],
               "budgets": {"flops": 1.0}},
}


def _config(args: argparse.Namespace, base: dict[str, Any] | None = None):
    from evo_nas.config import load_config, read_file

    data: dict[str, Any] = {}
    if args.config:
        data = read_file(args.config)
    elif base:
        data = _deep_copy(base)
    for dest, path in _OVERRIDES.items():
        value = getattr(args, dest, None)
        if value is not None:
            _set(data, path, value)
    if getattr(args, "objectives", None):
        _set(data, "search.objectives", [o.strip() for o in args.objectives.split(",") if o])
    if getattr(args, "predictor", None):
        _set(data, "search.options.predictor", args.predictor)
    if getattr(args, "budget", None):
        _set(data, "search.budgets", dict(args.budget))
    return load_config(data)


def _deep_copy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in d.items()}


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for p in parents:
        data = data.setdefault(p, {})
    data[leaf] = value


def _train(cfg, quiet: bool) -> None:
    from evo_nas.pipeline import train_run

    t0 = time.perf_counter()
    path = train_run(cfg, progress=not quiet)
    print(f"supernet trained in {time.perf_counter() - t0:.1f} s -> {path}")
    scores = json.loads((path.parent / "train_log.json").read_text())["scores"]
    print("  " + ", ".join(f"{k.replace('_', ' ')} {v:.2f} %" for k, v in scores.items()))


def _search(cfg, checkpoint: str | None, quiet: bool, resume: str | None = None) -> None:
    from evo_nas.pipeline import search_run

    result = search_run(cfg, checkpoint, progress=not quiet, resume=resume)
    print(result.table())
    failed = result.info.get("failed_evaluations", 0)
    if failed:
        print(f"{failed} evaluations failed (recorded in history.csv and archive.db)")
    print(f"{result.n_evals} architectures evaluated in {result.seconds:.1f} s; "
          f"results in {cfg.run_dir}/ (pareto.csv, pareto.json, pareto.png, history.csv)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        if args.command == "train":
            _train(_config(args), args.quiet)
        elif args.command == "search" and args.resume:
            from evo_nas.pipeline import resume_config

            cfg, run, checkpoint = resume_config(args.resume)
            _search(cfg, checkpoint, args.quiet, resume=run)
        elif args.command == "search":
            _search(_config(args), args.checkpoint, args.quiet)
        elif args.command == "demo":
            cfg = _config(args, DEMO_DEFAULTS)
            _train(cfg, args.quiet)
            _search(cfg, None, args.quiet)
        else:
            code = args.handler(args)
            if code:
                return int(code)
    except EvoNasError as e:
        print(f"evo-nas: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evo-nas: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
