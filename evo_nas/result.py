"""Search results in the user's terms: Pareto set, history, tables and files."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from evo_nas.metrics import CATALOGUE, user_column, user_value  # noqa: E402  (re-exported)

__all__ = ["SearchResult", "pareto_plot_layout", "pareto_rows", "plot_pareto", "user_column",
           "user_value"]


def pareto_rows(rows: list[dict[str, Any]], objectives: list[str]) -> list[dict[str, Any]]:
    """Feasible, non-dominated rows (first of any tie kept once), sorted by the first objective."""
    feas = [r for r in rows if r["feasible"]]
    if not feas:
        return []
    F = np.array([[r[o] for o in objectives] for r in feas], dtype=float)
    _, first = np.unique(F, axis=0, return_index=True)  # equal objective vectors: keep one
    first = np.sort(first)
    front = NonDominatedSorting().do(F[first], only_non_dominated_front=True)
    chosen = [feas[i] for i in first[front]]
    return sorted(chosen, key=lambda r: [r[o] for o in objectives])


@dataclass
class SearchResult:
    """What a search found. ``history`` holds every evaluated architecture, ``pareto`` the
    feasible non-dominated ones among them (not only the final population)."""

    objectives: list[str]
    budgets: dict[str, float]
    history: list[dict[str, Any]]
    pareto: list[dict[str, Any]]
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_evals(self) -> int:
        return len(self.history)

    @property
    def metric_names(self) -> list[str]:
        skip = {"eval", "genome", "config", "feasible", "seconds", "status", "fault"}
        return [k for k in self.history[0] if k not in skip] if self.history else []

    def user_rows(self, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        rows = self.pareto if rows is None else rows
        out = []
        for r in rows:
            d: dict[str, Any] = {"eval": r["eval"]}
            for m in self.metric_names:
                d[user_column(m)] = user_value(m, r[m])
            d["feasible"] = r["feasible"]
            d["config"] = r["config"]
            out.append(d)
        return out

    def table(self) -> str:
        names = self.objectives + [m for m in self.metric_names if m not in self.objectives]
        head = ["#", *[user_column(m) for m in names]]
        lines = []
        for i, r in enumerate(self.pareto):
            cells = [str(i)]
            for m in names:
                fmt = CATALOGUE[m].fmt if m in CATALOGUE else "{:.4g}"
                cells.append(fmt.format(user_value(m, r[m])))
            lines.append(cells)
        widths = [max(len(h), *(len(c[j]) for c in lines)) if lines else len(h)
                  for j, h in enumerate(head)]
        fmt_row = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
        budget = ", ".join(f"{user_column(k)} <= {v:g}" for k, v in self.budgets.items())
        title = (f"Pareto front: {len(self.pareto)} architectures from {self.n_evals} evaluations"
                 + (f" (budget {budget})" if budget else ""))
        return "\n".join([title, fmt_row(head), *(fmt_row(c) for c in lines)])

    def save_history(self, out_dir: str | Path) -> Path:
        """Write history.csv alone: every evaluated architecture, feasible or not, with its
        ``status`` (ok, failed, nan) and ``error``, so failed evaluations are visible there."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows = self.user_rows(self.history)
        for row, rec in zip(rows, self.history, strict=True):  # failures say why, row by row
            row["status"], row["error"] = rec.get("status", "ok"), rec.get("fault") or ""
        return _write_csv(out / "history.csv", rows, self.metric_names, ("status", "error"))

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write pareto.csv, pareto.json, history.csv and pareto.png into ``out_dir``."""
        out = Path(out_dir)
        names = self.metric_names
        written = [self.save_history(out), _write_csv(out / "pareto.csv", self.user_rows(), names)]
        doc = {"objectives": self.objectives,
               "budgets": {user_column(k): v for k, v in self.budgets.items()},
               "n_evals": self.n_evals, "seconds": round(self.seconds, 3), "info": self.info,
               "pareto": self.user_rows()}
        (out / "pareto.json").write_text(json.dumps(doc, indent=2, default=_json_default))
        written.append(out / "pareto.json")
        written.append(plot_pareto(self, out / "pareto.png"))
        return written


def pareto_plot_layout(result: SearchResult) -> tuple[str | None, str, str]:
    """``(x objective or None for the evaluation number, y objective, title)`` of pareto.png.

    Two objectives: the second against the first. One objective: the objective against the
    evaluation number (a front of one objective is its best value). Three or more: the first two,
    the title naming the objectives not drawn (the front is non-dominated on all of them, so
    some of its points look dominated here)."""
    objs = result.objectives
    head = f"{len(result.pareto)} Pareto architectures / {result.n_evals} evaluated"
    if len(objs) == 1:
        return None, objs[0], f"{head}\n{user_column(objs[0])} by evaluation (one objective)"
    if len(objs) == 2:
        return objs[1], objs[0], head
    hidden = ", ".join(user_column(o) for o in objs[2:])
    return objs[1], objs[0], (f"{head}\nfirst 2 of {len(objs)} objectives shown; front is "
                              f"non-dominated on all ({hidden} not drawn)")


def plot_pareto(result: SearchResult, path: str | Path) -> Path:
    """Scatter of every evaluated architecture with the Pareto front; what is plotted for one,
    two or more objectives is :func:`pareto_plot_layout`'s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    x_name, y_name, title = pareto_plot_layout(result)

    def xs(rows: list[dict[str, Any]]) -> list[float]:
        if x_name is None:
            return [r["eval"] for r in rows]
        return [user_value(x_name, r[x_name]) for r in rows]

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for rows, style in (
        ([r for r in result.history if not r["feasible"]], dict(c="0.8", s=10, label="infeasible")),
        ([r for r in result.history if r["feasible"]], dict(c="C0", s=10, alpha=0.5,
                                                             label="evaluated")),
        (result.pareto, dict(c="C3", s=30, label="Pareto front")),
    ):
        if rows:
            ax.scatter(xs(rows), [user_value(y_name, r[y_name]) for r in rows], **style)
    for name, bound in result.budgets.items():
        if name == x_name:
            ax.axvline(user_value(name, bound), ls="--", c="k", lw=1, label="budget")
        elif name == y_name:
            ax.axhline(user_value(name, bound), ls="--", c="k", lw=1, label="budget")
    ax.set_xlabel("evaluation" if x_name is None else user_column(x_name))
    ax.set_ylabel(user_column(y_name))
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _write_csv(path: Path, rows: list[dict[str, Any]], names: list[str],
               extra: tuple[str, ...] = ()) -> Path:
    cols = ["eval", *[user_column(m) for m in names], "feasible", *extra, "config"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([*(r[c] for c in cols[:-1]), json.dumps(r["config"], sort_keys=True,
                                                                default=_json_default)])
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
