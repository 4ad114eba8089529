"""The configured jobs behind the CLI: train a supernet, search it, both (the demo)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from evo_nas.config import RunConfig, to_dict
from evo_nas.data import Dataset, load_dataset
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
    """Train the preset's supernet on the configured data; write ``supernet.pt`` and a log."""
    from evo_nas.train import save_checkpoint, train_supernet

    data = load_run_data(cfg)
    net = cfg.build_supernet()  # channels vs dataset were checked by RunConfig.validate
    if data.num_classes > net.num_classes:
        from evo_nas.errors import ConfigError

        raise ConfigError(f"data.dataset = {cfg.data.dataset!r} has {data.num_classes} classes "
                          f"but preset = {cfg.preset!r} has {net.num_classes} outputs"
                          + (" (set supernet.num_classes)" if cfg.preset == "nb201" else ""))
    log = train_supernet(net, data, cfg.train, device=cfg.device, progress=progress)
    scores = extremes_accuracy(net, data, cfg)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(checkpoint_path(cfg), net.cpu(), {"train_log": log, "scores": scores,
                                                               "config": to_dict(cfg)})
    (cfg.run_dir / "train_log.json").write_text(json.dumps({"epochs": log, "scores": scores},
                                                           indent=2))
    return path


def extremes_accuracy(net: Any, data: Dataset, cfg: RunConfig) -> dict[str, float]:
    """Validation accuracy (%) of the largest and smallest sub-networks, BN re-calibrated."""
    from evo_nas.objectives import SupernetAccuracy

    acc = SupernetAccuracy(net, data, split=cfg.eval.split, calib_images=cfg.eval.calib_images,
                           device=cfg.device, seed=cfg.seed)
    space = net.space
    return {f"{name}_{cfg.eval.split}_accuracy": round(acc.evaluate(space.decode(x))[0], 3)
            for name, x in (("largest", space.largest()), ("smallest", space.smallest()))}


def build_problem(net: Any, data: Dataset, cfg: RunConfig) -> NASProblem:
    """NASProblem over the supernet's space with the configured objectives and budgets."""
    from evo_nas.costs import CostModel
    from evo_nas.objectives import SupernetAccuracy

    space = net.space
    acc = SupernetAccuracy(net, data, split=cfg.eval.split, calib_images=cfg.eval.calib_images,
                           batch_size=cfg.eval.batch_size, device=cfg.device, seed=cfg.seed)
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
    with the same checkpoint, data and evaluation settings are reused from the archive. If the
    search ends without a feasible architecture, history.csv is still written and the
    BudgetError propagates: no pareto files pretend to be a result.
    """
    from evo_nas.archive import Archive
    from evo_nas.errors import BudgetError
    from evo_nas.search import search
    from evo_nas.train import load_checkpoint

    ckpt = Path(checkpoint or checkpoint_path(cfg))
    net, _ = load_checkpoint(ckpt)
    problem = build_problem(net, load_run_data(cfg), cfg)
    scope = "|".join([net.space.name, _file_digest(ckpt), cfg.data.dataset,
                      f"{cfg.data.val_fraction}:{cfg.data.max_train}:{cfg.seed}",
                      f"{cfg.eval.split}:{cfg.eval.calib_images}",
                      ",".join(sorted(problem.metrics))])
    run = resume or f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    s = cfg.search
    with Archive(cfg.run_dir / "archive.db") as archive:
        problem.attach(archive, run, scope)
        archive.start_run(run, {**to_dict(cfg), "checkpoint": str(ckpt)})
        try:
            result = search(problem, s.algorithm, pop_size=s.pop_size, generations=s.generations,
                            seed=cfg.seed, progress=progress, options=s.options)
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
    checkpoint = stored.pop("checkpoint")
    stored["runs_dir"], stored["name"] = str(run_dir.parent), run_dir.name
    return load_config(stored), last["run"], checkpoint
