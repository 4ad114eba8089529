"""The elastic MobileNetV3-style space: stages of inverted-residual (MBConv) blocks.

Genes (names as they appear in configs):

* ``res``: input resolution (square);
* ``s{i}.w``: output channels of stage ``i`` (only when the preset offers more than one width);
* ``s{i}.d``: number of blocks of stage ``i`` (elastic depth: trailing blocks are skipped);
* ``s{i}.b{j}.k`` / ``s{i}.b{j}.e``: kernel size and expand ratio of block ``j`` of stage ``i``,
  conditional on ``s{i}.d > j``.

:func:`MobileNetSpec.layout` turns a config into the exact list of layers of the sub-network, with
channels and spatial sizes. The supernet, the extracted subnet and the analytic cost model all read
that one layout, so the three cannot disagree. This module does not import torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from evo_nas.errors import ConfigError, GenomeError
from evo_nas.space import Choice, SearchSpace

__all__ = [
    "StageSpec",
    "MobileNetSpec",
    "BlockLayout",
    "NetLayout",
    "PRESETS",
    "mobilenet_space",
    "get_spec",
]


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Spatial output size of a 'same'-padded convolution (padding = kernel // 2)."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` losing more than 10 % (as MobileNet)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


@dataclass(frozen=True)
class StageSpec:
    """One stage: width options (output channels, ascending), depth options, stride, activation."""

    widths: tuple[int, ...]
    depths: tuple[int, ...]
    stride: int
    act: str = "relu"
    se: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(self.widths))
        object.__setattr__(self, "depths", tuple(self.depths))


@dataclass(frozen=True)
class BlockLayout:
    """One MBConv block of a concrete sub-network."""

    name: str  # "first" or "s{i}.b{j}"
    in_ch: int
    out_ch: int
    mid_ch: int  # expanded channels (== in_ch when expand == 1: no expansion conv)
    kernel: int
    stride: int
    in_size: int
    out_size: int
    act: str
    se_ch: int  # squeeze-excite hidden channels, 0 when the stage has no SE
    residual: bool
    expand: float


@dataclass(frozen=True)
class NetLayout:
    """Everything that fixes the shape and cost of one sub-network."""

    resolution: int
    in_channels: int
    stem_ch: int
    stem_stride: int
    stem_out_size: int
    blocks: tuple[BlockLayout, ...]
    head_in: int
    head_ch: int
    head_size: int
    feature_ch: int  # 0 when there is no feature-mix layer
    num_classes: int


@dataclass(frozen=True)
class MobileNetSpec:
    """A preset of the elastic MobileNetV3 space. Options are ascending (index 0 = smallest)."""

    name: str
    in_channels: int
    num_classes: int
    resolutions: tuple[int, ...]
    stem_channels: int
    stem_stride: int
    stages: tuple[StageSpec, ...]
    kernels: tuple[int, ...]
    expands: tuple[float, ...]
    head_channels: int
    feature_channels: int = 0
    first_block: bool = False  # OFA's fixed expand-1 block after the stem
    stem_act: str = "relu"
    head_act: str = "relu"
    dropout: float = 0.0
    se_reduction: int = 4
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for attr in ("resolutions", "stages", "kernels", "expands"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        for k in self.kernels:
            if k % 2 != 1:
                raise ConfigError(f"kernel size {k} must be odd for centre slicing")
        for i, st in enumerate(self.stages):
            if st.act not in ("relu", "hswish"):
                raise ConfigError(f"stages[{i}].act = {st.act!r}: expected 'relu' or 'hswish'")

    # ----------------------------------------------------------------- space
    def space(self) -> SearchSpace:
        choices = [Choice("res", self.resolutions)]
        for i, st in enumerate(self.stages):
            if len(st.widths) > 1:
                choices.append(Choice(f"s{i}.w", st.widths))
            choices.append(Choice(f"s{i}.d", st.depths))
            for j in range(max(st.depths)):
                cond = None
                if j >= min(st.depths):
                    cond = (f"s{i}.d", tuple(d for d in st.depths if d > j))
                choices.append(Choice(f"s{i}.b{j}.k", self.kernels, cond))
                choices.append(Choice(f"s{i}.b{j}.e", self.expands, cond))
        return SearchSpace(choices, name=f"mobilenet-{self.name}", meta={"spec": self})

    def max_config(self) -> dict[str, Any]:
        return self.space().decode(self.space().largest())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MobileNetSpec:
        d = dict(d)
        d["stages"] = tuple(StageSpec(**s) for s in d["stages"])
        return cls(**d)

    # ----------------------------------------------------------------- layout
    def layout(self, config: dict[str, Any]) -> NetLayout:
        """The concrete layer list of ``config`` (config values, not genome indices)."""
        res = config["res"]
        size = conv_out(res, 3, self.stem_stride)
        ch = self.stem_channels
        blocks: list[BlockLayout] = []
        if self.first_block:
            blocks.append(BlockLayout("first", ch, ch, ch, 3, 1, size, size,
                                      self.stem_act, 0, True, 1.0))
        for i, st in enumerate(self.stages):
            width = config.get(f"s{i}.w", st.widths[-1]) if len(st.widths) > 1 else st.widths[0]
            for j in range(config[f"s{i}.d"]):
                k = config[f"s{i}.b{j}.k"]
                e = config[f"s{i}.b{j}.e"]
                stride = st.stride if j == 0 else 1
                mid = ch if e == 1 else make_divisible(round(ch * e), 8)
                se_ch = make_divisible(mid // self.se_reduction, 8) if st.se else 0
                out_size = conv_out(size, k, stride)
                blocks.append(BlockLayout(f"s{i}.b{j}", ch, width, mid, k, stride, size, out_size,
                                          st.act, se_ch, j > 0 and stride == 1, float(e)))
                ch, size = width, out_size
        return NetLayout(res, self.in_channels, self.stem_channels, self.stem_stride,
                         conv_out(res, 3, self.stem_stride), tuple(blocks), ch,
                         self.head_channels, size, self.feature_channels, self.num_classes)

    def max_channels(self) -> dict[str, int]:
        """Largest in/mid/out channels of every block position: the supernet's weight shapes."""
        out: dict[str, int] = {}
        ch = self.stem_channels
        for i, st in enumerate(self.stages):
            width = max(st.widths)
            for j in range(max(st.depths)):
                mid = max(ch if e == 1 else make_divisible(round(ch * e), 8) for e in self.expands)
                out[f"s{i}.b{j}.in"] = ch
                out[f"s{i}.b{j}.mid"] = mid
                out[f"s{i}.b{j}.out"] = width
                ch = width
        return out


PRESETS: dict[str, MobileNetSpec] = {
    # Bundled 8x8 digits, upsampled to 12-16 px; small enough to train in seconds on 2 cores.
    "tiny": MobileNetSpec(
        name="tiny", in_channels=1, num_classes=10, resolutions=(12, 16),
        stem_channels=8, stem_stride=1,
        stages=(
            StageSpec(widths=(12, 16), depths=(1, 2), stride=1),
            StageSpec(widths=(16, 24), depths=(1, 2, 3), stride=2),
            StageSpec(widths=(24, 32), depths=(1, 2, 3), stride=2, act="hswish"),
        ),
        kernels=(3, 5), expands=(2, 3, 4), head_channels=64, head_act="hswish",
    ),
    # CIFAR-sized inputs (32x32 RGB), stride-1 stem as is usual at this resolution.
    "cifar": MobileNetSpec(
        name="cifar", in_channels=3, num_classes=10, resolutions=(24, 28, 32),
        stem_channels=16, stem_stride=1, first_block=True,
        stages=(
            StageSpec(widths=(16, 24), depths=(2, 3, 4), stride=1),
            StageSpec(widths=(32, 40), depths=(2, 3, 4), stride=2, se=True),
            StageSpec(widths=(64, 80), depths=(2, 3, 4), stride=2, act="hswish"),
            StageSpec(widths=(96, 112), depths=(2, 3, 4), stride=1, act="hswish", se=True),
        ),
        kernels=(3, 5, 7), expands=(3, 4, 6), head_channels=640, head_act="hswish",
        stem_act="hswish",
    ),
    # Once-for-All's MobileNetV3 (width 1.0) values; instantiable, not trainable on CPU here.
    "imagenet": MobileNetSpec(
        name="imagenet", in_channels=3, num_classes=1000,
        resolutions=tuple(range(128, 225, 4)), stem_channels=16, stem_stride=2, first_block=True,
        stages=(
            StageSpec(widths=(24,), depths=(2, 3, 4), stride=2),
            StageSpec(widths=(40,), depths=(2, 3, 4), stride=2, se=True),
            StageSpec(widths=(80,), depths=(2, 3, 4), stride=2, act="hswish"),
            StageSpec(widths=(112,), depths=(2, 3, 4), stride=1, act="hswish", se=True),
            StageSpec(widths=(160,), depths=(2, 3, 4), stride=2, act="hswish", se=True),
        ),
        kernels=(3, 5, 7), expands=(3, 4, 6), head_channels=960, feature_channels=1280,
        stem_act="hswish", head_act="hswish", dropout=0.1,
    ),
}


def get_spec(preset: str | MobileNetSpec) -> MobileNetSpec:
    if isinstance(preset, MobileNetSpec):
        return preset
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: choose one of {sorted(PRESETS)}")
    return PRESETS[preset]


def mobilenet_space(preset: str | MobileNetSpec = "tiny") -> SearchSpace:
    """The search space of a preset; ``space.meta['spec']`` holds the :class:`MobileNetSpec`."""
    return get_spec(preset).space()


def spec_of(space: SearchSpace) -> MobileNetSpec:
    spec = space.meta.get("spec")
    if not isinstance(spec, MobileNetSpec):
        raise GenomeError(f"search space {space.name!r} is not a MobileNet space (no spec)")
    return spec
