"""The weight-sharing MobileNetV3-style supernet and the extraction of static subnets.

Every shape comes from :meth:`MobileNetSpec.layout`: ``set_active`` hands each block its
:class:`BlockLayout`, and :func:`extract` builds a plain torch module from the same layout, so the
supernet, the extracted subnet and the analytic cost model (:mod:`evo_nas.costs`) agree by
construction.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from evo_nas.nn.layers import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticDepthwiseConv2d,
    ElasticLinear,
    ElasticSqueezeExcite,
    make_act,
)
from evo_nas.nn.parts import mobilenet_part_modules, mobilenet_skeletons, part_keys
from evo_nas.nn.protocol import SupernetBase, register_supernet
from evo_nas.spaces.mobilenet import BlockLayout, MobileNetSpec, get_spec, make_divisible

__all__ = ["Supernet", "SubNet", "MBConv", "extract"]


class MBConv(nn.Module):
    """Static inverted-residual block (what :func:`extract` produces); TorchScript-friendly."""

    def __init__(self, expand: nn.Module, depthwise: nn.Module, se: nn.Module, project: nn.Module,
                 residual: bool) -> None:
        super().__init__()
        self.expand, self.depthwise, self.se, self.project = expand, depthwise, se, project
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        if self.residual:
            return x + y
        return y


class SubNet(nn.Module):
    """A static sub-network: plain ``nn.Conv2d``/``nn.BatchNorm2d``/``nn.Linear`` layers only.

    ``config`` holds the canonical architecture config it was extracted for, ``layout`` its
    :class:`~evo_nas.spaces.mobilenet.NetLayout`.
    """

    def __init__(self, stem: nn.Module, blocks: nn.Sequential, head: nn.Module,
                 feature_mix: nn.Module, dropout: float, classifier: nn.Linear) -> None:
        super().__init__()
        self.stem, self.blocks, self.head = stem, blocks, head
        self.feature_mix = feature_mix
        self.dropout = nn.Dropout(dropout)
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(self.blocks(self.stem(x)))
        x = self.feature_mix(x.mean((2, 3), keepdim=True))
        return self.classifier(self.dropout(torch.flatten(x, 1)))


class ElasticMBConv(nn.Module):
    """Inverted-residual block over the largest weights of its position; runs ``self.active``."""

    def __init__(self, max_in: int, max_mid: int, max_out: int, max_kernel: int, stride: int,
                 act: str, max_se: int, has_expand: bool) -> None:
        super().__init__()
        self.max_in, self.max_mid, self.max_out, self.max_se = max_in, max_mid, max_out, max_se
        self.max_kernel, self.act_name = max_kernel, act
        self.expand = ElasticConv2d(max_in, max_mid) if has_expand else None
        self.expand_bn = ElasticBatchNorm2d(max_mid) if has_expand else None
        self.dw = ElasticDepthwiseConv2d(max_mid, max_kernel, stride)
        self.dw_bn = ElasticBatchNorm2d(max_mid)
        self.se = ElasticSqueezeExcite(max_mid, max_se) if max_se > 0 else None
        self.project = ElasticConv2d(max_mid, max_out)
        self.project_bn = ElasticBatchNorm2d(max_out)
        self.act = make_act(act)
        self.active: BlockLayout | None = None

    def set_active(self, bl: BlockLayout) -> None:
        fits = (bl.in_ch <= self.max_in and bl.mid_ch <= self.max_mid and bl.out_ch <= self.max_out
                and bl.kernel <= self.max_kernel and bl.se_ch <= self.max_se
                and (bl.expand == 1 or self.expand is not None) and bl.stride == self.dw.stride)
        if not fits:  # a bug in the spec/supernet pairing, not a user error
            raise RuntimeError(f"block {bl.name} layout {bl} does not fit its supernet slot")
        self.active = bl
        if self.expand is not None:
            self.expand.active_out = bl.mid_ch
        self.dw.active_kernel = bl.kernel
        if self.se is not None:
            self.se.active_hidden = bl.se_ch
        self.project.active_out = bl.out_ch

    def forward(self, x: Tensor) -> Tensor:
        bl = self.active
        assert bl is not None, "call Supernet.set_active first"
        y = x
        if bl.expand != 1:
            y = self.act(self.expand_bn(self.expand(y)))
        y = self.act(self.dw_bn(self.dw(y)))
        if bl.se_ch > 0:
            y = self.se(y)
        y = self.project_bn(self.project(y))
        return x + y if bl.residual else y

    def to_static(self, bl: BlockLayout) -> MBConv:
        expand: nn.Module = nn.Identity()
        if bl.expand != 1:
            expand = nn.Sequential(self.expand.to_static(bl.in_ch, bl.mid_ch, 1),
                                   self.expand_bn.to_static(bl.mid_ch), make_act(bl.act))
        dw = nn.Sequential(self.dw.to_static(bl.mid_ch, bl.kernel),
                           self.dw_bn.to_static(bl.mid_ch), make_act(bl.act))
        se = self.se.to_static(bl.mid_ch, bl.se_ch) if bl.se_ch > 0 else nn.Identity()
        project = nn.Sequential(self.project.to_static(bl.mid_ch, bl.out_ch, 1),
                                self.project_bn.to_static(bl.out_ch))
        return MBConv(expand, dw, se, project, bl.residual)


class Supernet(SupernetBase):
    """OFA-style supernet of a :class:`MobileNetSpec`: elastic depth, width, kernel, expand.

    ``set_active(config)`` picks the sub-network; ``forward(x)`` expects ``x`` already at
    ``config['res']`` (:func:`evo_nas.nn.prepare_input`); ``extract(config)`` returns a static
    copy. One implementation of :class:`evo_nas.nn.WeightSharingSupernet`.
    """

    def __init__(self, spec: MobileNetSpec | str | dict[str, Any]) -> None:
        super().__init__()
        spec = MobileNetSpec.from_dict(spec) if isinstance(spec, dict) else get_spec(spec)
        self.spec = spec
        self.space = spec.space()
        self.in_channels, self.num_classes = spec.in_channels, spec.num_classes
        maxc = spec.max_channels()
        kmax = max(spec.kernels)
        has_expand = any(e != 1 for e in spec.expands)
        self.stem = nn.Sequential(
            nn.Conv2d(spec.in_channels, spec.stem_channels, 3, spec.stem_stride, 1, bias=False),
            nn.BatchNorm2d(spec.stem_channels), make_act(spec.stem_act))
        self.first: ElasticMBConv | None = None
        slots: dict[str, ElasticMBConv] = {}
        if spec.first_block:
            c = spec.stem_channels
            self.first = slots["first"] = ElasticMBConv(c, c, c, 3, 1, spec.stem_act, 0, False)
        self.stages = nn.ModuleList()
        for i, st in enumerate(spec.stages):
            stage = nn.ModuleList()
            for j in range(max(st.depths)):
                n = f"s{i}.b{j}"
                mid = maxc[f"{n}.mid"]
                # SE hidden width of every mid this slot can take (make_divisible is monotone,
                # but take the max anyway so the allocation cannot be too small).
                se = max(make_divisible(m // spec.se_reduction, 8) for m in range(1, mid + 1))
                blk = ElasticMBConv(maxc[f"{n}.in"], mid, maxc[f"{n}.out"], kmax,
                                    st.stride if j == 0 else 1, st.act, se if st.se else 0,
                                    has_expand)
                stage.append(blk)
                slots[n] = blk
            self.stages.append(stage)
        self._slots = slots
        head_in = max(spec.stages[-1].widths) if spec.stages else spec.stem_channels
        self.head = ElasticConv2d(head_in, spec.head_channels)
        self.head_bn = ElasticBatchNorm2d(spec.head_channels)
        self.head_act = make_act(spec.head_act)
        self.feature_mix: nn.Module | None = None
        if spec.feature_channels > 0:
            self.feature_mix = nn.Sequential(
                nn.Conv2d(spec.head_channels, spec.feature_channels, 1, bias=False),
                make_act(spec.head_act))
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = ElasticLinear(spec.feature_channels or spec.head_channels,
                                        spec.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
        self._active: list[ElasticMBConv] = []
        self.set_largest()

    # ----------------------------------------------------------------- protocol
    def _activate(self, cfg: dict[str, Any]) -> None:
        layout = self.spec.layout(cfg)
        for bl in layout.blocks:
            self._slots[bl.name].set_active(bl)
        self._active = [self._slots[bl.name] for bl in layout.blocks]
        self.active_layout = layout

    def input_shape(self, config: Mapping[str, Any]) -> tuple[int, int, int]:
        return (self.in_channels, int(config["res"]), int(config["res"]))

    def settings(self) -> dict[str, Any]:
        return {"kind": "mobilenet", "spec": self.spec.to_dict()}

    def extract(self, config: Mapping[str, Any] | None = None) -> SubNet:
        """Static copy of ``config`` (default: the active one); see :func:`extract`."""
        return extract(self, self._config if config is None else config)

    # ----------------------------------------------------------------- latency parts
    def latency_keys(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Stem, each MBConv block, tail (:func:`evo_nas.nn.parts.part_keys`), from the layout
        alone: no module is built, so a table predicts quickly."""
        return part_keys(self.spec, self.spec.layout(self.canonical_config(config)))

    def latency_parts(self, config: Mapping[str, Any]
                      ) -> list[tuple[str, nn.Module, tuple[int, int, int]]]:
        """The extracted sub-network cut into stem, blocks and tail, with their inputs."""
        sub = self.extract(self.canonical_config(config))
        return [(key, mod, shape) for (_, key), (mod, shape) in
                zip(part_keys(self.spec, sub.layout), mobilenet_part_modules(sub), strict=True)]

    def latency_configs(self) -> list[dict[str, Any]]:
        """Full-depth networks of every resolution, width and (kernel, expand): see
        :func:`evo_nas.nn.parts.mobilenet_skeletons` for why they contain every block."""
        return mobilenet_skeletons(self.spec)

    # ----------------------------------------------------------------- forward
    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for blk in self._active:
            x = blk(x)
        x = self.head_act(self.head_bn(self.head(x)))
        x = x.mean((2, 3), keepdim=True)
        if self.feature_mix is not None:
            x = self.feature_mix(x)
        return self.classifier(self.dropout(torch.flatten(x, 1)))


def extract(net: Supernet, config: Mapping[str, Any]) -> SubNet:
    """A plain torch module with copies of ``config``'s weight slices and BN running stats.

    Its outputs equal the supernet's for that config (eval mode); it starts in the supernet's
    train/eval mode and shares no tensors with it. The supernet's active config is not changed.
    """
    space, spec = net.space, net.spec
    cfg = space.decode(space.encode(config))
    lay = spec.layout(cfg)
    blocks = nn.Sequential(*[net._slots[bl.name].to_static(bl) for bl in lay.blocks])
    head = nn.Sequential(net.head.to_static(lay.head_in, lay.head_ch, 1),
                         net.head_bn.to_static(lay.head_ch), make_act(spec.head_act))
    mix = copy.deepcopy(net.feature_mix) if net.feature_mix is not None else nn.Identity()
    classifier = net.classifier.to_static(lay.feature_ch or lay.head_ch)
    sub = SubNet(copy.deepcopy(net.stem), blocks, head, mix, spec.dropout, classifier)
    sub.config = cfg
    sub.layout = lay
    sub.train(net.training)
    return sub


register_supernet("mobilenet", Supernet)
