"""Plots and tables of search results (matplotlib, headless): hypervolumes, and results rebuilt
from an archive. The Pareto plot every saved result carries lives in :mod:`evo_nas.result`
(``plot_pareto``, re-exported here) so that ``result`` never imports this module."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evo_nas.result import SearchResult, pareto_rows, plot_pareto

__all__ = ["plot_pareto", "normalised_hv", "result_from_archive"]


def normalised_hv(F: np.ndarray, ideal: np.ndarray, nadir: np.ndarray,
                  ref: float = 1.1) -> float:
    """pymoo hypervolume of minimised objectives scaled so ``ideal`` -> 0 and ``nadir`` -> 1,
    against the reference point ``(ref, ..., ref)``; points beyond it count nothing."""
    from pymoo.indicators.hv import HV

    F = np.atleast_2d(np.asarray(F, dtype=float))
    if F.size == 0:
        return 0.0
    ideal, nadir = np.asarray(ideal, dtype=float), np.asarray(nadir, dtype=float)
    Z = (F - ideal) / np.where(nadir > ideal, nadir - ideal, 1.0)
    Z = Z[np.isfinite(Z).all(axis=1) & (Z <= ref).all(axis=1)]
    return float(HV(ref_point=np.full(F.shape[1], ref))(Z)) if len(Z) else 0.0


def result_from_archive(run_dir: str | Path, run: str | None = None) -> SearchResult:
    """Rebuild a run's SearchResult from its ``archive.db`` alone (the latest run by default)."""
    from evo_nas.archive import Archive
    from evo_nas.errors import ConfigError

    db = Path(run_dir) / "archive.db"
    if not db.is_file():
        raise ConfigError(f"report: {str(run_dir)!r} holds no archive.db")
    with Archive(db) as archive:
        runs = {r["run"]: r for r in archive.runs()}
        if not runs:
            raise ConfigError(f"report: the archive in {str(run_dir)!r} holds no run")
        if run is None:
            run = list(runs)[-1]
        if run not in runs:
            raise ConfigError(f"report: no run {run!r} in {str(db)!r} (runs: {sorted(runs)})")
        rows = archive.rows(run)
    search = runs[run]["config"]["search"]
    history = [{"eval": i, "genome": r["genome"], "config": r["config"], **r["metrics"],
                "feasible": r["feasible"], "seconds": r["seconds"], "status": r["status"],
                "fault": r["fault"]} for i, r in enumerate(rows)]
    objectives = list(search["objectives"])
    return SearchResult(objectives, dict(search["budgets"]), history,
                        pareto_rows(history, objectives),
                        info={"run": run, "status": runs[run]["status"]})
