"""Zero-cost proxies: training-free architecture scores computed at initialisation, as metrics.

A zero-cost proxy ranks architectures from one forward (and backward) pass of a freshly
initialised network, with no training at all: milliseconds instead of a supernet evaluation.
Two are implemented, from their papers' definitions (higher = better for both):

* :func:`synflow`: SynFlow (Tanaka et al., NeurIPS 2020), as used as a NAS proxy by Abdelfattah
  et al. (ICLR 2021, "Zero-Cost Proxies for Lightweight NAS"). On a float64 copy of the network
  whose parameters are replaced by their absolute values, ``R = sum(f(1))`` for an all-ones input
  of batch 1, and the score is ``sum over parameters of |theta * dR/dtheta|``.
  *BatchNorm*: every ``_BatchNorm`` layer is replaced by the identity, as in the proxy paper's
  ``synflow`` variant (its code builds the network without BN). With batch statistics a batch of
  one constant image normalises to zero, and with running statistics the score would depend on
  whatever statistics the network holds; the identity is the well-defined choice, and at
  initialisation (running mean 0, var 1, gamma 1, beta 0) it equals eval-mode BN up to its eps.
  Every other parameter counts, biases included (the papers score conv/linear weights only; in
  the built-in supernets that adds the classifier's ``sum |bias|``, a near-constant).
* :func:`nwot`: "Neural Architecture Search without Training" (Mellor et al., ICML 2021; the v2
  ``log |K_H|`` score). For a mini-batch of images, each ReLU's binary code ``c = (input > 0)``
  per image is recorded by a forward hook on the ReLU's *input* (equivalently its output, since
  ``relu(x) > 0`` iff ``x > 0``); ``K_H = sum over ReLUs of c c^T + (1 - c)(1 - c)^T`` counts,
  for every pair of images, the units on which they agree, and the score is ``log |det K_H|``.
  The network runs in train mode (BN uses batch statistics), as a freshly built network does in
  the paper. ``nn.ReLU`` and ``nn.ReLU6`` modules are hooked; functional ReLUs and other
  activations (hard-swish) are not seen.

:class:`ZeroCostProxy` wraps either as a :class:`~problems.NASProblem` metric. Because
NASProblem minimises, it returns the *negated* score under the proxy's name (``"synflow"`` or
``"nwot"``): a user-facing value of -1e30 is a SynFlow of 1e30. :func:`proxy_scores` gives the
positive scores, for benchmarks and rank correlations.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from evo_nas.data import Dataset
from evo_nas.errors import ConfigError
from evo_nas.nn.protocol import WeightSharingSupernet, prepare_input
from evo_nas.parallel import SpecPickled

__all__ = ["PROXIES", "ZeroCostProxy", "nwot", "nwot_kernel", "proxy_scores", "reinitialise",
           "synflow"]

PROXIES = ("synflow", "nwot")
_RELUS = (nn.ReLU, nn.ReLU6)
_EXACT_F32 = 1 << 24  # integers up to this are exact in float32


# ---------------------------------------------------------------------- SynFlow
def _without_bn(model: nn.Module) -> nn.Module:
    """``model`` with every BatchNorm layer swapped for ``nn.Identity`` (in place)."""
    if isinstance(model, _BatchNorm):
        return nn.Identity()
    for name, module in list(model.named_modules()):
        if name and isinstance(module, _BatchNorm):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, nn.Identity())
    return model


def _synflow_inplace(model: nn.Module, input_shape: Sequence[int]) -> float:
    """SynFlow of ``model``, which it converts (float64, |theta|, no BN) and so consumes."""
    model = _without_bn(model).double().eval()
    params = list(model.parameters())
    with torch.no_grad():
        for p in params:
            p.abs_()
    for p in params:
        p.requires_grad_(True)
        p.grad = None
    device = params[0].device if params else torch.device("cpu")
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    with torch.enable_grad():
        out = model(ones)
        out.sum().backward()
    total = torch.zeros((), dtype=torch.float64, device=device)
    for p in params:
        if p.grad is not None:
            total = total + (p.detach() * p.grad).abs().sum()
    score = float(total)
    # every term is >= 0, so a non-finite sum can only be float64 overflow (inf, or inf * 0)
    return score if math.isfinite(score) else math.inf


def synflow(model: nn.Module, input_shape: Sequence[int]) -> float:
    """SynFlow score of ``model`` for inputs of shape ``input_shape`` (no batch axis), higher is
    better; see the module docstring for the definition and the BatchNorm handling.

    ``model`` is not modified (a copy is scored). The score is computed in float64 so that the
    product of absolute weights along every path does not overflow; if it still does, the
    result is ``math.inf``."""
    return _synflow_inplace(copy.deepcopy(model), input_shape)


# ---------------------------------------------------------------------- NWOT
def _nwot_kernel_inplace(model: nn.Module, images: Tensor) -> Tensor:
    """The Hamming kernel of ``model`` on ``images``; runs ``model`` in train mode, so its BN
    running statistics change (callers pass a throwaway copy)."""
    n = images.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def hook(_module: nn.Module, inputs: tuple[Tensor, ...], _output: Tensor) -> None:
        codes = inputs[0].detach().reshape(n, -1) > 0
        units = codes.shape[1]
        # with s = 2c - 1 in {-1, +1}: agreements = (units + s s^T) / 2, one product for both
        # terms c c^T + (1-c)(1-c)^T; exact in float32 while units < 2^24
        dtype = torch.float32 if units < _EXACT_F32 else torch.float64
        s = codes.to(dtype) * 2 - 1
        kernel.add_(((s @ s.T).double().cpu() + units) / 2)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _RELUS)]
    if not handles:
        raise ConfigError(f"nwot: {type(model).__name__} has no nn.ReLU / nn.ReLU6 module to "
                          "read activation codes from")
    try:
        model.train()
        with torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()
    return kernel


def nwot_kernel(model: nn.Module, images: Tensor) -> Tensor:
    """``K_H`` (float64, ``len(images)`` square): for each pair of images, the number of ReLU
    units on which their binary codes agree; ``model`` is not modified (a copy runs)."""
    return _nwot_kernel_inplace(copy.deepcopy(model), images)


def _logdet(kernel: Tensor) -> float:
    sign, logabsdet = torch.linalg.slogdet(kernel)
    # a singular kernel (two images coded alike, or a network whose output ignores its input)
    # has determinant 0: log 0 = -inf, the worst score
    return float(logabsdet) if float(sign) != 0 else -math.inf


def nwot(model: nn.Module, images: Tensor) -> float:
    """NWOT score ``log |det K_H|`` of ``model`` on a batch of ``images``, higher is better;
    ``-inf`` when the kernel is singular. ``model`` is not modified (a copy runs)."""
    return _logdet(nwot_kernel(model, images))


# ---------------------------------------------------------------------- as a metric
def reinitialise(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialise every parameter (and BN statistic) of ``model`` in place, from ``seed``.

    Proxies are defined at initialisation: an extracted sub-network carries the supernet's
    trained weights, which would make its score depend on training. ``reset_parameters()`` of
    each module runs under a forked RNG seeded with ``seed``, so the global RNG is untouched
    and the same seed gives the same weights. A module that owns parameters but cannot reset
    them raises ConfigError rather than being scored with trained weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, module in model.named_modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
            elif any(True for _ in module.parameters(recurse=False)):
                raise ConfigError(f"module {name or '<root>'!r} ({type(module).__name__}) holds "
                                  "parameters but no reset_parameters(), so a zero-cost proxy "
                                  "cannot re-initialise it")
    return model


class ZeroCostProxy(SpecPickled):
    """A zero-cost proxy as a NASProblem metric: ``proxy(configs) -> {name: -scores}``.

    Each config is scored on ``net.extract(config)``, re-initialised from ``seed``
    (:func:`reinitialise`), so the supernet's training does not matter. NWOT reads
    ``batch_size`` fixed training images, drawn once from ``seed`` and resized per config by
    :func:`~evo_nas.nn.protocol.prepare_input`; SynFlow only needs the input shape. Scores are
    negated because NASProblem minimises (see the module docstring); :meth:`scores` gives them
    positive. One forward (and for SynFlow a backward) per architecture is not free, so the
    metric is not ``cheap``: budgets are not pre-checked with it. With a ``worker_spec`` it
    pickles as that spec (see :class:`evo_nas.parallel.SpecPickled`)."""

    cheap = False

    def __init__(self, net: WeightSharingSupernet, data: Dataset, proxy: str = "synflow",
                 batch_size: int = 64, seed: int = 0, device: str = "cpu") -> None:
        if proxy not in PROXIES:
            raise ConfigError(f"proxy = {proxy!r}: choose one of {list(PROXIES)}")
        if batch_size < 2:
            raise ConfigError(f"batch_size = {batch_size}: NWOT needs at least 2 images")
        self.net, self.proxy, self.seed, self.device = net, proxy, seed, device
        self.batch_size = batch_size
        n = min(batch_size, len(data.train))
        pick = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))
        self.images = data.train.x[pick[:n]]

    def score(self, config: Mapping[str, Any]) -> float:
        """The positive proxy score of one config (higher is better)."""
        model = reinitialise(self.net.extract(dict(config)), self.seed).to(self.device)
        if self.proxy == "synflow":
            return _synflow_inplace(model, tuple(self.net.input_shape(dict(config))))
        x = prepare_input(self.net, self.images, dict(config)).to(self.device)
        with torch.random.fork_rng(devices=[]):  # dropout, if any, draws from the seed too
            torch.manual_seed(self.seed)
            return _logdet(_nwot_kernel_inplace(model, x))

    def scores(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Positive scores of ``configs`` (higher is better)."""
        return np.array([self.score(c) for c in configs], dtype=float)

    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        return {self.proxy: -self.scores(configs)}


def proxy_scores(net: WeightSharingSupernet, configs: Sequence[Mapping[str, Any]],
                 data: Dataset, proxy: str = "synflow", batch_size: int = 64, seed: int = 0,
                 device: str = "cpu") -> np.ndarray:
    """Positive (higher = better) ``proxy`` scores of ``configs``, for benchmarks and rank
    correlations; the same values :class:`ZeroCostProxy` returns negated."""
    return ZeroCostProxy(net, data, proxy, batch_size, seed, device).scores(configs)
