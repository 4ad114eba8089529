"""Weight-sharing networks: elastic layers, the supernet, static extraction, BN re-calibration."""

from evo_nas.nn.bn import recalibrate_bn
from evo_nas.nn.layers import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticDepthwiseConv2d,
    ElasticLinear,
    ElasticSqueezeExcite,
    SqueezeExcite,
    resize,
)
from evo_nas.nn.supernet import MBConv, SubNet, Supernet, extract

__all__ = [
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticDepthwiseConv2d",
    "ElasticLinear",
    "ElasticSqueezeExcite",
    "MBConv",
    "SqueezeExcite",
    "SubNet",
    "Supernet",
    "extract",
    "recalibrate_bn",
    "resize",
]
