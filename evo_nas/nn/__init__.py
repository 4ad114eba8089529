"""Weight-sharing networks: the supernet protocol and its implementations (elastic MobileNetV3,
choice blocks, NAS-Bench-201 cells), static extraction, BN re-calibration."""

from evo_nas.nn.bn import recalibrate_bn
from evo_nas.nn.choice import ChoiceSupernet
from evo_nas.nn.fewshot import FewShotSupernet
from evo_nas.nn.layers import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticDepthwiseConv2d,
    ElasticLinear,
    ElasticSqueezeExcite,
    SqueezeExcite,
    resize,
)
from evo_nas.nn.protocol import (
    SupernetBase,
    WeightSharingSupernet,
    build_supernet,
    prepare_input,
    register_supernet,
    supernet_from_preset,
)
from evo_nas.nn.supernet import MBConv, SubNet, Supernet, extract

__all__ = [
    "ChoiceSupernet",
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticDepthwiseConv2d",
    "ElasticLinear",
    "ElasticSqueezeExcite",
    "FewShotSupernet",
    "MBConv",
    "SqueezeExcite",
    "SubNet",
    "Supernet",
    "SupernetBase",
    "WeightSharingSupernet",
    "build_supernet",
    "prepare_input",
    "register_supernet",
    "supernet_from_preset",
    "extract",
    "recalibrate_bn",
    "resize",
]
