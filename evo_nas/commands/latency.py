"""The `evo-nas latency` commands: build, check and apply latency lookup tables on this device.

* ``build``: measure every distinct part of a preset's space, write the table JSON; or, with
  ``--from-exported DIR``, measure an exported part set (what a target device does). Parts are
  what the preset's supernet cuts a sub-network into: MobileNet stem, blocks and tail; NB201
  (``--preset nb201 --supernet C=8,N=1``) stem, reduction blocks, tail and per cell each live
  edge's op and each node sum;
* ``check``: table vs real measurement on N random sub-networks (Kendall tau, MAPE, max error);
* ``measure``: the real latency of an exported model file (or a preset's smallest/largest);
* ``export-parts``: write the part set as TorchScript files plus a standalone script, to build a
  table on a device that has only torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from evo_nas.errors import ConfigError
from evo_nas.latency.measure import BACKENDS, STATS

PRESET_HELP = ("supernet preset: tiny (default), cifar, imagenet (elastic MobileNetV3), nb201 "
               "(NAS-Bench-201 cells)")
SUPERNET_HELP = "options of the preset's supernet, e.g. C=8,N=1 for nb201"


def _settings(p: argparse.ArgumentParser, repeats: int) -> None:
    p.add_argument("--backend", default="eager", choices=BACKENDS)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch / onnxruntime threads")
    p.add_argument("--repeats", type=int, default=repeats, help="timed rounds per network")
    p.add_argument("--warmup", type=int, default=10)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("latency", help="latency lookup tables: build, check, measure",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="latency_command", required=True)

    b = sub.add_parser("build", help="measure a latency lookup table on this device")
    b.add_argument("--preset", default="tiny", help=PRESET_HELP)
    b.add_argument("--supernet", type=_options, metavar="K=V,...", help=SUPERNET_HELP)
    b.add_argument("--from-exported", metavar="DIR",
                   help="measure a part set written by `latency export-parts` instead")
    _settings(b, repeats=50)
    b.add_argument("--stat", default="median", choices=STATS,
                   help="statistic of the timings: median, or q1 (steadier on a busy machine)")
    b.add_argument("--contexts", type=int, default=3,
                   help="networks each part is timed in (default 3)")
    b.add_argument("--calibration", type=int, default=10,
                   help="whole networks timed to fit the calibration line (default 10)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", help="table JSON (default latency_<preset>_<backend>.json)")
    b.set_defaults(handler=_build)

    c = sub.add_parser("check", help="table vs measured latency of random sub-networks")
    c.add_argument("table", help="latency table JSON (its supernet is rebuilt from the table)")
    c.add_argument("-n", type=int, default=50, help="random sub-networks (default 50)")
    c.add_argument("--repeats", type=int, help="timed rounds (default: the table's)")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--json", help="also write the full report (with every row) here")
    c.set_defaults(handler=_check)

    m = sub.add_parser("measure", help="measured latency of an exported model or preset subnet")
    m.add_argument("model", nargs="?", help="exported model file (see `evo-nas export`)")
    m.add_argument("--preset", help="measure a subnet of this preset instead of a file")
    m.add_argument("--supernet", type=_options, metavar="K=V,...", help=SUPERNET_HELP)
    m.add_argument("--which", default="largest", choices=("largest", "smallest"))
    _settings(m, repeats=100)
    m.set_defaults(handler=_measure)

    e = sub.add_parser("export-parts",
                       help="write the part set to build a table on a device with only torch")
    e.add_argument("--preset", default="tiny", help=PRESET_HELP)
    e.add_argument("--supernet", type=_options, metavar="K=V,...", help=SUPERNET_HELP)
    e.add_argument("--out", required=True, help="output directory")
    e.add_argument("--batch-size", type=int, default=1)
    e.add_argument("--contexts", type=int, default=3)
    e.add_argument("--calibration", type=int, default=10)
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(handler=_export_parts)


def _options(text: str) -> dict[str, Any]:
    from evo_nas.cli import _options as parse

    return parse(text)


def _preset_net(preset: str, options: dict[str, Any] | None) -> Any:
    """An untrained supernet of ``preset`` with ``--supernet`` options (seeded: repeatable
    weights), or None for a MobileNet preset without options (the table builds its own)."""
    from evo_nas.spaces import PRESETS, get_spec

    if preset != "nb201":
        get_spec(preset)  # an unknown preset fails before anything is printed
    if preset in PRESETS and not options:
        return None
    import torch

    from evo_nas.nn.protocol import supernet_from_preset

    with torch.random.fork_rng():
        torch.manual_seed(0)
        try:
            return supernet_from_preset(preset, **(options or {})).eval()
        except TypeError as e:
            raise ConfigError(f"--supernet {options}: {e}") from None


def _positive(**values: Any) -> None:
    for name, v in values.items():
        if v is not None and v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} = {v}: must be at least 1")


def _build(args: argparse.Namespace) -> int:
    from evo_nas.latency import LatencyTable, build_table
    from evo_nas.latency.measure import build_from_parts_dir

    _positive(batch_size=args.batch_size, threads=args.threads, repeats=args.repeats,
              contexts=args.contexts)
    from evo_nas.config import check_writable_file

    check_writable_file(args.out or (Path(args.from_exported) / "latency_table.json"
                                     if args.from_exported else
                                     f"latency_{args.preset}_{args.backend}.json"), "--out")
    if args.from_exported:
        from evo_nas.latency.lut import LatencyTableError

        try:
            data = build_from_parts_dir(args.from_exported, args.threads, args.repeats,
                                        args.warmup, args.batch_size, args.stat)
        except (OSError, ValueError, KeyError) as e:
            raise LatencyTableError(f"--from-exported {args.from_exported!r}: {e}") from None
        table = LatencyTable(data, warn_device=False, source=repr(args.from_exported))
        out = Path(args.out or Path(args.from_exported) / "latency_table.json")
    else:
        net = _preset_net(args.preset, args.supernet)
        print(f"measuring the parts of preset {args.preset!r} ({args.backend}, batch "
              f"{args.batch_size}, {args.threads} thread(s)) ...", file=sys.stderr)
        table = build_table(args.preset if net is None else net, args.backend, args.batch_size,
                            args.threads, args.repeats, args.warmup, args.calibration, args.seed,
                            stat=args.stat, contexts=args.contexts)
        out = Path(args.out or f"latency_{args.preset}_{args.backend}.json")
    table.save(out)
    cal = table.data.get("calibration", {})
    print(f"{len(table.entries)} parts of {table.space_name} measured on "
          f"{table.device.get('name')} in {table.data.get('build_seconds', 0):.1f} s; "
          f"calibration scale {cal.get('scale', 1):.3f}, offset {cal.get('offset_ms', 0):.3f} ms"
          f" -> {out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from evo_nas.latency import LatencyTable, check_table

    _positive(n=args.n, repeats=args.repeats)
    if args.json:
        from evo_nas.config import check_writable_file

        check_writable_file(args.json, "--json")
    table = LatencyTable.load(args.table)
    rep = check_table(table, n=args.n, seed=args.seed, repeats=args.repeats)
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=1))
    summary = {k: v for k, v in rep.items() if k != "rows"}
    summary["device"] = rep["device"]["name"]
    print(json.dumps(summary, indent=1))
    return 0


def _measure(args: argparse.Namespace) -> int:
    from evo_nas.latency import measure_latency

    _positive(batch_size=args.batch_size, threads=args.threads, repeats=args.repeats)
    if args.model:
        res = _measure_file(args)
    elif args.preset:
        from evo_nas.latency.lut import _supernet

        net = _supernet(args.preset, _preset_net(args.preset, args.supernet))
        sp = net.space
        cfg = sp.decode(sp.largest() if args.which == "largest" else sp.smallest())
        sub = net.extract(cfg)
        res = measure_latency(sub, net.input_shape(cfg), args.backend,
                              args.batch_size, args.threads, args.warmup, args.repeats)
        res["config"] = cfg
    else:
        raise ConfigError("latency measure: give an exported model file or --preset")
    print(json.dumps(res, indent=1))
    return 0


def _measure_file(args: argparse.Namespace) -> dict[str, Any]:
    """Time an exported file as deployed: ONNX through onnxruntime, TorchScript as loaded."""
    import torch

    from evo_nas.export import load_exported, read_sidecar
    from evo_nas.latency.measure import (
        _example,
        _threads,
        device_info,
        onnx_runner,
        summarize,
        time_chains,
    )

    meta = read_sidecar(args.model)
    fmt = meta["model_format"]
    x = _example(meta["input_shape"], args.batch_size)
    backend = {"onnx": "onnxruntime", "torchscript": "torchscript"}.get(fmt, args.backend)
    with _threads(args.threads):
        if fmt == "onnx":
            fn: Any = onnx_runner(str(args.model), args.threads)
            inp: Any = x.numpy()
        else:
            from evo_nas.latency.measure import prepare

            module = load_exported(args.model)
            if not isinstance(module, torch.nn.Module):
                raise ConfigError(f"{args.model!r}: cannot time a {fmt} model with torch")
            backend = args.backend if fmt == "state_dict" else "torchscript"
            fn, inp = prepare(module, x, backend, args.threads)
    samples = time_chains([([fn], inp)], args.repeats, args.warmup, 0, args.threads)
    return {**summarize(samples[0][0]), "model": str(args.model), "config": meta["config"],
            "device": device_info(args.threads, backend, args.batch_size)}


def _export_parts(args: argparse.Namespace) -> int:
    from evo_nas.latency import export_parts

    _positive(batch_size=args.batch_size, contexts=args.contexts)
    from evo_nas.config import check_writable_dir

    check_writable_dir(args.out, "--out")
    net = _preset_net(args.preset, args.supernet)
    root = export_parts(args.preset if net is None else net, args.out, args.batch_size,
                        args.calibration, args.seed, args.contexts)
    man = json.loads((root / "manifest.json").read_text())
    print(f"{len(man['parts'])} parts, {len(man['chains'])} chains, {len(man['networks'])} "
          f"calibration networks -> {root}/\non the target device (only torch needed):\n"
          f"  python {root}/measure.py {root} --threads 1   # writes {root}/latency_table.json")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch (each sub-command sets its own handler; kept for the COMMAND_MODULES protocol)."""
    return int(args.handler(args) or 0)
