"""Elastic layers: each holds the largest weights of its position and runs on a slice of them.

Channels are sliced from the start (``w[:out, :in]``) and kernels from the centre
(``w[..., p:p+k, p:p+k]``), so every sub-network shares the leading part of the same tensors.
Input channels are read from the input; output channels and kernel are set by the owner block
(``active_out``, ``active_kernel``). ``to_static`` returns a plain torch layer holding a copy of the
slice, which is how :func:`evo_nas.nn.extract` builds a subnet with no elastic code in it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ElasticConv2d",
    "ElasticDepthwiseConv2d",
    "ElasticBatchNorm2d",
    "ElasticSqueezeExcite",
    "ElasticLinear",
    "SqueezeExcite",
    "make_act",
    "resize",
]


def make_act(name: str) -> nn.Module:
    """The activation module of a spec's activation name."""
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "hswish":
        return nn.Hardswish()
    raise ValueError(f"activation {name!r}: expected 'relu' or 'hswish'")


def resize(x: Tensor, res: int) -> Tensor:
    """Bilinear resize of an image batch to ``res x res`` (no-op when already that size).

    Elastic resolution is a gene: data is kept at one size and each config sees it at its own.
    """
    if x.shape[-2] == res and x.shape[-1] == res:
        return x
    return F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False,
                         antialias=False)


def _centre(weight: Tensor, k: int) -> Tensor:
    p = (weight.shape[-1] - k) // 2
    return weight[..., p:p + k, p:p + k]


class ElasticConv2d(nn.Module):
    """Dense conv with elastic in/out channels and a centre-sliced kernel; 'same' padding."""

    def __init__(self, max_in: int, max_out: int, kernel: int = 1, stride: int = 1,
                 bias: bool = False) -> None:
        super().__init__()
        self.max_in, self.max_out, self.max_kernel, self.stride = max_in, max_out, kernel, stride
        self.weight = nn.Parameter(torch.empty(max_out, max_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(max_out)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.active_out = max_out
        self.active_kernel = kernel

    def sliced(self, in_ch: int, out_ch: int, k: int) -> tuple[Tensor, Tensor | None]:
        w = _centre(self.weight[:out_ch, :in_ch], k)
        return w, (self.bias[:out_ch] if self.bias is not None else None)

    def forward(self, x: Tensor) -> Tensor:
        k = self.active_kernel
        w, b = self.sliced(x.shape[1], self.active_out, k)
        return F.conv2d(x, w, b, self.stride, k // 2)

    def to_static(self, in_ch: int, out_ch: int, k: int | None = None) -> nn.Conv2d:
        k = self.max_kernel if k is None else k
        w, b = self.sliced(in_ch, out_ch, k)
        conv = nn.Conv2d(in_ch, out_ch, k, self.stride, k // 2, bias=b is not None,
                         device=w.device, dtype=w.dtype)
        with torch.no_grad():
            conv.weight.copy_(w)
            if b is not None:
                conv.bias.copy_(b)
        return conv

    def extra_repr(self) -> str:
        return f"{self.max_in}, {self.max_out}, kernel={self.max_kernel}, stride={self.stride}"


class ElasticDepthwiseConv2d(nn.Module):
    """Depthwise conv: channels follow the input, kernel is centre-sliced from the largest."""

    def __init__(self, max_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.max_ch, self.max_kernel, self.stride = max_ch, kernel, stride
        self.weight = nn.Parameter(torch.empty(max_ch, 1, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.active_kernel = kernel

    def forward(self, x: Tensor) -> Tensor:
        c, k = x.shape[1], self.active_kernel
        return F.conv2d(x, _centre(self.weight[:c], k), None, self.stride, k // 2, 1, c)

    def to_static(self, ch: int, k: int) -> nn.Conv2d:
        w = _centre(self.weight[:ch], k)
        conv = nn.Conv2d(ch, ch, k, self.stride, k // 2, groups=ch, bias=False,
                         device=w.device, dtype=w.dtype)
        with torch.no_grad():
            conv.weight.copy_(w)
        return conv

    def extra_repr(self) -> str:
        return f"{self.max_ch}, kernel={self.max_kernel}, stride={self.stride}"


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first ``C`` channels of the input, with the statistics of those channels.

    The running mean/var slices are views of the full buffers, so train-mode forwards update the
    active channels' statistics in place; ``momentum=None`` gives torch's cumulative average
    (factor ``1 / num_batches_tracked``), which BN re-calibration relies on.
    """

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        factor = 0.0
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
            else:
                factor = self.momentum
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        rm = self.running_mean[:c] if track and self.running_mean is not None else None
        rv = self.running_var[:c] if track and self.running_var is not None else None
        w = self.weight[:c] if self.weight is not None else None
        b = self.bias[:c] if self.bias is not None else None
        return F.batch_norm(x, rm, rv, w, b, use_batch, factor, self.eps)

    def to_static(self, ch: int) -> nn.BatchNorm2d:
        ref = self.weight if self.weight is not None else self.running_mean
        bn = nn.BatchNorm2d(ch, self.eps, self.momentum, self.affine, self.track_running_stats,
                            device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            if self.affine:
                bn.weight.copy_(self.weight[:ch])
                bn.bias.copy_(self.bias[:ch])
            if self.track_running_stats:
                bn.running_mean.copy_(self.running_mean[:ch])
                bn.running_var.copy_(self.running_var[:ch])
                bn.num_batches_tracked.copy_(self.num_batches_tracked)
        return bn


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-excite: mean pool, 1x1 reduce + ReLU, 1x1 expand + hard-sigmoid gate."""

    def __init__(self, ch: int, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(ch, hidden, 1, bias=True)
        self.expand = nn.Conv2d(hidden, ch, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        s = F.relu(self.reduce(x.mean((2, 3), keepdim=True)))
        return x * F.hardsigmoid(self.expand(s))


class ElasticSqueezeExcite(nn.Module):
    """Squeeze-excite on the input's channels with ``active_hidden`` hidden channels."""

    def __init__(self, max_ch: int, max_hidden: int) -> None:
        super().__init__()
        self.reduce = ElasticConv2d(max_ch, max_hidden, 1, bias=True)
        self.expand = ElasticConv2d(max_hidden, max_ch, 1, bias=True)
        self.active_hidden = max_hidden

    def forward(self, x: Tensor) -> Tensor:
        c, h = x.shape[1], self.active_hidden
        w1, b1 = self.reduce.sliced(c, h, 1)
        w2, b2 = self.expand.sliced(h, c, 1)
        s = F.relu(F.conv2d(x.mean((2, 3), keepdim=True), w1, b1))
        return x * F.hardsigmoid(F.conv2d(s, w2, b2))

    def to_static(self, ch: int, hidden: int) -> SqueezeExcite:
        se = SqueezeExcite(ch, hidden)
        se.reduce = self.reduce.to_static(ch, hidden, 1)
        se.expand = self.expand.to_static(hidden, ch, 1)
        return se


class ElasticLinear(nn.Module):
    """Linear layer whose input features are the first ``x.shape[-1]`` of the largest."""

    def __init__(self, max_in: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.max_in, self.out_features = max_in, out_features
        self.weight = nn.Parameter(torch.empty(out_features, max_in))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.normal_(self.weight, 0.0, 1.0 / math.sqrt(max_in))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight[:, :x.shape[-1]], self.bias)

    def to_static(self, in_features: int) -> nn.Linear:
        w = self.weight[:, :in_features]
        lin = nn.Linear(in_features, self.out_features, bias=self.bias is not None,
                        device=w.device, dtype=w.dtype)
        with torch.no_grad():
            lin.weight.copy_(w)
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin

    def extra_repr(self) -> str:
        return f"{self.max_in}, {self.out_features}, bias={self.bias is not None}"
