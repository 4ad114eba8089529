"""The one metric catalogue: what a metric is, the built-in names with their units, and the one
way every consumer calls a metric.

A metric is a callable ``list[config] -> values`` (one number per config) or ``-> {name:
values}`` (one callable, such as the supernet evaluator or a cost model, feeding several names).
Optional attributes: ``cheap = True`` (analytic or a lookup: budgets are checked up front, the
surrogate computes it exactly instead of predicting it, budget repair may call it freely) and
``batch_genomes(X)`` (the same values from the canonical genome matrix, vectorised).
:func:`metric_values` is the single dispatch helper that :class:`problems.NASProblem`, the
surrogate problem and the budget operators share. Kept torch-free so tabular users never import
torch (``objectives.py`` holds the torch-backed metrics themselves).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from evo_nas.errors import ConfigError

__all__ = ["CATALOGUE", "Metric", "MetricInfo", "is_cheap", "metric_values", "user_column",
           "user_value"]

Values = Sequence[float] | np.ndarray
Configs = list[dict[str, Any]]


@runtime_checkable
class Metric(Protocol):
    """Values of architectures; see the module docstring for the optional ``cheap`` flag and
    ``batch_genomes`` method."""

    def __call__(self, configs: Configs) -> Values | Mapping[str, Values]: ...


@dataclass(frozen=True)
class MetricInfo:
    """How a built-in metric (always minimised internally) is named and shown to a user."""

    name: str
    column: str                   # column in pareto.csv / history tables
    unit: str
    to_user: Callable[[float], float]
    fmt: str
    description: str


def _same(v: float) -> float:
    return v


def _accuracy(v: float) -> float:
    return 100.0 - v


def _negate(v: float) -> float:
    return -v


CATALOGUE: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("error", "accuracy_%", "%", _accuracy, "{:.2f}",
               "100 - validation accuracy % of the sub-network (supernet weights, BN handled)"),
    MetricInfo("loss", "loss", "nats", _same, "{:.4f}", "validation cross-entropy"),
    MetricInfo("flops", "MFLOPs", "MFLOPs", _same, "{:.3f}",
               "multiply-accumulates of every conv and linear layer, analytic and exact"),
    MetricInfo("params", "Mparams", "M", _same, "{:.4f}", "parameters of the extracted module"),
    MetricInfo("latency", "latency_ms", "ms", _same, "{:.3f}",
               "from a lookup table measured on this machine or given in latency.table"),
    # zero-cost proxies are maximised, so their metrics carry the negated score
    MetricInfo("synflow", "synflow", "", _negate, "{:.4g}", "synflow at initialisation, negated"),
    MetricInfo("nwot", "nwot", "", _negate, "{:.4g}", "NASWOT score at initialisation, negated"),
)}


def user_column(name: str) -> str:
    """The column a metric is shown under (its own name when it is not built in)."""
    return CATALOGUE[name].column if name in CATALOGUE else name


def user_value(name: str, value: float) -> float:
    """A stored (minimised) value in the user's units: accuracy for error, the score for
    negated proxies."""
    return float(CATALOGUE[name].to_user(value)) if name in CATALOGUE else float(value)


def is_cheap(fn: Any) -> bool:
    """Whether a metric callable declares itself cheap (analytic or a lookup)."""
    return bool(getattr(fn, "cheap", False))


def metric_values(metrics: Mapping[str, Any], configs: Configs,
                  genomes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One float array per name of ``metrics`` on ``configs``: one call per distinct callable
    (even if it feeds several names), ``batch_genomes(genomes)`` instead when both exist.
    A metric returning None, text, a missing name or the wrong count is a :class:`ConfigError`
    naming it: that is a broken metric, not a failed architecture."""
    out: dict[str, np.ndarray] = {}
    calls: dict[int, Any] = {}
    for name, fn in metrics.items():
        if id(fn) not in calls:
            by_genome = getattr(fn, "batch_genomes", None) if genomes is not None else None
            calls[id(fn)] = by_genome(genomes) if by_genome is not None else fn(configs)
        res = calls[id(fn)]
        if isinstance(res, Mapping):
            if name not in res:
                raise ConfigError(f"metric {name!r}: its callable returned values for "
                                  f"{sorted(res)} but not for {name!r}")
            val = res[name]
        else:
            val = res
        if val is None or np.asarray(val).dtype.kind in "OUS":  # None or text: broken metric
            bad = [v for v in np.asarray(val, dtype=object).reshape(-1)
                   if v is None or isinstance(v, (str, bytes))]
            if val is None or bad:
                first = None if val is None else bad[0]
                raise ConfigError(
                    f"metric {name!r} returned {first!r} ({type(first).__name__}): a metric "
                    f"returns numbers, one per config (NaN marks a failed evaluation)")
        arr = np.asarray(val, dtype=float).reshape(-1)
        if arr.shape[0] != len(configs):
            raise ConfigError(
                f"metric {name!r} returned {arr.shape[0]} values for {len(configs)} configs")
        out[name] = arr
    return out
