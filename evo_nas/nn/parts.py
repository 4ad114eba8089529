"""Small static modules that stand for a piece of a network when it is timed part by part.

A per-part latency table (:mod:`evo_nas.latency.lut`) times parts as a chain, each on the
previous part's output; these are the pieces that are not already a module of the extracted
network. All are TorchScript-friendly, as exported part sets are scripted.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["NodeSum", "PoolClassifier"]


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
