"""Counting cheap-metric lookups apart from real evaluations.

A search's cost is its real evaluations (``NASProblem.n_real``), but operators also compute
*cheap* metrics (analytic FLOPs, a latency table) on genomes they never evaluate: a budget repair
costs every candidate move, a surrogate scores thousands of genomes with the exact cheap values.
Those lookups are free next to a real evaluation, yet a fair comparison should see them, so
:func:`counting_cheap_lookups` wraps the problem's cheap metrics for the length of a search and
counts the configs they compute outside :meth:`NASProblem.measure`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from evo_nas.metrics import is_cheap

__all__ = ["LookupCounter", "counting_cheap_lookups"]


class LookupCounter:
    """``n``: configs computed by cheap metrics outside real evaluations so far."""

    def __init__(self, n: int = 0) -> None:
        self.n = int(n)
        self.inside = 0  # > 0 while a real evaluation (measure) runs


class _CountedMetric:
    """A cheap metric that counts what it computes outside real evaluations. Attributes
    (``cheap``, a table, ...) pass through, so code that inspects the metric sees the original;
    it is picklable, in case evaluations are shipped to worker processes."""

    def __init__(self, fn: Any, counter: LookupCounter) -> None:
        self.fn = fn
        self.counter = counter

    def __call__(self, configs: list[dict[str, Any]]) -> Any:
        if not self.counter.inside:
            self.counter.n += len(configs)
        return self.fn(configs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("fn", "counter"):
            raise AttributeError(name)
        return getattr(self.fn, name)


class _Measuring:
    """``problem.measure`` with the counter paused: cheap metrics inside a real evaluation are
    part of that evaluation, not lookups."""

    def __init__(self, measure: Any, counter: LookupCounter) -> None:
        self.measure = measure
        self.counter = counter

    def __call__(self, X: Any) -> Any:
        self.counter.inside += 1
        try:
            return self.measure(X)
        finally:
            self.counter.inside -= 1


@contextlib.contextmanager
def counting_cheap_lookups(problem: Any, start: int = 0) -> Iterator[LookupCounter]:
    """Count cheap-metric lookups on ``problem`` while the block runs (from ``start``, e.g. the
    count saved by a run being resumed). Operators built inside the block from
    ``problem.metrics`` are counted; nested use shares the outer counter."""
    current = problem.__dict__.get("measure")
    if isinstance(current, _Measuring):
        yield current.counter
        return
    counter = LookupCounter(start)
    metrics = problem.metrics
    originals = dict(metrics)
    wrapped: dict[int, _CountedMetric] = {}  # one wrapper per callable: shared calls stay shared
    for name, fn in originals.items():
        if is_cheap(fn):
            metrics[name] = wrapped.setdefault(id(fn), _CountedMetric(fn, counter))
    problem.measure = _Measuring(problem.measure, counter)
    try:
        yield counter
    finally:
        del problem.measure
        metrics.update(originals)
