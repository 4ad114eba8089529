"""``evo-nas`` command line: train, search, demo. Wires config, pipeline and output together.

User errors (every :class:`EvoNasError`) print one line naming the field and value and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

from evo_nas.errors import EvoNasError


def _budget(text: str) -> tuple[str, float] | int:
    """``N`` (real evaluations) or ``NAME=MAX`` (an upper bound on a metric)."""
    name, sep, value = text.partition("=")
    if not sep:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"budget {text!r}: expected NAME=VALUE (an upper bound, e.g. flops=1.5) or N "
                f"(real evaluations, e.g. 300)") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"budget {text!r}: N real evaluations must be >= 1")
        return n
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
    p.add_argument("--generations", type=int,
                   help="the most generations (surrogate: rounds); default 12, or unlimited "
                        "with --budget N")
    p.add_argument("--objectives", help="comma-separated, e.g. error,flops")
    p.add_argument("--budget", type=_budget, action="append", default=None,
                   metavar="N|NAME=MAX",
                   help="N: distinct real evaluations the search spends, for every algorithm "
                        "(cache hits are free); NAME=MAX: upper bound on a metric in user "
                        "units, e.g. flops=1.5 (MFLOPs); repeat")
    p.add_argument("--calib-images", type=int, help="images for BN re-calibration (default 500)")
    p.add_argument("--predictor", help="surrogate predictor with --algorithm surrogate: default, "
                   "rf, extra_trees, gb, gp, mlp, kernel_ridge, ensemble, adaptive")
    # no argparse choices: an unknown name is the config's one-line error (search.backend)
    p.add_argument("--backend",
                   help="where supernet evaluations run: serial (default, in this process), "
                        "loky (--workers local processes) or dask (--scheduler, or a local "
                        "cluster of --workers processes on 127.0.0.1)")
    p.add_argument("--workers", type=int, help="evaluation worker processes (default 1)")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="Dask scheduler address, e.g. tls://host:8786 (with --backend dask)")


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
    "backend": "search.backend", "workers": "search.workers", "scheduler": "search.scheduler",
    "threads": "search.worker_threads",
}

DEMO_DEFAULTS: dict[str, Any] = {
    "name": "demo",
    "train": {"epochs": 20},
    "search": {"pop_size": 24, "budget": 270, "objectives": ["error", "flops"],
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
        bounds = [b for b in args.budget if isinstance(b, tuple)]
        counts = [b for b in args.budget if not isinstance(b, tuple)]
        if bounds:
            _set(data, "search.budgets", dict(bounds))
        if counts:  # the last count given wins, as for any repeated option
            _set(data, "search.budget", counts[-1])
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
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    at: dict[str, Any] = {}  # what is running, for the resume command after an interrupt
    try:
        _check_args(args)
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        if args.command == "train":
            cfg = at["train"] = _config(args)
            _train(cfg, args.quiet)
        elif args.command == "search" and args.resume:
            from evo_nas.pipeline import resume_config

            cfg, run, checkpoint = resume_config(args.resume)
            _note_ignored_with_resume(args, run)
            for name in ("backend", "workers", "scheduler"):  # change where, not what
                if getattr(args, name, None) is not None:
                    setattr(cfg.search, name, getattr(args, name))
            if args.threads:
                cfg.search.worker_threads = args.threads
            cfg._validate_parallel()
            _check_scheduler(cfg)
            at["search"] = cfg.run_dir
            _search(cfg, checkpoint, args.quiet, resume=run)
        elif args.command == "search":
            cfg = _config(args)
            _check_scheduler(cfg)
            at["search"] = cfg.run_dir
            _search(cfg, args.checkpoint, args.quiet)
        elif args.command == "demo":
            cfg = at["train"] = _config(args, DEMO_DEFAULTS)
            _check_scheduler(cfg)
            _train(cfg, args.quiet)
            at["search"] = cfg.run_dir
            _search(cfg, None, args.quiet)
        else:
            code = args.handler(args)
            if code:
                return int(code)
    except EvoNasError as e:
        print(f"evo-nas: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"evo-nas: interrupted{_resume_hint(args, argv, at)}", file=sys.stderr)
        return 130
    except OSError as e:  # a folder or file the OS refuses (permissions, read-only disk, full)
        if not isinstance(e, PermissionError) and e.errno not in (errno.EROFS, errno.ENOSPC,
                                                                  errno.ENOTDIR, errno.EISDIR):
            raise
        where = f": {str(e.filename)!r}" if e.filename is not None else ""
        print(f"evo-nas: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    return 0


def _check_args(args: argparse.Namespace) -> None:
    """Command-line values that would fail only after work has started, checked first."""
    from evo_nas.errors import ConfigError

    threads = getattr(args, "threads", None)
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads = {threads}: must be >= 1")
    if args.command == "batch":
        _check_batch(args)


# joblib's own backends, and dask (through --scheduler)
BATCH_BACKENDS = ("loky", "multiprocessing", "threading", "sequential", "dask")


def _check_batch(args: argparse.Namespace) -> None:
    """The batch options and the spec's name and folder, before any job starts."""
    from evo_nas.config import _choose, check_dir_name, check_writable_dir, read_file
    from evo_nas.errors import ConfigError

    if args.n_jobs == 0:
        raise ConfigError("--n-jobs = 0: give N >= 1 parallel jobs (or -1: one per CPU core)")
    if args.backend not in BATCH_BACKENDS:
        raise ConfigError(_choose("--backend", args.backend, BATCH_BACKENDS))
    if args.backend == "dask":
        if not args.scheduler:
            raise ConfigError("--backend dask needs --scheduler ADDRESS (tcp://host:port)")
        check_scheduler(args.scheduler, "--scheduler")
    elif args.scheduler:
        raise ConfigError(f"--scheduler = {args.scheduler!r} needs --backend dask, not "
                          f"{args.backend!r}")
    spec = read_file(args.spec)
    check_dir_name("name", spec.get("name", "batch"))
    runs_dir = spec.get("runs_dir", "runs")
    if isinstance(runs_dir, str):
        check_writable_dir(runs_dir, "runs_dir")


def _check_scheduler(cfg: Any) -> None:
    s = cfg.search
    if getattr(s, "backend", None) == "dask" and getattr(s, "scheduler", None):
        check_scheduler(s.scheduler, "search.scheduler")


def check_scheduler(address: str, field: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not after Dask's 30 s, when nothing listens at a scheduler address
    (``tcp://host:port``, ``tls://host:port`` or ``host:port``; other protocols are left to
    Dask)."""
    import socket
    from urllib.parse import urlsplit

    from evo_nas.errors import ConfigError

    url = urlsplit(address if "://" in address else f"tcp://{address}")
    if url.scheme not in ("tcp", "tls"):
        return
    try:
        host, port = url.hostname, url.port or 8786
    except ValueError:
        raise ConfigError(f"{field} = {address!r}: not an address (tcp://host:port)") from None
    if not host:
        raise ConfigError(f"{field} = {address!r}: not an address (tcp://host:port)")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ConfigError(f"{field} = {address!r}: no Dask scheduler answers there ({why}, "
                          f"waited {timeout:g} s); start it or fix the address") from None
    if url.scheme != "tcp":
        return  # TLS needs the run's security settings: Dask itself checks the handshake
    try:
        import asyncio

        from distributed.comm import connect
    except ImportError:
        return

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout)  # Dask's handshake
        try:
            await comm.write({"op": "identity"})
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    try:
        info = asyncio.run(identity())
        why = f"it says {str(info)[:80]}"
    except Exception as e:  # noqa: BLE001 - whatever answers there, it is not a scheduler
        info = None
        why = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
    if not (isinstance(info, dict) and info.get("type") == "Scheduler"):
        raise ConfigError(f"{field} = {address!r}: something answers there but not a Dask "
                          f"scheduler ({why})")


# flags `search --resume` acts on; every other one is ignored (the archived run's settings win)
_RESUME_HONOURED = {"command", "handler", "resume", "quiet", "threads", "backend", "workers",
                    "scheduler"}


def _note_ignored_with_resume(args: argparse.Namespace, run: str) -> None:
    given = [k for k, v in vars(args).items()
             if k not in _RESUME_HONOURED and v is not None and v is not False]
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        print(f"evo-nas: note: --resume continues run {run!r} with its archived settings; "
              f"ignored: {flags}", file=sys.stderr)


def _resume_hint(args: argparse.Namespace, argv: list[str], at: dict[str, Any]) -> str:
    """The exact command that continues the interrupted work (after '; '), or ''."""
    if "search" in at:
        run_dir = at["search"]
        if (run_dir / "archive.db").is_file():
            return f"; continue with: evo-nas search --resume {shlex.quote(str(run_dir))}"
        return f"; nothing was recorded yet: run it again (evo-nas {shlex.join(argv)})"
    if "train" in at:
        if at["train"].train.state_path:
            again = argv if "--resume" in argv else [*argv, "--resume"]
            return f"; continue with: evo-nas {shlex.join(again)}"
        return ("; no training state was kept: give --state-path FILE (and --resume when "
                "running it again) to make training resumable")
    if args.command == "batch":
        return f"; finished jobs are kept: complete it with: evo-nas {shlex.join(argv)}"
    return ""


if __name__ == "__main__":
    sys.exit(main())
