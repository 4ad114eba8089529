"""The NAS-Bench-201 cell space: genes, exact costs and cell isomorphism, without torch.

NAS-Bench-201 (Dong & Yang, ICLR 2020) searches one 4-node cell, repeated in every cell position
of a fixed ResNet-like skeleton. Its six edges (``op0..op5``, NB201's ``arch_str`` order) each
carry one of five operations. Genome index == NB201's operation code, so genomes, tables and
configs translate by position alone; :attr:`SearchSpace.extremes` then says which cells are the
smallest and largest, since the code order is not the cost order.

Network (what :mod:`evo_nas.nn.nb201` builds and :class:`NB201Costs` counts): stem
Conv3x3(in->C)+BN; N cells at C; ResNet basic block to 2C, stride 2 (conv_a = ReLU-Conv3x3/2-BN,
conv_b = ReLU-Conv3x3-BN, shortcut = AvgPool2d(2, 2) + Conv1x1 without BN); N cells at 2C;
the same block to 4C; N cells at 4C; BN + ReLU, global average pool, Linear(4C -> classes).
In a cell, node 0 is its input and node j the sum over its incoming edges of ``op(node i)``:
``none`` (zero), ``skip_connect`` (identity), ``nor_conv_1x1`` / ``nor_conv_3x3``
(ReLU-Conv(bias=False)-BN) and ``avg_pool_3x3`` (stride 1, padding 1, count_include_pad=False).

Two cost conventions (checked against all 15,625 rows of the NB201 CIFAR-10 table in the tests):

* :meth:`NB201Costs.__call__` -> ``(MACs, params)``: the library's convention, conv and linear
  multiply-accumulates only (what :func:`evo_nas.costs.count_with_hooks` measures), and exact
  parameters (conv weights, affine BN weight and bias, classifier weight and bias). Params equal
  the table's ``params_mb`` on every row.
* :meth:`NB201Costs.table_flops` -> the table's ``flops_m`` (times 1e6). It is the MACs plus
  3 per element of every ReLU-Conv-BN output (ReLU 1, affine BN 2; likewise the stem BN 2 and
  the final BN + ReLU 3 per element), k^2 per output element of every average pool (9 for the
  cell's 3x3 pools, 4 for the 2x2 shortcut pools, 64 for the global 8x8 pool), and a residue of
  1,088 (= 17 x 64 at the default shape) that no per-layer rule tried accounts for; the rounded
  table pins the whole intercept to 7,943,870..7,943,875 FLOPs, this gives 7,943,872. At the
  default shape: table_flops - MACs = 160,832 + 430,080 per 3x3 or 1x1 convolution op (the same
  for both: 3 x 143,360 elements over the 15 cells) + 1,290,240 per 3x3 average pool op.

Isomorphism: cells that compute the same function share :func:`nb201_key` (see there), and
:func:`nb201_canonical` maps each genome to its class's lexicographically smallest member. The
15,625 cells form 4,930 classes (341 cells are disconnected). NB201 reports 6,466 because its
``to_unique_str(consider_zero=True)`` string has quirks, reproduced in the tests: a node whose
inputs are all zero reads ``#+#``, not ``#``, so ops applied to it do not count as zero (6,466
-> 6,285 when fixed); zero terms stay in sums as ``#`` (-> 5,390 when dropped); and skip inserts
its source's sum as one opaque term instead of its terms (-> 4,930 when flattened).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from evo_nas.cell import CellGraph
from evo_nas.errors import ConfigError, GenomeError
from evo_nas.space import Choice, SearchSpace

__all__ = [
    "NB201_CODES",
    "NB201_EDGES",
    "NB201_GENES",
    "NB201Costs",
    "is_disconnected",
    "nb201_canonical",
    "nb201_cell_space",
    "nb201_genome",
    "nb201_index",
    "nb201_key",
    "nb201_representatives",
    "nb201_row_index",
    "nb201_table_row",
]

NB201_CODES = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""NB201's operation codes 0..4 (the table's ``op*`` values); genome index == code."""
NB201_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""(from node, to node) of ``op0..op5``, in topological order."""
NB201_GENES = tuple(f"op{i}" for i in range(6))

_NONE, _SKIP, _CONV1, _CONV3, _POOL = range(5)
_POW = 5 ** np.arange(5, -1, -1, dtype=np.int64)  # op0 is the most significant base-5 digit
_N_CELLS = 5 ** 6
TABLE_RESIDUE = 1088
"""FLOPs in the table's intercept that no per-layer rule explains (see the module docstring)."""


# ------------------------------------------------------------------------- genomes
def nb201_genome(config_or_genome: Mapping[str, Any] | Sequence[Any] | np.ndarray) -> np.ndarray:
    """The six op codes of a config dict (``op0..op5`` -> op name or code) or a genome (codes or
    op names), as an int array; one place that accepts every spelling, so helpers agree."""
    if isinstance(config_or_genome, Mapping):
        missing = [g for g in NB201_GENES if g not in config_or_genome]
        if missing:
            raise GenomeError(f"NB201 config lacks genes {missing}")
        extra = [k for k in config_or_genome if k not in NB201_GENES]
        if extra:
            raise GenomeError(f"NB201 config has unknown genes {extra} (genes: op0..op5)")
        values = [config_or_genome[g] for g in NB201_GENES]
    else:
        values = list(np.asarray(config_or_genome, dtype=object).reshape(-1))
        if len(values) != 6:
            raise GenomeError(f"an NB201 genome has 6 genes, got {len(values)}")
    out = np.empty(6, dtype=np.int64)
    for i, v in enumerate(values):
        if isinstance(v, str):
            if v not in NB201_CODES:
                raise GenomeError(f"gene op{i} = {v!r} is not an NB201 op {NB201_CODES}")
            out[i] = NB201_CODES.index(v)
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < 5:
            out[i] = int(v)
        else:
            raise GenomeError(f"gene op{i} = {v!r} is neither an op name nor a code 0..4")
    return out


def nb201_index(config_or_genome: Mapping[str, Any] | Sequence[Any] | np.ndarray) -> int:
    """Base-5 number of the op codes, op0 most significant (0..15,624): the position of a cell
    in this module's lookups. It is *not* the table's ``idx`` column (see :func:`nb201_table_row`).
    """
    return int(nb201_genome(config_or_genome) @ _POW)


# ------------------------------------------------------------------------- isomorphism
def _expression(codes: Sequence[int]) -> tuple[str, ...]:
    """Node 3's expression: a sorted multiset of terms (empty = zero).

    Node 0 is the atom ``x``. An edge contributes nothing when it is ``none`` or its source is
    zero; ``skip_connect`` contributes every term of its source (sums are associative, so
    ``skip(a + b)`` is ``a + b``); any other op contributes one term ``op(source terms)``.
    """
    nodes: list[tuple[str, ...]] = [("x",)]
    for j in (1, 2, 3):
        terms: list[str] = []
        for e, (a, b) in enumerate(NB201_EDGES):
            if b != j:
                continue
            op, src = int(codes[e]), nodes[a]
            if op == _NONE or not src:
                continue
            if op == _SKIP:
                terms.extend(src)
            else:
                terms.append(f"{NB201_CODES[op]}({'+'.join(src)})")
        nodes.append(tuple(sorted(terms)))
    return nodes[3]


def nb201_key(config_or_genome: Mapping[str, Any] | Sequence[Any] | np.ndarray) -> str:
    """Identity of the function a cell computes: node 3's expression, ``"0"`` when it is zero.

    NB201's ``to_unique_str(consider_zero=True)`` idea, made exact: ``none`` edges and any op
    applied to a zero node contribute zero, ``skip_connect`` passes its source's terms through,
    and a node is the sorted multiset sum of its non-zero terms. Cells with equal keys are twins
    (one differs from the other on dead edges, or by which intermediate node holds a term).
    """
    return "+".join(_expression(nb201_genome(config_or_genome))) or "0"


@dataclass(frozen=True)
class _Classes:
    genomes: np.ndarray  # (15625, 6): every genome, row = base-5 index
    rep: np.ndarray  # (15625,) base-5 index of each genome's representative
    disconnected: np.ndarray  # (15625,) node 3 is zero
    keys: tuple[str, ...]


@lru_cache(maxsize=1)
def _classes() -> _Classes:
    """All 15,625 keys and representatives, computed once (about 0.1 s) on first use."""
    genomes = np.array(list(itertools.product(range(5), repeat=6)), dtype=np.int64)
    keys = tuple(nb201_key(g) for g in genomes)
    first: dict[str, int] = {}
    rep = np.empty(_N_CELLS, dtype=np.int64)
    for i, k in enumerate(keys):  # ascending index == lexicographic genome order
        rep[i] = first.setdefault(k, i)
    genomes.setflags(write=False)
    rep.setflags(write=False)
    disc = np.array([k == "0" for k in keys])
    disc.setflags(write=False)
    return _Classes(genomes, rep, disc, keys)


def _indices(X: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    arr = np.asarray(X, dtype=np.int64)
    if arr.shape[-1:] != (6,):
        raise GenomeError(f"NB201 genomes have 6 genes, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 4):
        raise GenomeError("NB201 genes are op codes 0..4")
    return arr.reshape(-1, 6) @ _POW, arr.shape[:-1]


def nb201_canonical(X: np.ndarray) -> np.ndarray:
    """Each genome replaced by its class's representative (lexicographically smallest member).

    The :attr:`SearchSpace.canonicalizer` of :func:`nb201_cell_space`: one gather in a
    precomputed table, so searches and caches never see two genomes of one function. The
    representative has no dead edges (any dead edge could be set to ``none``, a smaller code).
    """
    c = _classes()
    idx, lead = _indices(X)
    return c.genomes[c.rep[idx]].reshape(*lead, 6)


def is_disconnected(X: np.ndarray) -> np.ndarray:
    """Boolean per genome: node 3 is zero (no input -> output path survives); such cells output
    zeros, and every NB201 network built from them sits at chance accuracy."""
    idx, lead = _indices(X)
    return _classes().disconnected[idx].reshape(lead)


def nb201_representatives() -> np.ndarray:
    """One genome per isomorphism class, sorted: 4,930 of them (NB201's 6,466 counts some twins
    apart, see the module docstring)."""
    c = _classes()
    return c.genomes[np.unique(c.rep)]


# ------------------------------------------------------------------------- costs
class NB201Costs:
    """Exact ``config -> (MACs, params)`` of the NB201 network of a cell (picklable).

    Counts every non-``none`` edge of the config as given, as NB201 builds it; configs from
    ``space.decode`` are canonical, so they have no dead edges and this equals
    :func:`evo_nas.costs.count_with_hooks` on the extracted network. ``affine=False`` drops the
    cell ops' BN parameters (the skeleton's BNs stay affine, as in NB201's supernets).
    :meth:`table_flops` gives the NB201 table's FLOPs convention (module docstring).
    """

    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10, image_size: int = 32,
                 in_channels: int = 3, affine: bool = True) -> None:
        for name, v in (("C", C), ("N", N), ("num_classes", num_classes),
                        ("image_size", image_size), ("in_channels", in_channels)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"NB201 {name} = {v!r} must be a positive integer")
        if image_size % 4:
            raise ConfigError(f"NB201 image_size = {image_size} must be a multiple of 4 (two "
                              "stride-2 blocks whose shortcut pools halve it exactly)")
        self.C, self.N, self.num_classes = int(C), int(N), int(num_classes)
        self.image_size, self.in_channels, self.affine = int(image_size), int(in_channels), affine
        self._fixed, self._per_op = self._tabulate()

    def _tabulate(self) -> tuple[np.ndarray, np.ndarray]:
        """(MACs, params, table FLOPs) of the skeleton, and per op code summed over all cells."""
        C, N, S = self.C, self.N, self.image_size
        fixed = np.zeros(3, dtype=np.int64)

        def conv(cin: int, cout: int, k: int, hw: int) -> None:
            fixed[:] += (hw * cout * cin * k * k, cout * cin * k * k, hw * cout * cin * k * k)

        def bn(c: int, hw: int, relu: bool) -> None:  # table: BN 2 per element, ReLU 1
            fixed[:] += (0, 2 * c, (3 if relu else 2) * c * hw)

        conv(self.in_channels, C, 3, S * S)
        bn(C, S * S, relu=False)
        for s in (0, 1):  # ResNet basic blocks C*2^s -> C*2^(s+1), stride 2
            cin, cout, hw_in, hw = C << s, C << (s + 1), (S >> s) ** 2, (S >> (s + 1)) ** 2
            fixed[2] += cin * hw_in  # ReLU of conv_a, on its input
            conv(cin, cout, 3, hw)
            bn(cout, hw, relu=False)
            conv(cout, cout, 3, hw)
            bn(cout, hw, relu=True)  # ReLU of conv_b, then its BN (same size)
            fixed[2] += 4 * cin * hw  # AvgPool2d(2, 2): k^2 per output element
            conv(cin, cout, 1, hw)
        hw = (S >> 2) ** 2
        bn(4 * C, hw, relu=True)  # lastact
        fixed[2] += 4 * C * hw  # global average pool: k^2 = hw per output element
        fixed += (4 * C * self.num_classes, 4 * C * self.num_classes + self.num_classes,
                  4 * C * self.num_classes)
        fixed[2] += TABLE_RESIDUE
        per_op = np.zeros((5, 3), dtype=np.int64)
        for s in range(3):
            c, hw = C << s, (S >> s) ** 2
            for code, k in ((_CONV1, 1), (_CONV3, 3)):
                macs = hw * c * c * k * k
                per_op[code] += N * np.array((macs, c * c * k * k + (2 * c if self.affine else 0),
                                              macs + 3 * c * hw))
            per_op[_POOL, 2] += N * 9 * c * hw
        return fixed, per_op

    def many(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(MACs, params, table FLOPs)`` int arrays for genomes ``X`` (n, 6), no Python loop."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        _indices(X)  # validates
        total = self._fixed + self._per_op[X].sum(axis=1)
        return total[:, 0], total[:, 1], total[:, 2]

    def __call__(self, config: Mapping[str, Any]) -> tuple[int, int]:
        """``(MACs, params)`` of ``config``'s network (library convention)."""
        t = self._fixed + self._per_op[nb201_genome(config)].sum(axis=0)
        return int(t[0]), int(t[1])

    def table_flops(self, config: Mapping[str, Any] | Sequence[Any] | np.ndarray) -> int:
        """FLOPs as NB201's table counts them (``flops_m * 1e6``); see the module docstring for
        the exact difference from :meth:`__call__`'s MACs."""
        t = self._fixed + self._per_op[nb201_genome(config)].sum(axis=0)
        return int(t[2])

    def settings(self) -> dict[str, Any]:
        return {"C": self.C, "N": self.N, "num_classes": self.num_classes,
                "image_size": self.image_size, "in_channels": self.in_channels,
                "affine": self.affine}

    def __repr__(self) -> str:
        return "NB201Costs(" + ", ".join(f"{k}={v!r}" for k, v in self.settings().items()) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NB201Costs) and self.settings() == other.settings()

    def __hash__(self) -> int:
        return hash(tuple(self.settings().items()))


def nb201_cell_space(C: int = 16, N: int = 5, num_classes: int = 10, image_size: int = 32,
                     in_channels: int = 3, affine: bool = True) -> SearchSpace:
    """The NB201 cell space: genes ``op0..op5``, options :data:`NB201_CODES` in code order.

    Arguments size the network whose costs ``meta['costs']`` (an :class:`NB201Costs`) reports;
    the defaults are NB201's CIFAR-10 network. Twins are merged by :func:`nb201_canonical`, and
    ``extremes`` are the empty cell (all ``none``) and the all-``nor_conv_3x3`` cell; ``cell``
    declares the edges and ``none`` as the zero op, for predictors' live-path features.
    """
    costs = NB201Costs(C, N, num_classes, image_size, in_channels, affine)
    return SearchSpace([Choice(g, NB201_CODES) for g in NB201_GENES], name="nb201",
                       meta={"costs": costs}, canonicalizer=nb201_canonical,
                       extremes=((_NONE,) * 6, (_CONV3,) * 6),
                       cell=CellGraph(dict(zip(NB201_GENES, NB201_EDGES, strict=True)),
                                      zero="none"))


# ------------------------------------------------------------------------- tables
def nb201_row_index(table: Any) -> np.ndarray:
    """``(15625,)`` array: base-5 index (:func:`nb201_index`) -> row of ``table`` with those op
    columns, ``-1`` where absent. ``table[f"op{i}"]`` holds codes (ints or digit strings, as in
    the CSV) or op names; rows are matched by the op columns, never by the ``idx`` column (NB201's
    own numbering, unrelated to the base-5 code)."""
    code_of: dict[Any, int] = {}
    for k, name in enumerate(NB201_CODES):
        code_of.update({k: k, str(k): k, name: k})
    cols = []
    for g in NB201_GENES:
        try:
            col = list(table[g])
        except (KeyError, TypeError):
            raise GenomeError(f"table has no column {g!r}") from None
        try:
            cols.append(np.array([code_of[v.strip() if isinstance(v, str) else int(v)]
                                  for v in col], dtype=np.int64))
        except (KeyError, TypeError, ValueError):
            raise GenomeError(f"table column {g!r} holds a value that is neither an NB201 op "
                              "name nor a code 0..4") from None
    idx = np.column_stack(cols) @ _POW if cols[0].size else np.zeros(0, dtype=np.int64)
    out = np.full(_N_CELLS, -1, dtype=np.int64)
    out[idx[::-1]] = np.arange(len(idx))[::-1]  # first row wins on duplicates
    return out


def nb201_table_row(config_or_genome: Mapping[str, Any] | Sequence[Any] | np.ndarray,
                    table: Any) -> int:
    """Row of ``table`` holding this cell (matched by its op columns); raises when absent. Build
    :func:`nb201_row_index` once instead when looking up many cells."""
    row = int(nb201_row_index(table)[nb201_index(config_or_genome)])
    if row < 0:
        raise GenomeError(f"cell {nb201_genome(config_or_genome).tolist()} is not in the table")
    return row
