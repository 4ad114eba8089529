"""Built-in search spaces."""

from evo_nas.spaces.mobilenet import (
    PRESETS,
    BlockLayout,
    MobileNetSpec,
    NetLayout,
    StageSpec,
    get_spec,
    mobilenet_space,
    spec_of,
)

__all__ = [
    "PRESETS",
    "BlockLayout",
    "MobileNetSpec",
    "NetLayout",
    "StageSpec",
    "get_spec",
    "mobilenet_space",
    "spec_of",
]
