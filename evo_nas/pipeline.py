"""The configured jobs behind the CLI: train a supernet, search it, both (the demo)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from evo_nas.config import RunConfig, to_dict
from evo_nas.data import Dataset, load_dataset
from evo_nas.errors import ConfigError
from evo_nas.result import SearchResult
from problems import NASProblem


def load_run_data(cfg: RunConfig) -> Dataset:
    """The run's dataset and splits, as every command (and every rank) loads it."""
    d = cfg.data
    return load_dataset(d.dataset, d.data_dir, d.download, seed=cfg.seed,
                        val_fraction=d.val_fraction, max_train=d.max_train, path=d.path)


def checkpoint_path(cfg: RunConfig) -> Path:
    return cfg.run_dir / "supernet.pt"


def train_run(cfg: RunConfig, progress: bool = True) -> Path:
    """Train the preset's supernet on the configured data; write ``supernet.pt`` and a log.

    Inside a ``torch.distributed`` process group (torchrun; :mod:`evo_nas.commands.ddp`) every
    rank trains and rank 0 alone scores and saves."""
    from evo_nas.train import current_context, save_checkpoint, train_supernet

    check_run_dir(cfg)  # before any training, so no work is lost to an unwritable folder
    if cfg.train.state_path:
        from evo_nas.config import check_writable_file

        check_writable_file(cfg.train.state_path, "train.state_path")
    data = load_run_data(cfg)
    net = cfg.build_supernet()  # channels vs dataset were checked by RunConfig.validate
    if data.num_classes > net.num_classes:
        from evo_nas.errors import ConfigError

        raise ConfigError(f"data.dataset = {cfg.data.dataset!r} has {data.num_classes} classes "
                          f"but preset = {cfg.preset!r} has {net.num_classes} outputs"
                          + (" (set supernet.num_classes)" if cfg.preset == "nb201" else ""))
    log = train_supernet(net, data, cfg.train, device=cfg.device, progress=progress)
    ctx = current_context()
    if not ctx.is_main:
        return checkpoint_path(cfg)
    scores = extremes_accuracy(net, data, cfg)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(checkpoint_path(cfg), net.cpu(), {"train_log": log, "scores": scores,
                                                               "config": to_dict(cfg),
                                                               "world_size": ctx.world_size})
    (cfg.run_dir / "train_log.json").write_text(json.dumps({"epochs": log, "scores": scores},
                                                           indent=2))
    return path


def extremes_accuracy(net: Any, data: Dataset, cfg: RunConfig) -> dict[str, float]:
    """Validation accuracy (%) of the largest and smallest sub-networks, BN re-calibrated."""
    from evo_nas.objectives import SupernetAccuracy

    acc = SupernetAccuracy(net, data, split=cfg.eval.split, calib_images=cfg.eval.calib_images,
                           device=cfg.device, seed=cfg.seed, bn=cfg.eval.bn,
                           eval_images=cfg.eval.eval_images)
    space = net.space
    return {f"{name}_{cfg.eval.split}_accuracy": round(acc.evaluate(space.decode(x))[0], 3)
            for name, x in (("largest", space.largest()), ("smallest", space.smallest()))}


def build_problem(net: Any, data: Dataset, cfg: RunConfig) -> NASProblem:
    """NASProblem over the supernet's space with the configured objectives and budgets."""
    from evo_nas.costs import CostModel
    from evo_nas.objectives import SupernetAccuracy

    space = net.space
    acc = SupernetAccuracy(net, data, split=cfg.eval.split, calib_images=cfg.eval.calib_images,
                           batch_size=cfg.eval.batch_size, device=cfg.device, seed=cfg.seed,
                           bn=cfg.eval.bn, eval_images=cfg.eval.eval_images)
    costs = CostModel(space)
    metrics = {"error": acc, "loss": acc, "flops": costs, "params": costs}
    for proxy in ("synflow", "nwot"):  # zero-cost proxies at initialisation (label-free)
        if proxy in cfg.search.objectives:
            from evo_nas.proxies import ZeroCostProxy

            metrics[proxy] = ZeroCostProxy(net, data, proxy, seed=cfg.seed, device=cfg.device)
    if "latency" in cfg.search.objectives or "latency" in cfg.search.budgets:
        metrics["latency"] = latency_metric(cfg, space, net)
    objectives = {o: metrics[o] for o in cfg.search.objectives}
    extra = {k: metrics[k] for k in cfg.search.budgets if k not in objectives}
    return NASProblem(space, objectives, budgets=cfg.search.budgets, metrics=extra)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def latency_metric(cfg: RunConfig, space: Any, net: Any = None) -> Any:
    """The ``latency`` metric: ``latency.table`` if set, else the table cached in the run
    directory when it was measured here with the same settings for the same supernet, else a
    table measured now (and cached as ``latency_table.json``). A MobileNet space needs only
    ``space``; any other needs ``net``, and a supernet without per-part latency
    (``latency_parts``, see :mod:`evo_nas.nn.protocol`) has its sub-networks measured one by
    one instead."""
    from evo_nas.latency import LatencyTable, LatencyTableError, build_table, device_info
    from evo_nas.nn.protocol import supports_latency_table

    lc = cfg.latency
    mobilenet = "spec" in space.meta
    if lc.table:
        return LatencyTable.load(lc.table, space if mobilenet or net is None else net)
    if not mobilenet and (net is None or not supports_latency_table(net)):
        from evo_nas.latency import MeasuredLatency

        return MeasuredLatency(net, batch_size=lc.batch_size, threads=lc.threads,
                               repeats=lc.repeats)
    owner = space if mobilenet else _latency_twin(net)
    path = cfg.run_dir / "latency_table.json"
    want = {"backend": lc.backend, "batch_size": lc.batch_size, "threads": lc.threads,
            "stat": lc.stat}
    if path.is_file():
        try:
            table = LatencyTable.load(path, owner, warn_device=False)
            same = all(table.data.get(k) == v for k, v in want.items())
            if same and table.device.get("name") == device_info(lc.threads)["name"]:
                return table
        except LatencyTableError:
            pass
    table = build_table(owner, lc.backend, lc.batch_size, lc.threads, lc.repeats,
                        stat=lc.stat, contexts=lc.contexts)
    table.save(path)
    return table


def _latency_twin(net: Any) -> Any:
    """An untrained CPU copy of ``net`` to time (latency does not depend on the weights, and the
    evaluated supernet may sit on a GPU); ``net`` itself when its settings cannot rebuild it."""
    import torch

    from evo_nas.errors import CheckpointError
    from evo_nas.nn.protocol import build_supernet

    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return build_supernet(net.settings()).eval()
    except CheckpointError:
        return net


def search_run(cfg: RunConfig, checkpoint: str | Path | None = None, progress: bool = True,
               resume: str | None = None) -> SearchResult:
    """Search the trained supernet; write pareto.csv/.json/.png and history.csv to the run dir.

    Every evaluation is committed to ``<run dir>/archive.db`` as it happens, together with the
    search state at each generation; ``resume`` names an archived run to continue. Evaluations
    in the same :func:`evaluation_scope` are reused from the archive. The run directory is
    locked for the whole search (:func:`run_dir_lock`). If the search ends without a feasible
    architecture, history.csv is still written and the BudgetError propagates: no pareto files
    pretend to be a result.
    """
    check_run_dir(cfg)
    with run_dir_lock(cfg.run_dir):
        return _search_locked(cfg, checkpoint, progress, resume)


def check_run_dir(cfg: RunConfig) -> None:
    """A ConfigError now, before any work, if the run directory could not be written or the
    device does not exist here."""
    from evo_nas.config import check_device, check_writable_dir

    check_device(cfg.device)
    if cfg.run_dir.exists():
        check_writable_dir(cfg.run_dir, "run directory (runs_dir/name)")
    else:
        check_writable_dir(cfg.runs_dir, "runs_dir")


def _search_locked(cfg: RunConfig, checkpoint: str | Path | None, progress: bool,
                   resume: str | None) -> SearchResult:
    from evo_nas.archive import Archive
    from evo_nas.errors import BudgetError
    from evo_nas.search import search
    from evo_nas.train import load_checkpoint

    ckpt = Path(checkpoint or checkpoint_path(cfg))
    net, _ = load_checkpoint(ckpt)
    problem = build_problem(net, load_run_data(cfg), cfg)
    scope = evaluation_scope(cfg, ckpt, net.space.name, problem.metrics)
    s = cfg.search
    problem.executor = evaluation_executor(cfg, ckpt, problem)
    with Archive(cfg.run_dir / "archive.db") as archive, _closing(problem.executor):
        run = resume or new_run_id(cfg.name, (r["run"] for r in archive.runs()))
        problem.attach(archive, run, scope)
        archive.start_run(run, {**to_dict(cfg), "checkpoint": str(ckpt)})
        try:
            # a config without budget or generations runs 12 generations (the documented default)
            generations = 12 if s.generations is None and s.budget is None else s.generations
            result = search(problem, s.algorithm, pop_size=s.pop_size, generations=generations,
                            seed=cfg.seed, progress=progress, options=s.options, budget=s.budget)
        except BudgetError:
            archive.finish_run(run, "no-feasible")
            if problem.history:
                SearchResult(problem.objective_names, problem.budgets, problem.history,
                             []).save_history(cfg.run_dir)
            raise
        archive.finish_run(run, "done")
    result.info["run"] = run
    result.save(cfg.run_dir)
    return result


def evaluation_executor(cfg: RunConfig, ckpt: Path, problem: NASProblem) -> Any:
    """The executor of ``search.backend`` (None for ``serial``: evaluate in this process). The
    supernet-backed metrics (accuracy, zero-cost proxies) then travel to workers as small specs
    (checkpoint path and digest, data and metric settings) that each worker builds once, not
    as the model. Latency measured per sub-network is refused there: timing needs the machine
    to itself, and workers would time each other's load."""
    s = cfg.search
    if s.backend == "serial":
        return None
    from evo_nas.latency import MeasuredLatency
    from evo_nas.objectives import SupernetAccuracy, SupernetMetricSpec
    from evo_nas.parallel import make_executor
    from evo_nas.proxies import ZeroCostProxy

    if any(isinstance(m, MeasuredLatency) for m in problem.metrics.values()):
        raise ConfigError(
            f"search.backend = {s.backend!r}: latency is measured per sub-network here (this "
            "supernet has no latency table), and parallel workers would time each other's "
            "load; use search.backend: serial, or give latency.table")
    d, e = cfg.data, cfg.eval

    def absolute(path: str | None) -> str | None:
        return None if path is None else str(Path(path).resolve())

    common = {"checkpoint": str(ckpt.resolve()), "checkpoint_sha": _file_digest(ckpt),
              "data": {"name": d.dataset, "data_dir": absolute(d.data_dir),
                       "download": d.download, "seed": cfg.seed,
                       "val_fraction": d.val_fraction, "max_train": d.max_train,
                       "path": absolute(d.path)},
              "device": cfg.device}
    for metric in problem.metrics.values():
        if isinstance(metric, SupernetAccuracy):
            metric.worker_spec = SupernetMetricSpec(
                **common, metric="accuracy",
                options={"split": e.split, "calib_images": e.calib_images,
                         "batch_size": e.batch_size, "seed": cfg.seed, "bn": e.bn,
                         "eval_images": e.eval_images})
        elif isinstance(metric, ZeroCostProxy):
            metric.worker_spec = SupernetMetricSpec(
                **common, metric="proxy",
                options={"proxy": metric.proxy, "batch_size": metric.batch_size,
                         "seed": metric.seed})
    return make_executor(s.backend, s.workers, s.scheduler, s.worker_threads)


@contextlib.contextmanager
def _closing(executor: Any) -> Iterator[None]:
    try:
        yield
    finally:
        if executor is not None:
            executor.close()


def evaluation_scope(cfg: RunConfig, ckpt: Path, space_name: str,
                     metrics: Iterable[str]) -> str:
    """The archive cache scope of a search: a cached value is reused only if nothing that can
    change it differs. That is the checkpoint's bytes, the data (dataset, files, split, seed),
    the evaluation and supernet settings and, with a ``latency`` metric, the table's bytes when
    ``latency.table`` is set, else the measurement settings and this CPU. Settings that change
    no value (population size, budgets, ...) stay out, so other searches still share results."""
    from evo_nas.latency.measure import cpu_model

    names = sorted(metrics)
    d, e, lat = cfg.data, cfg.eval, cfg.latency
    identity: dict[str, Any] = {
        "checkpoint": _file_digest(ckpt),
        "data": {"dataset": d.dataset, "path": d.path, "data_dir": d.data_dir,
                 "file": _file_digest(Path(d.path)) if d.path else None,
                 "val_fraction": d.val_fraction, "max_train": d.max_train, "seed": cfg.seed},
        "eval": {"split": e.split, "calib_images": e.calib_images, "batch_size": e.batch_size,
                 "bn": e.bn, "eval_images": e.eval_images},
        "supernet": {"preset": cfg.preset, "options": cfg.supernet},
    }
    if "latency" in names:
        identity["latency"] = ({"table": _file_digest(Path(lat.table))} if lat.table else
                               {"backend": lat.backend, "batch_size": lat.batch_size,
                                "threads": lat.threads, "stat": lat.stat,
                                "repeats": lat.repeats, "contexts": lat.contexts,
                                "cpu": cpu_model()})
    text = json.dumps(identity, sort_keys=True, default=str)
    return "|".join([space_name, hashlib.sha256(text.encode()).hexdigest()[:16], ",".join(names)])


def new_run_id(name: str, taken: Iterable[str] = ()) -> str:
    """``<name>-<date>-<time>-<random>``, not in ``taken``: the random part keeps two searches
    started in the same second from sharing an id (and so mixing their archived rows)."""
    taken = set(taken)
    while True:
        run = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        if run not in taken:
            return run


@contextlib.contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``<run dir>/.lock`` exclusively while a search writes there, so a second search into
    the same directory fails at once instead of interleaving rows and result files. The lock is
    an ``flock``, which the OS drops when the process dies: a crash leaves nothing to clean up.
    Readers (``evo-nas report``) do not take it."""
    import fcntl

    from evo_nas.errors import RunDirBusyError

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise RunDirBusyError(f"run dir {str(run_dir)!r} is in use: another search{who} holds "
                              f"{str(path)!r}; wait for it to end or choose another --name"
                              ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def resume_config(run_dir: str | Path) -> tuple[RunConfig, str, str]:
    """Config, archived run id and checkpoint of the latest search recorded in ``run_dir``."""
    from evo_nas.archive import Archive
    from evo_nas.config import load_config
    from evo_nas.errors import ConfigError

    run_dir = Path(run_dir)
    db = run_dir / "archive.db"
    if not db.is_file():
        raise ConfigError(f"--resume {str(run_dir)!r}: no archive.db there to resume from")
    with Archive(db) as archive:
        runs = archive.runs()
    if not runs:
        raise ConfigError(f"--resume {str(run_dir)!r}: the archive holds no search run")
    last = runs[-1]
    stored = dict(last["config"])
    recorded = stored.pop("checkpoint", None)
    if not isinstance(recorded, str) or not recorded:
        raise ConfigError(f"--resume {str(run_dir)!r}: run {last['run']!r} records no checkpoint "
                          f"(runs.config.checkpoint = {recorded!r}); the archive was edited")
    checkpoint = _find_checkpoint(recorded, run_dir, stored.get("runs_dir"), stored.get("name"))
    stored["runs_dir"], stored["name"] = str(run_dir.parent), run_dir.name
    return load_config(stored), last["run"], checkpoint


def _find_checkpoint(recorded: str, run_dir: Path, runs_dir: Any, name: Any) -> str:
    """The archived checkpoint path as an absolute path that exists from this working directory:
    a relative path was relative to the search's working directory, which is found again from
    the run dir and the recorded ``runs_dir``/``name``; failing that, the file of that name in
    the run dir (where ``train`` writes it). Unresolved, the recorded path as it was."""
    path = Path(recorded)
    tried = [path]
    if not path.is_absolute():
        here = run_dir.resolve()
        if isinstance(runs_dir, str) and isinstance(name, str):
            rel = Path(runs_dir) / name
            n = len(rel.parts)
            if (not rel.is_absolute() and ".." not in rel.parts and n < len(here.parts)
                    and here.parts[-n:] == rel.parts):
                tried.append(here.parents[n - 1] / path)
        tried.append(here / path.name)
    for candidate in tried:
        if candidate.is_file():
            return str(candidate.resolve())
    return recorded
