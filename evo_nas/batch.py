"""Experiments x seeds through joblib: local processes, or a Dask cluster via joblib's backend.

A batch file names a base config, a list of experiments (each a partial config merged over the
base) and seeds. Every job's config is validated before any job starts; each job gets its own
run directory under the batch directory; a failing job is recorded in ``summary.csv`` and the others
go on. Hypervolumes are computed afterwards on one shared normalisation, so runs compare.

```yaml
name: budgets
runs_dir: runs
seeds: [0, 1]
checkpoint: runs/demo/supernet.pt   # optional: search a shared supernet; else each job trains
base: {search: {pop_size: 16, generations: 5}}
experiments:
  - {name: tight, search: {budgets: {flops: 0.5}}}
  - {name: loose, search: {budgets: {flops: 1.0}}}
```
"""

from __future__ import annotations

import csv
import difflib
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evo_nas.config import RunConfig, load_config, read_file, to_dict
from evo_nas.errors import ConfigError

__all__ = ["BatchSpec", "load_batch", "run_batch"]

_KEYS = ("name", "runs_dir", "seeds", "checkpoint", "base", "experiments")


@dataclass
class BatchSpec:
    name: str
    runs_dir: str
    seeds: list[int]
    base: dict[str, Any]
    experiments: list[dict[str, Any]]
    checkpoint: str | None = None
    jobs: list[RunConfig] = field(default_factory=list)

    @property
    def batch_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_batch(source: str | Path | dict[str, Any]) -> BatchSpec:
    """Read and validate a batch: every job's full config is checked before anything runs."""
    data = read_file(source) if not isinstance(source, dict) else source
    for k in data:
        if k not in _KEYS:
            close = difflib.get_close_matches(str(k), _KEYS, n=1)
            raise ConfigError(f"unknown batch key {k!r}"
                              + (f" (did you mean {close[0]!r}?)" if close else ""))
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"seeds = {seeds!r}: expected a non-empty list of integers")
    experiments = data.get("experiments") or [{"name": "default"}]
    if not isinstance(experiments, list) or not all(isinstance(e, dict) for e in experiments):
        raise ConfigError("experiments: expected a list of mappings")
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise ConfigError(f"base = {base!r}: expected a mapping")
    spec = BatchSpec(str(data.get("name", "batch")), str(data.get("runs_dir", "runs")), seeds,
                     base, experiments, data.get("checkpoint"))
    names = [str(e.get("name", f"exp{i}")) for i, e in enumerate(experiments)]
    if len(set(names)) != len(names):
        raise ConfigError(f"experiments: names must be unique, got {names}")
    for i, (exp, ename) in enumerate(zip(experiments, names, strict=True)):
        for seed in seeds:
            merged = _merge(base, {k: v for k, v in exp.items() if k != "name"})
            # load_config's seed rule: train.seed follows this seed unless set explicitly
            merged.update(name=f"{ename}-s{seed}", seed=seed, runs_dir=str(spec.batch_dir))
            try:
                spec.jobs.append(load_config(merged))
            except ConfigError as e:
                raise ConfigError(f"experiments[{i}] ({ename!r}): {e}") from None
    if spec.checkpoint is not None and not Path(spec.checkpoint).is_file():
        raise ConfigError(f"checkpoint = {spec.checkpoint!r}: no such file")
    return spec


def _job(cfg_dict: dict[str, Any], checkpoint: str | None, threads: int) -> dict[str, Any]:
    """One run, in a worker process: never raises, so one failure cannot sink the batch."""
    import torch

    from evo_nas.pipeline import search_run, train_run

    torch.set_num_threads(threads)
    cfg = load_config(cfg_dict)
    t0 = time.perf_counter()
    row: dict[str, Any] = {"run": cfg.name, "seed": cfg.seed, "status": "ok", "error": ""}
    try:
        ckpt = checkpoint or train_run(cfg, progress=False)
        result = search_run(cfg, ckpt, progress=False)
        objs = result.objectives
        row.update(front=[[r[o] for o in objs] for r in result.pareto],
                   history=[[r[o] for o in objs] for r in result.history],
                   feasible=[bool(r["feasible"]) for r in result.history],
                   front_size=len(result.pareto), evaluations=result.n_evals,
                   failed_evaluations=result.info.get("failed_evaluations", 0))
    except Exception as e:  # recorded in the summary; the batch goes on
        row.update(status="failed", error=f"{type(e).__name__}: {e}",
                   traceback=traceback.format_exc(limit=5), front=[], history=[], feasible=[],
                   front_size=0, evaluations=0)
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def run_batch(spec: BatchSpec, n_jobs: int = 1, backend: str = "loky",
              scheduler: str | None = None, threads: int = 1) -> list[dict[str, Any]]:
    """Run every job; write ``summary.csv`` and ``batch.png`` (fronts, HV curves) in the batch dir.

    ``backend`` is any joblib backend (``loky`` processes by default); ``"dask"`` connects to the
    Dask scheduler at ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``) and runs jobs on its workers.
    """
    from joblib import Parallel, delayed, parallel_config

    spec.batch_dir.mkdir(parents=True, exist_ok=True)
    tasks = [delayed(_job)(to_dict(cfg), spec.checkpoint, threads) for cfg in spec.jobs]
    if backend == "dask":
        if not scheduler:
            raise ConfigError("--backend dask needs --scheduler ADDRESS (tcp://host:port)")
        from dask.distributed import Client

        with Client(scheduler), parallel_config(backend="dask"):
            rows = Parallel(n_jobs=-1)(tasks)
    else:
        with parallel_config(backend=backend, n_jobs=n_jobs):
            rows = Parallel()(tasks)
    _add_hypervolumes(rows)
    _write_summary(spec.batch_dir / "summary.csv", rows)
    _plot(spec.batch_dir, rows, spec.jobs[0].search.objectives)
    return rows


def _add_hypervolumes(rows: list[dict[str, Any]]) -> None:
    """HV of each front and of the running front, on one normalisation shared by all runs."""
    from evo_nas.report import normalised_hv

    fronts = [np.asarray(r["front"], dtype=float) for r in rows if r["front"]]
    if not fronts:
        for r in rows:
            r["hv"], r["hv_curve"] = float("nan"), []
        return
    allf = np.vstack(fronts)
    ideal, nadir = allf.min(axis=0), allf.max(axis=0)
    for r in rows:
        r["hv"] = normalised_hv(np.asarray(r["front"]), ideal, nadir) if r["front"] else 0.0
        hist = np.asarray(r["history"], dtype=float)
        feas = np.asarray(r["feasible"], dtype=bool)
        steps = sorted({*range(10, len(hist), max(1, len(hist) // 20)), len(hist)})
        r["hv_curve"] = [(n, normalised_hv(hist[:n][feas[:n]], ideal, nadir))
                         for n in steps if n > 0]


def _write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    cols = ["run", "seed", "status", "hv", "front_size", "evaluations", "seconds", "error"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([round(r[c], 6) if c == "hv" else r.get(c, "") for c in cols])


def _plot(batch_dir: Path, rows: list[dict[str, Any]], objectives: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evo_nas.result import user_column, user_value

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for i, r in enumerate(rows):
        if r["front"] and len(objectives) > 1:
            F = np.asarray(r["front"])
            ax1.plot([user_value(objectives[1], v) for v in F[:, 1]],
                     [user_value(objectives[0], v) for v in F[:, 0]], "o-", ms=3,
                     c=f"C{i % 10}", label=r["run"])
        if r["hv_curve"]:
            n, hv = zip(*r["hv_curve"], strict=True)
            ax2.plot(n, hv, c=f"C{i % 10}", label=r["run"])
    if len(objectives) > 1:
        ax1.set_xlabel(user_column(objectives[1]))
    ax1.set_ylabel(user_column(objectives[0]))
    ax1.set_title("Pareto fronts")
    ax2.set_xlabel("evaluations")
    ax2.set_ylabel("hypervolume (shared normalisation)")
    ax2.set_title("hypervolume against evaluations")
    for ax in (ax1, ax2):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(batch_dir / "batch.png", dpi=100)
    plt.close(fig)
