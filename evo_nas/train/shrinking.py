"""Progressive shrinking (Once-for-All): train the largest network first, then unlock elastic
dimensions one phase at a time, each phase with its own epochs and learning rate.

A phase's space is the full space with every *locked* gene pinned to its largest option
(:func:`restrict`), so any sampler works unchanged inside a phase: the sandwich's "smallest" is the
smallest over the unlocked dimensions, the fair sampler permutes only unlocked genes, and so on.
Dimensions are read off gene names: ``res`` (resolution), ``s{i}.w`` (width), ``s{i}.d`` (depth),
``*.k`` (kernel), ``*.e`` (expand ratio).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from evo_nas.errors import ConfigError
from evo_nas.space import Choice, SearchSpace

__all__ = [
    "DIMENSIONS",
    "OFA_ORDER",
    "Phase",
    "dimensions_of",
    "gene_dimension",
    "ofa_phases",
    "phase_spaces",
    "restrict",
    "validate_phases",
]

DIMENSIONS = ("kernel", "depth", "expand", "width", "res")
# Once-for-All's order (kernel, depth, expand), then the dimensions OFA keeps fixed.
OFA_ORDER = ("kernel", "depth", "expand", "width", "res")


@dataclass
class Phase:
    """One shrinking phase: the dimensions it newly unlocks, its epochs and its peak LR.

    Unlocks accumulate: phase ``i`` trains the dimensions unlocked by phases ``0..i``; a first
    phase with ``unlock: []`` trains the largest network alone (OFA's warm-up of the teacher).
    """

    unlock: list[str] = field(default_factory=list)
    epochs: int = 1
    lr: float = 0.1


def gene_dimension(name: str) -> str | None:
    """The elastic dimension a gene belongs to, or ``None`` for genes outside the five."""
    if name == "res":
        return "res"
    last = name.rsplit(".", 1)[-1]
    return {"w": "width", "d": "depth", "k": "kernel", "e": "expand"}.get(last)


def dimensions_of(space: SearchSpace) -> list[str]:
    """Elastic dimensions of ``space`` (those with a gene of more than one option), OFA order."""
    present = {gene_dimension(c.name) for c in space.choices if len(c.options) > 1}
    return [d for d in DIMENSIONS if d in present]


def restrict(space: SearchSpace, unlocked: Iterable[str]) -> SearchSpace:
    """``space`` with every gene of a locked dimension pinned to its largest option.

    Genes outside the five dimensions stay free. Conditions follow the pinned parents (a block
    conditional on depth stays active exactly when the pinned depth reaches it). The result keeps
    ``space.meta`` (the MobileNet spec), so configs it decodes run on the same supernet.
    """
    keep = set(unlocked)
    pinned: dict[str, tuple] = {}
    for c in space.choices:
        dim = gene_dimension(c.name)
        pinned[c.name] = c.options if dim is None or dim in keep else (c.options[-1],)
    choices = []
    for c in space.choices:
        cond = c.active_if
        if cond is not None:
            parent, values = cond
            cond = (parent, tuple(v for v in values if v in pinned[parent]))
        choices.append(Choice(c.name, pinned[c.name], cond))
    tag = ",".join(d for d in DIMENSIONS if d in keep) or "none"
    return SearchSpace(choices, name=f"{space.name}[{tag}]", meta=dict(space.meta))


def validate_phases(phases: Sequence[Phase], space: SearchSpace | None = None,
                    where: str = "train.phases") -> None:
    """Raise ConfigError naming the phase and dimension that is unknown, or absent from
    ``space`` (a schedule that unlocks width on a single-width space), or a bad epochs/lr."""
    present = dimensions_of(space) if space is not None else list(DIMENSIONS)
    for i, ph in enumerate(phases):
        if ph.epochs < 1:
            raise ConfigError(f"{where}[{i}].epochs = {ph.epochs}: must be at least 1")
        if not ph.lr > 0:
            raise ConfigError(f"{where}[{i}].lr = {ph.lr}: must be positive")
        for dim in ph.unlock:
            if dim not in DIMENSIONS:
                raise ConfigError(f"{where}[{i}].unlock = {dim!r}: unknown dimension, choose "
                                  f"from {list(DIMENSIONS)}")
            if dim not in present:
                name = space.name if space is not None else "?"
                raise ConfigError(f"{where}[{i}].unlock = {dim!r}: space {name!r} has no "
                                  f"elastic {dim} (its elastic dimensions: {present})")


def phase_spaces(space: SearchSpace, phases: Sequence[Phase]) -> list[SearchSpace]:
    """The restricted space each phase trains (unlocks accumulate)."""
    validate_phases(phases, space)
    out, unlocked = [], set()
    for ph in phases:
        unlocked |= set(ph.unlock)
        out.append(restrict(space, unlocked))
    return out


def ofa_phases(space: SearchSpace, epochs: int | Sequence[int] = 1,
               lr: float | Sequence[float] = (0.1, 0.03)) -> list[Phase]:
    """OFA's schedule over the dimensions ``space`` has: largest first, then kernel, depth,
    expand, width, res, one phase each. ``epochs``/``lr`` are one value for all phases or one
    per phase; a two-value ``lr`` means (warm-up phase, every later phase), as in OFA."""
    dims = [d for d in OFA_ORDER if d in dimensions_of(space)]
    unlocks: list[list[str]] = [[], *([d] for d in dims)]
    n = len(unlocks)
    ep = [epochs] * n if isinstance(epochs, int) else list(epochs)
    if isinstance(lr, (int, float)):
        lrs = [float(lr)] * n
    elif len(lr) == 2 and n != 2:
        lrs = [float(lr[0])] + [float(lr[1])] * (n - 1)
    else:
        lrs = [float(v) for v in lr]
    if len(ep) != n or len(lrs) != n:
        raise ConfigError(f"ofa_phases: space {space.name!r} has {n} phases {unlocks} but got "
                          f"{len(ep)} epochs and {len(lrs)} learning rates")
    return [Phase(u, e, r) for u, e, r in zip(unlocks, ep, lrs, strict=True)]
