"""How a sub-network is cut into parts for per-part latency tables, and the small static
modules that stand for a piece of a network when it is timed part by part.

A per-part latency table (:mod:`evo_nas.latency.lut`) times parts as a chain, each on the
previous part's output. :class:`NodeSum`, :class:`PoolClassifier` and :class:`MobileNetTail`
are the pieces that are not already a module of the extracted network; all are
TorchScript-friendly, as exported part sets are scripted. :func:`part_keys`,
:func:`mobilenet_part_modules` and :func:`mobilenet_skeletons` cut an elastic MobileNet into
parts; they live here, with the supernets, so that :mod:`evo_nas.latency` depends on
:mod:`evo_nas.nn` and never the other way round.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor, nn

from evo_nas.spaces.mobilenet import MobileNetSpec, NetLayout

__all__ = ["MobileNetTail", "NodeSum", "PoolClassifier", "mobilenet_part_modules",
           "mobilenet_skeletons", "part_keys"]


class NodeSum(nn.Module):
    """The addition of one more input into a cell node: ``x + x`` costs what ``a + b`` costs for
    tensors of that shape, and keeps the chain's shape."""

    def forward(self, x: Tensor) -> Tensor:
        return x + x


class PoolClassifier(nn.Module):
    """``classifier(act(x).mean((2, 3)))``: the tail of a cell network after its last layer."""

    def __init__(self, act: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.act, self.classifier = act, classifier

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.act(x).mean((2, 3)))


# --------------------------------------------------------------------------- elastic MobileNet
def part_keys(spec: MobileNetSpec, lay: NetLayout) -> list[tuple[str, str]]:
    """``(part name, key)`` of every part of a layout, in execution order."""
    out = [("stem", f"stem:r{lay.resolution}:c{lay.in_channels}-{lay.stem_ch}"
                    f":s{lay.stem_stride}:{spec.stem_act}")]
    for b in lay.blocks:
        key = (f"mbconv:r{b.in_size}:c{b.in_ch}-{b.mid_ch}-{b.out_ch}:k{b.kernel}:s{b.stride}"
               f":se{b.se_ch}:{b.act}:{'res' if b.residual else 'plain'}")
        out.append((b.name, key + (":noexpand" if b.expand == 1 else "")))
    out.append(("head", f"head:r{lay.head_size}:c{lay.head_in}-{lay.head_ch}-{lay.feature_ch}"
                        f":n{lay.num_classes}:{spec.head_act}"))
    return out


def mobilenet_skeletons(spec: MobileNetSpec) -> list[dict[str, Any]]:
    """Configs that together contain every distinct part of the space.

    A block's shape depends on the resolution, the widths of its own and the previous stage, its
    own kernel/expand and whether it opens its stage, never on other blocks' kernel/expand. So
    every (resolution, widths) at full depth with all blocks set to one (kernel, expand) covers
    all parts; :func:`evo_nas.latency.build_table` checks the claim on random configs anyway.
    """
    widths = [st.widths if len(st.widths) > 1 else (None,) for st in spec.stages]
    out = []
    for res, ws, k, e in itertools.product(spec.resolutions, itertools.product(*widths),
                                           spec.kernels, spec.expands):
        cfg: dict[str, Any] = {"res": res}
        for i, (st, w) in enumerate(zip(spec.stages, ws, strict=True)):
            if w is not None:
                cfg[f"s{i}.w"] = w
            cfg[f"s{i}.d"] = max(st.depths)
            for j in range(max(st.depths)):
                cfg[f"s{i}.b{j}.k"], cfg[f"s{i}.b{j}.e"] = k, e
        out.append(cfg)
    return out


class MobileNetTail(nn.Module):
    """The part of :class:`~evo_nas.nn.SubNet` after the blocks: head, pooling, classifier."""

    def __init__(self, head: nn.Module, feature_mix: nn.Module, dropout: nn.Module,
                 classifier: nn.Module) -> None:
        super().__init__()
        self.head, self.feature_mix, self.dropout = head, feature_mix, dropout
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        x = self.feature_mix(self.head(x).mean((2, 3), keepdim=True))
        return self.classifier(self.dropout(torch.flatten(x, 1)))


def mobilenet_part_modules(sub: Any) -> list[tuple[nn.Module, tuple[int, int, int]]]:
    """The modules of each part of an extracted subnet, with their input shape ``(C, H, W)``."""
    lay = sub.layout
    out: list[tuple[nn.Module, tuple[int, int, int]]] = [
        (sub.stem, (lay.in_channels, lay.resolution, lay.resolution))]
    for blk, b in zip(sub.blocks, lay.blocks, strict=True):
        out.append((blk, (b.in_ch, b.in_size, b.in_size)))
    tail = MobileNetTail(sub.head, sub.feature_mix, sub.dropout, sub.classifier)
    out.append((tail, (lay.head_in, lay.head_size, lay.head_size)))
    return [(m.eval(), s) for m, s in out]
