"""The NAS-Bench-201 weight-sharing supernet and the extraction of static cell networks.

Every edge of every cell holds all candidate ops (``none`` is a zero, not a module); one cell
genotype is active in all cells at once, as NB201 repeats one cell. Only the active op of each
live edge runs, so a step costs what the sub-network costs; a cell whose output node is zero
returns zeros. Configs are canonicalised on the way in (:func:`evo_nas.spaces.nb201.
nb201_canonical`), so twins share one sub-network and their representative has no dead edges.
The skeleton (:mod:`evo_nas.spaces.nb201`) is the one :class:`~evo_nas.spaces.nb201.NB201Costs`
counts; ``affine`` / ``track_running_stats`` apply to the cell ops' BNs, as in NB201's supernets.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from evo_nas.nn.protocol import SupernetBase, register_supernet
from evo_nas.spaces.nb201 import NB201_CODES, NB201_EDGES, NB201_GENES, nb201_cell_space

__all__ = ["NB201Supernet", "NB201Net", "NB201Cell", "ResNetBasicBlock", "cell_plan"]

Plan = tuple[tuple[tuple[int, int], ...], ...]
"""Per node 1..3: the live edges feeding it, as (edge index, source node)."""


def cell_plan(codes: Sequence[int]) -> Plan:
    """The edges that matter for node 3: not ``none``, fed by a non-zero node, and leading to a
    node that reaches node 3 (for canonical cells that is every non-``none`` edge)."""
    fed = [True, False, False, False]
    for e, (a, b) in enumerate(NB201_EDGES):  # topological order
        fed[b] |= fed[a] and codes[e] != 0
    used = [False, False, False, True]
    for e, (a, b) in reversed(list(enumerate(NB201_EDGES))):
        used[a] |= used[b] and fed[a] and codes[e] != 0
    live = [e for e, (a, b) in enumerate(NB201_EDGES) if codes[e] != 0 and fed[a] and used[b]]
    return tuple(tuple((e, NB201_EDGES[e][0]) for e in live if NB201_EDGES[e][1] == j)
                 for j in (1, 2, 3))


def _relu_conv_bn(c: int, k: int, affine: bool, track: bool) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c, c, k, 1, k // 2, bias=False),
                         nn.BatchNorm2d(c, affine=affine, track_running_stats=track))


def _op(code: int, c: int, affine: bool, track: bool) -> nn.Module:
    name = NB201_CODES[code]
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _relu_conv_bn(c, 1, affine, track)
    if name == "nor_conv_3x3":
        return _relu_conv_bn(c, 3, affine, track)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"no module for op {name!r}")


def _run_cell(x: Tensor, plan: Plan, edge_op: Any) -> Tensor:
    nodes: list[Tensor | None] = [x]
    for incoming in plan:
        out: Tensor | None = None
        for e, src in incoming:
            h = nodes[src]
            assert h is not None  # the plan only keeps edges fed by non-zero nodes
            y = edge_op(e)(h)
            out = y if out is None else out + y
        nodes.append(out)
    return nodes[3] if nodes[3] is not None else torch.zeros_like(x)


class ResNetBasicBlock(nn.Module):
    """NB201's reduction block: ReLU-Conv3x3/2-BN, ReLU-Conv3x3-BN, plus AvgPool2d(2)+Conv1x1."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(nn.ReLU(inplace=False),
                                    nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout))
        self.conv_b = nn.Sequential(nn.ReLU(inplace=False),
                                    nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                    nn.BatchNorm2d(cout))
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2),
                                        nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class NB201Cell(nn.Module):
    """A static cell: only its live edges' ops, run in ``plan`` order (TorchScript-friendly:
    flat op list with source and target node indices, no closures)."""

    def __init__(self, plan: Plan, edges: Mapping[str, nn.Module]) -> None:
        super().__init__()
        flat = [(e, src, j) for j, incoming in enumerate(plan, start=1) for e, src in incoming]
        self.ops = nn.ModuleList([edges[str(e)] for e, _, _ in flat])
        self.edge_ids: list[int] = [e for e, _, _ in flat]
        self.src: list[int] = [s for _, s, _ in flat]
        self.dst: list[int] = [j for _, _, j in flat]

    def forward(self, x: Tensor) -> Tensor:
        zero = torch.zeros_like(x)
        nodes = [x, zero, zero, zero]
        alive = [True, False, False, False]
        for i, op in enumerate(self.ops):
            y = op(nodes[self.src[i]])
            d = self.dst[i]
            nodes[d] = nodes[d] + y if alive[d] else y
            alive[d] = True
        return nodes[3]


class _MixedCell(nn.Module):
    """A supernet cell: every candidate op on every edge (``ops[e][name]``), runs ``plan``."""

    def __init__(self, c: int, affine: bool, track: bool) -> None:
        super().__init__()
        self.ops = nn.ModuleList(
            nn.ModuleDict({NB201_CODES[k]: _op(k, c, affine, track) for k in range(1, 5)})
            for _ in NB201_EDGES)
        self.plan: Plan = ()
        self.codes: tuple[int, ...] = (0,) * 6

    def forward(self, x: Tensor) -> Tensor:
        return _run_cell(x, self.plan, lambda e: self.ops[e][NB201_CODES[self.codes[e]]])

    def to_static(self) -> NB201Cell:
        edges = {str(e): copy.deepcopy(self.ops[e][NB201_CODES[self.codes[e]]])
                 for incoming in self.plan for e, _ in incoming}
        return NB201Cell(self.plan, edges)


class NB201Net(nn.Module):
    """A static NB201 network (what :meth:`NB201Supernet.extract` returns): plain layers only.

    ``config`` holds the canonical config it was extracted for.
    """

    def __init__(self, stem: nn.Module, layers: nn.ModuleList, lastact: nn.Module,
                 classifier: nn.Linear) -> None:
        super().__init__()
        self.stem, self.layers, self.lastact, self.classifier = stem, layers, lastact, classifier
        self.config: dict[str, Any] = {}

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        x = self.lastact(x).mean((2, 3))
        return self.classifier(x)


class NB201Supernet(SupernetBase):
    """Weight-sharing supernet of the NAS-Bench-201 cell space (one implementation of
    :class:`evo_nas.nn.protocol.WeightSharingSupernet`).

    ``set_active(config)`` picks one op per edge for every cell; ``forward(x)`` runs it on
    ``(batch, in_channels, image_size, image_size)``; ``extract(config)`` returns a static
    :class:`NB201Net` copy; ``settings()`` rebuilds it with :func:`~evo_nas.nn.build_supernet`.
    """

    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10, in_channels: int = 3,
                 image_size: int = 32, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.space = nb201_cell_space(C, N, num_classes, image_size, in_channels, affine)
        self.C, self.N = C, N
        self.num_classes, self.in_channels, self.image_size = num_classes, in_channels, image_size
        self.affine, self.track_running_stats = affine, track_running_stats
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        for s in range(3):
            if s:
                layers.append(ResNetBasicBlock(C << (s - 1), C << s))
            layers.extend(_MixedCell(C << s, affine, track_running_stats) for _ in range(N))
        self.layers = nn.ModuleList(layers)
        self.cells = [m for m in self.layers if isinstance(m, _MixedCell)]
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(4 * C, num_classes)
        self.set_largest()

    # ----------------------------------------------------------------- protocol
    def _activate(self, config: dict[str, Any]) -> None:
        codes = tuple(NB201_CODES.index(config[g]) for g in NB201_GENES)
        plan = cell_plan(codes)
        for cell in self.cells:
            cell.codes, cell.plan = codes, plan

    def settings(self) -> dict[str, Any]:
        return {"kind": "nb201", "C": self.C, "N": self.N, "num_classes": self.num_classes,
                "in_channels": self.in_channels, "image_size": self.image_size,
                "affine": self.affine, "track_running_stats": self.track_running_stats}

    def extract(self, config: Mapping[str, Any] | None = None) -> NB201Net:
        """Static copy of ``config`` (default: the active one): only its live ops, with copies
        of their weights and BN statistics; equal in eval mode to the supernet running it. It
        starts in the supernet's train/eval mode; the supernet's active config is unchanged."""
        cfg = self.canonical_config(config)
        previous = self._config
        self._activate(cfg)
        try:
            layers = nn.ModuleList(m.to_static() if isinstance(m, _MixedCell) else
                                   copy.deepcopy(m) for m in self.layers)
        finally:
            self._activate(previous)
        net = NB201Net(copy.deepcopy(self.stem), layers, copy.deepcopy(self.lastact),
                       copy.deepcopy(self.classifier))
        net.config = cfg
        net.train(self.training)
        return net

    # ----------------------------------------------------------------- forward
    forward = NB201Net.forward  # the same skeleton: stem, layers, BN-ReLU, pool, classifier

    # ----------------------------------------------------------------- latency parts
    def _latency_walk(self, config: Mapping[str, Any]
                      ) -> list[tuple[str, str, tuple[int, int, int], tuple[Any, ...]]]:
        """``(name, key, input (C, H, W), where)`` of each part; ``where`` locates its module in
        the extracted :class:`NB201Net`. Parts: stem, reduction blocks, the tail, and per cell
        one part per live edge (key: op, channels, size) and one per extra input summed into a
        node. Zero edges are absent (the plan drops them); what a cell costs beyond its ops and
        sums (the zero tensor it starts from, the loop) is the same for every cell, so the
        table's calibration offset absorbs it."""
        cfg = self.canonical_config(config)
        codes = tuple(NB201_CODES.index(cfg[g]) for g in NB201_GENES)
        plan = cell_plan(codes)
        c, r = self.C, self.image_size
        out: list[tuple[str, str, tuple[int, int, int], tuple[Any, ...]]] = [
            ("stem", f"stem:c{self.in_channels}-{c}:r{r}", (self.in_channels, r, r), ("stem",))]
        li = 0
        for s in range(3):
            if s:
                out.append((f"s{s}.reduce", f"reduce:c{c}-{2 * c}:r{r}", (c, r, r), ("layer", li)))
                li, c, r = li + 1, 2 * c, (r - 1) // 2 + 1  # 3x3 conv, stride 2, padding 1
            for i in range(self.N):
                k = 0  # index of the op in the static cell (plan order)
                for j, incoming in enumerate(plan, start=1):
                    for m, (e, _) in enumerate(incoming):
                        out.append((f"s{s}.c{i}.e{e}", f"edge:{NB201_CODES[codes[e]]}:c{c}:r{r}",
                                    (c, r, r), ("op", li, k)))
                        k += 1
                        if m:
                            out.append((f"s{s}.c{i}.n{j}.sum", f"sum:c{c}:r{r}", (c, r, r),
                                        ("sum",)))
                li += 1
        out.append(("tail", f"tail:c{c}:r{r}:n{self.num_classes}", (c, r, r), ("tail",)))
        return out

    def latency_keys(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(part name, key)`` per part (see :meth:`_latency_walk`), without building modules."""
        return [(name, key) for name, key, _, _ in self._latency_walk(config)]

    def latency_parts(self, config: Mapping[str, Any]
                      ) -> list[tuple[str, nn.Module, tuple[int, int, int]]]:
        """The parts as modules of the extracted network (eval mode); a sum is a
        :class:`~evo_nas.nn.parts.NodeSum`, the tail BN-ReLU, pooling and classifier."""
        from evo_nas.nn.parts import NodeSum, PoolClassifier

        cfg = self.canonical_config(config)
        net = self.extract(cfg).eval()
        out: list[tuple[str, nn.Module, tuple[int, int, int]]] = []
        for _, key, shape, where in self._latency_walk(cfg):
            if where[0] == "stem":
                mod: nn.Module = net.stem
            elif where[0] == "layer":
                mod = net.layers[where[1]]
            elif where[0] == "op":
                mod = net.layers[where[1]].ops[where[2]]
            elif where[0] == "sum":
                mod = NodeSum()
            else:
                mod = PoolClassifier(net.lastact, net.classifier)
            out.append((key, mod.eval(), shape))
        return out

    def latency_configs(self) -> list[dict[str, Any]]:
        """Every op on all six edges (each op at each stage, nodes of 1-3 inputs), then the four
        ops rotated over the edges (the same parts next to other neighbours)."""
        ops = NB201_CODES[1:]
        out = [dict.fromkeys(NB201_GENES, op) for op in ops]
        out += [{g: ops[(e + s) % len(ops)] for e, g in enumerate(NB201_GENES)}
                for s in range(len(ops))]
        return out


register_supernet("nb201", NB201Supernet)
