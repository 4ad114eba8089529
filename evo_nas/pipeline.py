"""The configured jobs behind the CLI: train a supernet, search it, both (the demo)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from evo_nas.config import RunConfig, to_dict
from evo_nas.data import Dataset, load_dataset
from evo_nas.result import SearchResult
from evo_nas.spaces import get_spec
from problems import NASProblem


def _data(cfg: RunConfig) -> Dataset:
    d = cfg.data
    return load_dataset(d.dataset, d.data_dir, d.download, seed=cfg.seed,
                        val_fraction=d.val_fraction, max_train=d.max_train)


def checkpoint_path(cfg: RunConfig) -> Path:
    return cfg.run_dir / "supernet.pt"


def train_run(cfg: RunConfig, progress: bool = True) -> Path:
    """Train the preset's supernet on the configured data; write ``supernet.pt`` and a log."""
    from evo_nas.nn import Supernet
    from evo_nas.train import save_checkpoint, train_supernet

    data = _data(cfg)
    spec = get_spec(cfg.preset)
    if data.in_channels != spec.in_channels:
        from evo_nas.errors import ConfigError

        raise ConfigError(f"preset {cfg.preset!r} takes {spec.in_channels}-channel images but "
                          f"data.dataset {cfg.data.dataset!r} has {data.in_channels}")
    torch.manual_seed(cfg.train.seed)
    net = Supernet(spec)
    log = train_supernet(net, data, cfg.train, device=cfg.device, progress=progress)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(checkpoint_path(cfg), net.cpu(), {"train_log": log,
                                                               "config": to_dict(cfg)})
    (cfg.run_dir / "train_log.json").write_text(json.dumps(log, indent=2))
    return path


def build_problem(net: Any, data: Dataset, cfg: RunConfig) -> NASProblem:
    """NASProblem over the supernet's space with the configured objectives and budgets."""
    from evo_nas.costs import CostModel
    from evo_nas.objectives import SupernetAccuracy

    space = net.spec.space()
    acc = SupernetAccuracy(net, data, split=cfg.eval.split, calib_images=cfg.eval.calib_images,
                           batch_size=cfg.eval.batch_size, device=cfg.device, seed=cfg.seed)
    costs = CostModel(space)
    metrics = {"error": acc, "loss": acc, "flops": costs, "params": costs}
    objectives = {o: metrics[o] for o in cfg.search.objectives}
    extra = {k: metrics[k] for k in cfg.search.budgets if k not in objectives}
    return NASProblem(space, objectives, budgets=cfg.search.budgets, metrics=extra)


def search_run(cfg: RunConfig, checkpoint: str | Path | None = None,
               progress: bool = True) -> SearchResult:
    """Search the trained supernet; write pareto.csv/.json/.png and history.csv to the run dir.

    If the search ends without a feasible architecture, history.csv is still written (nothing
    evaluated is lost) and the BudgetError propagates: no pareto files pretend to be a result.
    """
    from evo_nas.errors import BudgetError
    from evo_nas.search import search
    from evo_nas.train import load_checkpoint

    net, _ = load_checkpoint(checkpoint or checkpoint_path(cfg))
    problem = build_problem(net, _data(cfg), cfg)
    s = cfg.search
    try:
        result = search(problem, s.algorithm, pop_size=s.pop_size, generations=s.generations,
                        seed=cfg.seed, progress=progress)
    except BudgetError:
        if problem.history:
            SearchResult(problem.objective_names, problem.budgets, problem.history,
                         []).save_history(cfg.run_dir)
        raise
    result.save(cfg.run_dir)
    return result
