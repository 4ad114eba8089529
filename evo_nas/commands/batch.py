"""``evo-nas batch experiments.yaml``: experiments x seeds through joblib (or Dask)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="run experiments x seeds (joblib processes or Dask); "
                       "run it again after a kill to complete it from the archives")
    p.add_argument("spec", help="batch YAML/TOML file (see README)")
    p.add_argument("--n-jobs", type=int, default=1, help="parallel jobs (local backends)")
    p.add_argument("--backend", default="loky", help="joblib backend: loky (default), "
                   "threading, sequential, or dask")
    p.add_argument("--scheduler", help="Dask scheduler address with --backend dask")
    p.add_argument("--threads", type=int, default=1, help="torch threads per job")
    p.set_defaults(handler=run)


# batch resume: how a job's result came about when the batch ran before (see evo_nas.batch)
_SOURCE = {"archive": "(read back from its archive) ", "resumed": "(resumed) "}


def _finished(row: dict, done: int, total: int) -> None:
    """One line as each job ends, in order of completion (flushed: visible through a pipe)."""
    error = f" {row['error'].splitlines()[0]}" if row["status"] != "ok" and row["error"] else ""
    print(f"[{done}/{total}] {row['run']} {row['status']} {row['seconds']:.1f}s "
          f"{_SOURCE.get(row.get('source'), '')}".rstrip() + error, flush=True)


def run(args: argparse.Namespace) -> int:
    from evo_nas.batch import load_batch, run_batch

    spec = load_batch(args.spec)
    print(f"batch {spec.name!r}: {len(spec.jobs)} runs -> {spec.batch_dir}/", flush=True)
    rows = run_batch(spec, n_jobs=args.n_jobs, backend=args.backend, scheduler=args.scheduler,
                     threads=args.threads, progress=_finished)
    for r in rows:
        print(f"{r['run']:24s} {r['status']:7s} hv={r['hv']:.4f} front={r['front_size']:3d} "
              f"evals={r['evaluations']:4d} {r['seconds']:7.1f}s {_SOURCE.get(r.get('source'), '')}"
              f"{r['error']}")
    failed = sum(r["status"] != "ok" for r in rows)
    print(f"summary: {spec.batch_dir / 'summary.csv'}, plots: {spec.batch_dir / 'batch.png'}")
    return 1 if failed else 0
