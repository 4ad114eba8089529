"""Helpers shared by several test files."""

import torch
from torch import nn


def scramble_bn(net: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN affine params and running stats, so a wrong copy changes outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in net.modules():
            if isinstance(bn, nn.BatchNorm2d):
                n = bn.num_features
                if bn.affine:
                    bn.weight.copy_(0.5 + torch.rand(n, generator=g))
                    bn.bias.copy_(0.2 * torch.randn(n, generator=g))
                if bn.track_running_stats:
                    bn.running_mean.copy_(0.3 * torch.randn(n, generator=g))
                    bn.running_var.copy_(0.5 + torch.rand(n, generator=g))
