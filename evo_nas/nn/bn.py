"""BatchNorm re-calibration: fresh running statistics for one sub-network.

A supernet's running stats are a blur over every subnet trained; each subnet needs its own
before evaluation. They are re-estimated as the *cumulative* average over a few batches
(``momentum=None``), not with the default exponential momentum 0.1, which leaves most of the
weight on the reset values after a handful of batches and collapses accuracy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from itertools import chain

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from evo_nas.errors import DataError

__all__ = ["frozen_bn", "recalibrate_bn"]


def recalibrate_bn(model: nn.Module, batches: Iterable[Tensor | tuple[Tensor, ...]],
                   max_batches: int | None = None) -> int:
    """Reset every BN's running stats and re-estimate them from ``batches``; return batches used.

    Works on a :class:`~evo_nas.nn.Supernet` (its active subnet: the stats of the full buffers are
    reset, so other subnets must be recalibrated again) and on an extracted static module.
    ``batches`` yields image tensors already at the model's resolution, or ``(images, ...)`` tuples
    as a DataLoader does. Each BN's momentum and every module's train/eval mode are restored.
    """
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    it = iter(batches)
    first = next(it, None)
    if first is None:
        raise DataError("recalibrate_bn got no batches: running stats would be left reset")
    param = next(model.parameters(), None)
    modes = [(m, m.training) for m in model.modules()]
    momenta = [bn.momentum for bn in bns]
    n = 0
    try:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        with torch.no_grad():
            for x in chain([first], it):
                if max_batches is not None and n >= max_batches:
                    break
                if isinstance(x, (tuple, list)):
                    x = x[0]
                if param is not None:
                    x = x.to(device=param.device, dtype=param.dtype)
                model(x)
                n += 1
    finally:
        for bn, mom in zip(bns, momenta, strict=True):
            bn.momentum = mom
        for m, training in modes:
            m.training = training
    return n


@contextlib.contextmanager
def frozen_bn(net: nn.Module) -> Iterator[None]:
    """Train-mode BN (batch statistics) whose running statistics stay untouched (momentum 0)."""
    bns = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None
              else None) for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (mom, nbt) in zip(bns, saved, strict=True):
            m.momentum = mom
            if nbt is not None:
                m.num_batches_tracked.copy_(nbt)
