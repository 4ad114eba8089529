"""``evo-nas export RUN_DIR --arch N --format F``: one Pareto architecture, ready to deploy."""

from __future__ import annotations

import argparse
import json

from evo_nas.export import FORMATS, export_from_run, read_sidecar


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export a Pareto architecture of a run with its inherited weights",
        description="Write architecture N of RUN_DIR/pareto.json with its weights from "
                    "RUN_DIR/supernet.pt, plus a JSON sidecar with its config; the exported "
                    "model is checked against the supernet's outputs.")
    p.add_argument("run_dir", help="run directory holding supernet.pt and pareto.json")
    p.add_argument("--arch", type=int, default=0, help="index in pareto.json (default 0)")
    p.add_argument("--format", default="state_dict", choices=FORMATS)
    p.add_argument("--out", help="model file (default RUN_DIR/export/arch<N>.<ext>)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip reloading the file and comparing outputs with the supernet")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evo_nas.config import check_writable_dir, check_writable_file

    if args.out:
        check_writable_file(args.out, "--out")
    else:
        check_writable_dir(Path(args.run_dir) / "export", "RUN_DIR/export (the default --out)")
    path = export_from_run(args.run_dir, args.arch, args.format, args.out,
                           verify=not args.no_verify)
    meta = read_sidecar(path)
    check = meta.get("verified")
    status = (f"outputs match the supernet (max |diff| {check['max_abs_diff']:.2e})" if check
              else "not verified")
    print(f"arch {args.arch} -> {path} ({args.format}; {meta['MFLOPs']:.3f} MFLOPs, "
          f"{meta['Mparams']:.4f} Mparams; {status})")
    print(f"config: {json.dumps(meta['config'], sort_keys=True)}")
    return 0
