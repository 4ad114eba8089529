"""Few-shot supernets (Zhao et al. 2021): split a one-shot supernet on one gene into one
sub-supernet per option, each starting from the one-shot weights.

Weight sharing couples every sub-network; splitting on one gene's options removes the coupling
across that gene (e.g. NB201's operation on one edge: 5 sub-supernets). Each config is routed to
the sub-supernet of its option, so the trainer, samplers, BN re-calibration, ``extract`` and
checkpoints work unchanged through the protocol; with the same number of steps each
sub-supernet sees only its share of them, so the usual recipe is: train one-shot, split, then
fine-tune the split supernet.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from evo_nas.errors import ConfigError
from evo_nas.nn.protocol import SupernetBase, build_supernet, register_supernet

__all__ = ["FewShotSupernet"]


class FewShotSupernet(SupernetBase):
    """One copy of ``base`` per option of gene ``gene``; a config runs on its option's copy."""

    def __init__(self, base: nn.Module, gene: str) -> None:
        super().__init__()
        if gene not in base.space.names:
            raise ConfigError(f"few-shot split gene {gene!r} is not a gene of {base.space.name!r}"
                              f" ({base.space.names})")
        self.space, self.gene = base.space, gene
        self.in_channels, self.num_classes = base.in_channels, base.num_classes
        self.options = tuple(base.space[gene].options)
        self.splits = nn.ModuleList(copy.deepcopy(base) for _ in self.options)
        self._base_settings = base.settings()
        self._current: nn.Module = self.splits[0]
        self.set_active(self.space.decode(self.space.largest()))

    def _route(self, cfg: Mapping[str, Any]) -> nn.Module:
        return self.splits[self.options.index(cfg[self.gene])]

    def _activate(self, cfg: dict[str, Any]) -> None:
        self._current = self._route(cfg)
        self._current.set_active(cfg)

    def input_shape(self, config: Mapping[str, Any]) -> tuple[int, int, int]:
        return self.splits[0].input_shape(config)

    def forward(self, x: Tensor) -> Tensor:
        return self._current(x)

    def extract(self, config: Mapping[str, Any] | None = None) -> nn.Module:
        cfg = self.canonical_config(config)
        return self._route(cfg).extract(cfg)

    def settings(self) -> dict[str, Any]:
        return {"kind": "fewshot", "base": self._base_settings, "gene": self.gene}


def _build(base: Mapping[str, Any], gene: str) -> FewShotSupernet:
    return FewShotSupernet(build_supernet(base), gene)


register_supernet("fewshot", _build)
