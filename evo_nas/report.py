"""Plots of search results (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from evo_nas.result import SearchResult


def plot_pareto(result: SearchResult, path: str | Path) -> Path:
    """Scatter of every evaluated architecture with the Pareto front on the first two objectives."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evo_nas.result import user_column, user_value

    path = Path(path)
    objs = result.objectives
    x_name, y_name = (objs[1], objs[0]) if len(objs) > 1 else (objs[0], objs[0])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for rows, style in (
        ([r for r in result.history if not r["feasible"]], dict(c="0.8", s=10, label="infeasible")),
        ([r for r in result.history if r["feasible"]], dict(c="C0", s=10, alpha=0.5,
                                                             label="evaluated")),
        (result.pareto, dict(c="C3", s=30, label="Pareto front")),
    ):
        if rows:
            ax.scatter([user_value(x_name, r[x_name]) for r in rows],
                       [user_value(y_name, r[y_name]) for r in rows], **style)
    for name, bound in result.budgets.items():
        if name == x_name:
            ax.axvline(user_value(name, bound), ls="--", c="k", lw=1, label="budget")
    ax.set_xlabel(user_column(x_name))
    ax.set_ylabel(user_column(y_name))
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"{len(result.pareto)} Pareto architectures / {result.n_evals} evaluated")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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
    from evo_nas.result import SearchResult, pareto_rows

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
