"""Analytic FLOPs and parameter counts of MobileNet sub-networks, read off their layout.

Convention ("FLOPs" as in the NAS literature, OFA/MobileNetV3 tables = multiply-accumulates):
every ``Conv2d`` counts ``out_h * out_w * out_ch * (in_ch / groups) * k * k`` MACs and every
``Linear`` ``in * out``, for one image. Included: stem, expansion/depthwise/projection convs,
both 1x1 convs of squeeze-excite (on the pooled 1x1 map), the head conv, the feature-mix conv and
the classifier. Not counted: BatchNorm, activations, pooling, the SE gate product, residual adds
and biases. Parameters are exact: the ``numel`` sum of the extracted subnet (conv weights, BN
weight and bias, SE biases, classifier bias; BN running stats are buffers, not parameters).

The analytic functions are torch-free; :func:`count_with_hooks` imports torch lazily and counts
independently from real output shapes, which the tests use to check the analytic numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from evo_nas.errors import GenomeError
from evo_nas.space import SearchSpace
from evo_nas.spaces.mobilenet import MobileNetSpec, NetLayout, conv_out, make_divisible, spec_of

__all__ = ["layout_costs", "flops", "params", "CostModel", "GenomeCosts", "MobileNetCosts",
           "cost_function", "count_with_hooks"]


def layout_costs(lay: NetLayout) -> tuple[int, int]:
    """``(MACs, params)`` of one sub-network layout (see the module docstring for what counts)."""
    s = lay.stem_out_size
    macs = s * s * lay.stem_ch * lay.in_channels * 9
    n = lay.stem_ch * lay.in_channels * 9 + 2 * lay.stem_ch
    for b in lay.blocks:
        mid, o2 = b.mid_ch, b.out_size * b.out_size
        if b.expand != 1:
            macs += b.in_size * b.in_size * b.in_ch * mid
            n += b.in_ch * mid + 2 * mid
        kk = b.kernel * b.kernel
        macs += o2 * mid * kk + o2 * mid * b.out_ch
        n += mid * kk + 2 * mid + mid * b.out_ch + 2 * b.out_ch
        if b.se_ch:
            macs += 2 * mid * b.se_ch
            n += 2 * mid * b.se_ch + b.se_ch + mid
    macs += lay.head_size * lay.head_size * lay.head_in * lay.head_ch
    n += lay.head_in * lay.head_ch + 2 * lay.head_ch
    feat = lay.head_ch
    if lay.feature_ch:
        macs += lay.head_ch * lay.feature_ch
        n += lay.head_ch * lay.feature_ch
        feat = lay.feature_ch
    macs += feat * lay.num_classes
    n += feat * lay.num_classes + lay.num_classes
    return macs, n


@lru_cache(maxsize=32)
def _space(spec: MobileNetSpec) -> SearchSpace:
    return spec.space()


def _layout(spec: MobileNetSpec, config: Mapping[str, Any]) -> NetLayout:
    space = _space(spec)
    return spec.layout(space.decode(space.encode(config)))


def flops(spec: MobileNetSpec, config: Mapping[str, Any]) -> int:
    """Multiply-accumulates of one image through ``config``'s subnet (validated config)."""
    return layout_costs(_layout(spec, config))[0]


def params(spec: MobileNetSpec, config: Mapping[str, Any]) -> int:
    """Exact parameter count of ``config``'s extracted subnet (validated config)."""
    return layout_costs(_layout(spec, config))[1]


class MobileNetCosts:
    """``config -> (MACs, params)`` of a MobileNet spec (picklable; configs are trusted)."""

    def __init__(self, spec: MobileNetSpec) -> None:
        self.spec = spec

    def __call__(self, config: Mapping[str, Any]) -> tuple[int, int]:
        try:
            return layout_costs(self.spec.layout(dict(config)))
        except KeyError as e:
            raise GenomeError(f"architecture config lacks gene {e.args[0]!r}") from None


def cost_function(space: SearchSpace) -> Callable[[Mapping[str, Any]], tuple[int, int]]:
    """The exact ``config -> (MACs, params)`` function of a space's extracted sub-networks.

    A space carries it in ``meta['costs']`` (a picklable callable, so worker processes get it);
    MobileNet spaces derive it from their spec.
    """
    fn = space.meta.get("costs")
    if fn is not None:
        return fn
    return MobileNetCosts(spec_of(space))


class CostModel:
    """Vectorised analytic costs for pymoo problems: MFLOPs (MACs / 1e6) and params / 1e6.

    Configs are trusted (they come from ``space.decode``), so no validation is repeated; results
    are memoised per config, as a search proposes the same architectures again and again.
    ``cheap`` lets :meth:`problems.NASProblem.check_budgets` test budgets before a search.
    """

    cheap = True

    def __init__(self, space: SearchSpace, cache_size: int = 100_000) -> None:
        self.space = space
        self.cost_fn = cost_function(space)
        self.cache_size = cache_size
        self._cache: dict[tuple[Any, ...], tuple[float, float]] = {}
        # the vectorised path of a MobileNet space (others carry their own per-config function)
        self._genome: GenomeCosts | None = (
            GenomeCosts(space) if space.meta.get("costs") is None and "spec" in space.meta
            else None)

    def batch_genomes(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Costs of a whole batch of canonical genomes in one numpy pass (:class:`GenomeCosts`):
        what :class:`problems.NASProblem` calls for its new architectures, ~100x cheaper per
        architecture than one config at a time. Spaces without a tabulated path decode."""
        if self._genome is None:
            return self([self.space.decode(row) for row in np.atleast_2d(X)])
        macs, n = self._genome(X)
        return {"flops": macs / 1e6, "params": n / 1e6}

    def costs(self, config: Mapping[str, Any]) -> tuple[float, float]:
        """``(MFLOPs, Mparams)`` of one config."""
        key = tuple(config.items())
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        macs, n = self.cost_fn(config)
        out = (macs / 1e6, n / 1e6)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[key] = out
        return out

    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        rows = [self.costs(c) for c in configs]
        arr = np.array(rows, dtype=float).reshape(len(rows), 2)
        return {"flops": arr[:, 0].copy(), "params": arr[:, 1].copy()}


class GenomeCosts:
    """Analytic MACs and params of a whole population of genomes at once (numpy, no Python loop
    over architectures).

    A block's cost depends only on its position, the input resolution, its input and output
    widths, kernel and expand ratio (spatial sizes follow from the resolution alone, since the
    convolutions are 'same'-padded). Those costs are tabulated once from the same per-layer
    formulas as :func:`layout_costs`; a population is then a few gathers and sums. The tests check
    equality with :func:`layout_costs` genome by genome.
    """

    cheap = True

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        spec = self.spec = spec_of(space)
        idx = {n: i for i, n in enumerate(space.names)}
        self._res = idx["res"]
        resolutions = spec.resolutions
        n_res = len(resolutions)
        stem = np.zeros((n_res, 2), dtype=np.int64)
        sizes: list[list[int]] = []  # per resolution: spatial size entering each stage
        for r, res in enumerate(resolutions):
            size = conv_out(res, 3, spec.stem_stride)
            ci = spec.in_channels
            stem[r] = (size * size * spec.stem_channels * ci * 9,
                       spec.stem_channels * ci * 9 + 2 * spec.stem_channels)
            if spec.first_block:
                ch = spec.stem_channels
                stem[r] += _block(ch, ch, ch, 3, size, size, 0, 1.0)
            per_stage = []
            for st in spec.stages:
                per_stage.append(size)
                size = conv_out(size, 3, st.stride)
            per_stage.append(size)
            sizes.append(per_stage)
        self._stem = stem
        # per stage: gene columns and a table (res, in width, out width, kernel, expand, 2)
        self._stages = []
        prev_widths: tuple[int, ...] = (spec.stem_channels,)
        prev_col: int | None = None
        for i, st in enumerate(spec.stages):
            wcol = idx.get(f"s{i}.w")
            blocks = []
            for j in range(max(st.depths)):
                ins = prev_widths if j == 0 else st.widths
                table = np.zeros((n_res, len(ins), len(st.widths), len(spec.kernels),
                                  len(spec.expands), 2), dtype=np.int64)
                for r in range(n_res):
                    in_size = sizes[r][i] if j == 0 else sizes[r][i + 1]
                    out_size = sizes[r][i + 1]
                    for a, cin in enumerate(ins):
                        for b, cout in enumerate(st.widths):
                            for c, k in enumerate(spec.kernels):
                                for d, e in enumerate(spec.expands):
                                    mid = cin if e == 1 else make_divisible(round(cin * e), 8)
                                    se = (make_divisible(mid // spec.se_reduction, 8)
                                          if st.se else 0)
                                    table[r, a, b, c, d] = _block(cin, cout, mid, k, in_size,
                                                                  out_size, se, e)
                in_col = (prev_col if j == 0 else wcol)
                blocks.append((idx[f"s{i}.b{j}.k"], idx[f"s{i}.b{j}.e"], in_col, table))
            self._stages.append((wcol, idx[f"s{i}.d"], np.array(st.depths), blocks))
            prev_widths, prev_col = st.widths, wcol
        head = np.zeros((n_res, len(prev_widths), 2), dtype=np.int64)
        for r in range(n_res):
            hs = sizes[r][-1]
            for a, cin in enumerate(prev_widths):
                head[r, a] = (hs * hs * cin * spec.head_channels,
                              cin * spec.head_channels + 2 * spec.head_channels)
        feat = spec.head_channels
        tail = np.zeros(2, dtype=np.int64)
        if spec.feature_channels:
            tail += spec.head_channels * spec.feature_channels
            feat = spec.feature_channels
        tail += (feat * spec.num_classes, feat * spec.num_classes + spec.num_classes)
        self._head, self._head_col, self._tail = head + tail, prev_col, tail

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(MACs, params)`` int arrays for canonical genomes ``X`` of shape (n, n_var)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        n = len(X)
        zeros = np.zeros(n, dtype=np.int64)
        res = X[:, self._res]
        total = self._stem[res].copy()
        for wcol, dcol, depths, blocks in self._stages:
            w = X[:, wcol] if wcol is not None else zeros
            depth = depths[X[:, dcol]]
            for j, (kcol, ecol, in_col, table) in enumerate(blocks):
                cin = X[:, in_col] if in_col is not None else zeros
                cost = table[res, cin, w, X[:, kcol], X[:, ecol]]
                total += cost * (depth > j)[:, None]
        last = X[:, self._head_col] if self._head_col is not None else zeros
        total += self._head[res, last]
        return total[:, 0], total[:, 1]


def _block(cin: int, cout: int, mid: int, k: int, in_size: int, out_size: int, se_ch: int,
           expand: float) -> tuple[int, int]:
    """(MACs, params) of one MBConv block: the per-layer formulas of :func:`layout_costs`."""
    macs = n = 0
    o2 = out_size * out_size
    if expand != 1:
        macs += in_size * in_size * cin * mid
        n += cin * mid + 2 * mid
    macs += o2 * mid * k * k + o2 * mid * cout
    n += mid * k * k + 2 * mid + mid * cout + 2 * cout
    if se_ch:
        macs += 2 * mid * se_ch
        n += 2 * mid * se_ch + se_ch + mid
    return macs, n


def count_with_hooks(module: Any, input_shape: Sequence[int]) -> tuple[int, int]:
    """``(MACs, params)`` measured by forward hooks on every ``nn.Conv2d`` and ``nn.Linear``.

    ``input_shape`` is ``(C, H, W)`` or ``(N, C, H, W)``; MACs are per image. Runs one eval-mode
    forward of zeros and restores the module's modes. Params are the ``numel`` sum of all
    parameters, counted once each.
    """
    import torch
    from torch import nn

    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    total = [0]

    def conv_hook(m: nn.Conv2d, inp: Any, out: torch.Tensor) -> None:
        per_out = (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        total[0] += out[0].numel() * per_out

    def linear_hook(m: nn.Linear, inp: Any, out: torch.Tensor) -> None:
        total[0] += out[0].numel() * m.in_features

    hooks = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    modes = [(m, m.training) for m in module.modules()]
    p = next(module.parameters(), None)
    x = torch.zeros(shape, device=p.device if p is not None else None,
                    dtype=p.dtype if p is not None else None)
    try:
        module.eval()
        with torch.no_grad():
            module(x)
    finally:
        for h in hooks:
            h.remove()
        for m, training in modes:
            m.training = training
    return total[0], sum(p.numel() for p in module.parameters())
