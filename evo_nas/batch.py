"""Experiments x seeds through joblib: local processes, or a Dask cluster via joblib's backend.

A batch file names a base config, a list of experiments (each a partial config merged over the
base) and seeds. Every job's config is validated before any job starts; each job gets its own
run directory under the batch directory; a failing job is recorded in ``summary.csv`` and the others
go on. Hypervolumes are computed afterwards on one shared normalisation, so runs compare.

Batch resume: local worker processes end with the driver (see :func:`_watch_driver`), and running
the same batch again completes it from the job archives. A job whose search finished with the
same config is read back from its ``archive.db`` (nothing recomputed); a killed search resumes
from its last generation as ``evo-nas search --resume`` does; a supernet a job already trained
(same config) is reused. ``summary.csv`` then lists every job, its ``source`` saying which.

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
import json
import os
import threading
import time
import traceback
from collections.abc import Callable
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


_WATCH_INTERVAL = 0.2  # seconds between a worker's looks at its parent
_ORPHANED = 75  # exit status of a worker whose driver died
_watched: int | None = None  # the driver pid this process already watches


def _watch_driver(driver: int) -> None:
    """End this worker process as soon as the batch driver (process ``driver``) is gone.

    A ``kill -9`` of the driver tells loky's workers nothing: each went on with its queued jobs
    (about 1 GB each with torch). A worker is a child of the driver, so when the driver dies the
    worker is re-parented and ``os.getppid()`` changes; a daemon thread looks every
    ``_WATCH_INTERVAL`` and then calls ``os._exit``. Polling the parent id needs nothing from the
    driver (no pipe to keep open, no signal to deliver, which SIGKILL would prevent anyway) and,
    unlike ``PR_SET_PDEATHSIG``, does not fire when the driver *thread* that spawned the worker
    ends while loky keeps reusing the worker. It is installed as loky's worker ``initializer``
    (so idle workers end too) and again at the start of each job; it is idempotent, and does
    nothing in the driver itself (sequential and threading backends)."""
    global _watched
    if os.getpid() == driver or _watched == driver:
        return
    if os.getppid() != driver:  # the driver died before this worker got going
        os._exit(_ORPHANED)
    _watched = driver

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(_WATCH_INTERVAL)
        os._exit(_ORPHANED)

    threading.Thread(target=watch, name="evo-nas-driver-watch", daemon=True).start()


def _plain(d: dict[str, Any]) -> Any:
    return json.loads(json.dumps(d, sort_keys=True, default=str))


def _trained(cfg: RunConfig) -> str | None:
    """``supernet.pt`` this job trained earlier with the same settings (all but the search and
    latency sections, which training never reads), or None."""
    from evo_nas.pipeline import checkpoint_path
    from evo_nas.train import load_checkpoint

    path = checkpoint_path(cfg)
    if not path.is_file():
        return None
    try:
        _, meta = load_checkpoint(path)
    except Exception:  # unreadable: train again
        return None
    skip = ("search", "latency")
    mine = {k: v for k, v in to_dict(cfg).items() if k not in skip}
    theirs = {k: v for k, v in (meta.get("config") or {}).items() if k not in skip}
    return str(path) if _plain(mine) == _plain(theirs) else None


def _archived_run(cfg: RunConfig, checkpoint: str) -> tuple[str | None, str | None]:
    """``(run id, status)`` of the latest search in this job's archive that ran with exactly
    this job's config and checkpoint path, and whose rows carry the evaluation scope this job
    has now (so a checkpoint, data file or latency table rewritten in place starts a new
    search instead), or ``(None, None)``."""
    from evo_nas.archive import Archive
    from evo_nas.pipeline import evaluation_scope

    db = cfg.run_dir / "archive.db"
    if not db.is_file():
        return None, None
    want = _plain({**to_dict(cfg), "checkpoint": str(Path(checkpoint))})
    with Archive(db) as archive:
        runs = [r for r in archive.runs() if _plain(r["config"]) == want]
        if not runs:
            return None, None
        run, status = runs[-1]["run"], runs[-1]["status"]
        scopes = {s for (s,) in archive.conn.execute(
            "SELECT DISTINCT scope FROM evaluations WHERE run=?", (run,))}
    for scope in scopes:  # "space|digest|metric,names"
        parts = scope.rsplit("|", 2)
        if len(parts) != 3 or scope != evaluation_scope(cfg, Path(checkpoint), parts[0],
                                                        parts[2].split(",")):
            return None, None
    return run, status


def _read_back(cfg: RunConfig, run: str) -> Any:
    """The finished search ``run`` rebuilt from the archive (its files rewritten if missing)."""
    from evo_nas.report import result_from_archive

    result = result_from_archive(cfg.run_dir, run)
    result.info["failed_evaluations"] = sum(r["status"] != "ok" for r in result.history)
    if not (cfg.run_dir / "pareto.json").is_file():
        result.save(cfg.run_dir)
    return result


def _job(cfg_dict: dict[str, Any], checkpoint: str | None, threads: int,
         driver: int | None = None) -> dict[str, Any]:
    """One run, in a worker process: never raises, so one failure cannot sink the batch.

    Work already in the job's run directory is reused (batch resume): a finished search with
    the same config is read back, a killed one resumed, a supernet trained here kept."""
    if driver is not None:
        _watch_driver(driver)
    import torch

    from evo_nas.pipeline import search_run, train_run

    torch.set_num_threads(threads)
    cfg = load_config(cfg_dict)
    t0 = time.perf_counter()
    row: dict[str, Any] = {"run": cfg.name, "seed": cfg.seed, "status": "ok", "error": "",
                           "source": "new"}
    try:
        ckpt = checkpoint or _trained(cfg) or train_run(cfg, progress=False)
        run, status = _archived_run(cfg, str(ckpt))
        if status == "done":
            result, row["source"] = _read_back(cfg, run), "archive"
        else:  # a killed (or failed) search continues where its archive stops
            row["source"] = "resumed" if run else "new"
            result = search_run(cfg, ckpt, progress=False, resume=run)
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
              scheduler: str | None = None, threads: int = 1,
              progress: Callable[[dict[str, Any], int, int], None] | None = None,
              ) -> list[dict[str, Any]]:
    """Run every job; write ``summary.csv`` and ``batch.png`` (fronts, HV curves) in the batch dir.

    ``backend`` is any joblib backend (``loky`` processes by default); ``"dask"`` connects to the
    Dask scheduler at ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``) and runs jobs on its workers.
    Calling it again for the same batch (after a kill, say) reuses what the job directories
    already hold: finished searches are read back, killed ones resumed (batch resume).

    ``progress(row, n_done, n_total)`` is called in the driver as each job finishes, in order of
    completion (joblib's ``return_as="generator_unordered"``; the ``multiprocessing`` backend,
    which has no generator, reports every job at the end). The returned rows, the summary and
    the plot keep the batch's job order.
    """
    from joblib import delayed, parallel_config

    spec.batch_dir.mkdir(parents=True, exist_ok=True)
    driver = os.getpid()
    local = backend in ("loky", "multiprocessing")  # workers are this process's children
    tasks = [delayed(_indexed_job)(i, to_dict(cfg), spec.checkpoint, threads,
                                   driver if local else None)
             for i, cfg in enumerate(spec.jobs)]
    if backend == "dask":
        if not scheduler:
            raise ConfigError("--backend dask needs --scheduler ADDRESS (tcp://host:port)")
        from dask.distributed import Client

        with Client(scheduler), parallel_config(backend="dask"):
            rows = _collect(tasks, progress, n_jobs=-1)
    else:
        with _local_config(backend, n_jobs, driver):
            rows = _collect(tasks, progress)
    _add_hypervolumes(rows)
    _write_summary(spec.batch_dir / "summary.csv", rows)
    _plot(spec.batch_dir, rows, spec.jobs[0].search.objectives)
    return rows


def _indexed_job(index: int, *args: Any) -> tuple[int, dict[str, Any]]:
    """:func:`_job` with its place in the batch, so rows finishing in any order go back in it."""
    return index, _job(*args)


def _collect(tasks: list[Any], progress: Callable[[dict[str, Any], int, int], None] | None,
             **parallel: Any) -> list[dict[str, Any]]:
    """Run ``tasks`` under the active joblib config, calling ``progress`` as each one finishes
    (one job per dispatch, so a finished job is never held back by a slower one in its batch);
    the rows come back in task order."""
    from joblib import Parallel

    try:
        results = Parallel(return_as="generator_unordered", batch_size=1, **parallel)(tasks)
    except ValueError as e:  # a backend without generators (multiprocessing): all at the end
        if "does not support return_as" not in str(e):
            raise
        results = Parallel(batch_size=1, **parallel)(tasks)
    rows: list[dict[str, Any] | None] = [None] * len(tasks)
    for done, (index, row) in enumerate(results, 1):
        rows[index] = row
        if progress is not None:
            progress(row, done, len(tasks))
    return [r for r in rows if r is not None]


def _local_config(backend: str, n_jobs: int, driver: int) -> Any:
    """joblib's ``parallel_config`` for a local backend. Loky runs :func:`_watch_driver` as each
    worker starts (idle workers too); the same initializer and driver pid on every call let
    joblib keep reusing its executor (and its warm workers) across batches in one process."""
    from joblib import parallel_config

    extra = {"initializer": _watch_driver, "initargs": (driver,)} if backend == "loky" else {}
    return parallel_config(backend=backend, n_jobs=n_jobs, **extra)


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
    cols = ["run", "seed", "status", "hv", "front_size", "evaluations", "seconds", "source",
            "error"]
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
