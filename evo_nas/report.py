"""Plots of search results (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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
