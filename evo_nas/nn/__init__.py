"""Weight-sharing networks: the supernet protocol and its implementations (elastic MobileNetV3,
choice blocks, NAS-Bench-201 cells), static extraction, BN re-calibration.

Importing the package imports every built-in supernet module, which registers its kind for
:func:`build_supernet` (``mobilenet``, ``nb201``, ``fewshot``); :mod:`evo_nas.nn.protocol` itself
imports none of them, so no module of the package imports one that imports it back.
"""

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
from evo_nas.nn.nb201 import NB201Supernet
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
    "NB201Supernet",
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
