"""``evo-nas report RUN_DIR``: the table and plots again, from the run's archive alone."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="re-print and re-plot a run (or every run of a batch)")
    p.add_argument("path", help="a run directory (with archive.db) or a batch directory")
    p.add_argument("--run", help="archived run id (default: the latest)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from evo_nas.errors import ConfigError
    from evo_nas.report import result_from_archive

    path = Path(args.path)
    dirs = [path] if (path / "archive.db").is_file() else sorted(
        p.parent for p in path.glob("*/archive.db"))
    if not dirs:
        raise ConfigError(f"report: {str(path)!r} holds no archive.db, nor do its subfolders")
    for d in dirs:
        result = result_from_archive(d, args.run)
        print(f"== {d} (run {result.info['run']}, {result.info['status']})")
        if result.pareto:
            print(result.table())
        else:
            print(f"no feasible architecture among {result.n_evals} evaluations")
        if not _writable(d):  # an archive kept read-only is still readable: just do not rewrite
            print(f"(read-only: {d}'s csv/json/png files were not rewritten)")
        elif result.pareto:
            result.save(d)
        else:
            result.save_history(d)
    return 0


def _writable(d: Path) -> bool:
    """The folder and every result file already in it can be written."""
    import os

    files = [d / n for n in ("history.csv", "pareto.csv", "pareto.json", "pareto.png")]
    return os.access(d, os.W_OK) and all(os.access(f, os.W_OK) for f in files if f.exists())
