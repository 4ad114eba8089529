"""NAS-Bench-201 cell space and supernet: table costs, isomorphism, extraction, training."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch
from data_paths import nb201_csv
from helpers import scramble_bn
from nb201_slice import SLICE
from torch import nn

from evo_nas.costs import cost_function, count_with_hooks
from evo_nas.errors import GenomeError
from evo_nas.nn.nb201 import NB201Supernet, cell_plan
from evo_nas.nn.protocol import WeightSharingSupernet, build_supernet
from evo_nas.spaces import nb201 as nb
from evo_nas.spaces.nb201 import (
    NB201_CODES,
    NB201_EDGES,
    NB201Costs,
    is_disconnected,
    nb201_canonical,
    nb201_cell_space,
    nb201_key,
    nb201_representatives,
    nb201_row_index,
    nb201_table_row,
)
from problems.tabular import read_csv_columns

ALL = np.array(list(itertools.product(range(5), repeat=6)), dtype=np.int64)


@pytest.fixture(scope="module")
def small() -> NB201Supernet:
    torch.manual_seed(0)
    net = NB201Supernet(C=4, N=1, image_size=16)
    scramble_bn(net)
    net.eval()
    return net


# ------------------------------------------------------------------ costs vs the table
def _check_table(cols: dict[str, list[str]]) -> tuple[float, float]:
    X = np.column_stack([np.asarray(cols[f"op{i}"], dtype=np.int64) for i in range(6)])
    macs, params, flops = NB201Costs().many(X)
    # the table prints 6 significant digits: ours, printed the same way, must be identical
    for ours, theirs in ((flops, cols["flops_m"]), (params, cols["params_mb"])):
        printed = np.array([float(f"{v / 1e6:.6g}") for v in ours])
        assert np.array_equal(printed, np.asarray(theirs, dtype=float))
    # the difference between the conventions is exactly the documented per-layer extra
    n_conv = np.isin(X, (2, 3)).sum(1)
    n_pool = (X == 4).sum(1)
    assert np.array_equal(flops - macs, 160_832 + 430_080 * n_conv + 1_290_240 * n_pool)
    # the scalar call agrees with the vectorised one
    costs = NB201Costs()
    for row in X[:: max(1, len(X) // 20)]:
        cfg = {f"op{i}": NB201_CODES[v] for i, v in enumerate(row)}
        i = nb201_table_row(row, cols)
        assert costs(cfg) == (macs[i], params[i]) and costs.table_flops(cfg) == flops[i]
    fl = np.asarray(cols["flops_m"], dtype=float)
    pm = np.asarray(cols["params_mb"], dtype=float)
    return float(np.abs(flops / 1e6 - fl).max()), float(np.abs(params / 1e6 - pm).max())


def test_costs_match_table_slice() -> None:
    cols = read_csv_columns(SLICE)
    err_flops, err_params = _check_table(cols)
    assert err_flops < 5e-4 and err_params < 5e-6


def test_costs_match_full_table() -> None:
    path = nb201_csv()  # the shared table, or skipped
    cols = read_csv_columns(path)
    assert len(cols["op0"]) == 15_625
    err_flops, err_params = _check_table(cols)  # measured: 4.72e-4 and 4.0e-6 (rounding)
    assert err_flops < 5e-4 and err_params < 5e-6
    rows = nb201_row_index(cols)
    assert (rows >= 0).all() and len(set(rows.tolist())) == 15_625


def test_table_row_lookup() -> None:
    cols = read_csv_columns(SLICE)
    rows = nb201_row_index(cols)
    for r in range(len(cols["op0"])):
        g = [int(cols[f"op{i}"][r]) for i in range(6)]
        assert nb201_table_row(g, cols) == r
        assert rows[nb.nb201_index(g)] == r
    names = {f"op{i}": [NB201_CODES[int(v)] for v in cols[f"op{i}"]] for i in range(6)}
    assert nb201_table_row({f"op{i}": names[f"op{i}"][3] for i in range(6)}, names) == 3
    missing = next(g for g in ALL if rows[nb.nb201_index(g)] < 0)
    with pytest.raises(GenomeError, match="not in the table"):
        nb201_table_row(missing, cols)


def test_extremes_are_cheapest_and_dearest() -> None:
    space = nb201_cell_space()
    macs, params, _ = NB201Costs().many(nb201_representatives())
    cost = cost_function(space)
    assert cost(space.decode(space.smallest())) == (macs.min(), params.min())
    assert cost(space.decode(space.largest())) == (macs.max(), params.max())
    assert space.largest().tolist() == [3] * 6
    again = pickle.loads(pickle.dumps(space))
    assert again.canonicalizer is nb201_canonical
    assert again.meta["costs"] == space.meta["costs"]


# ------------------------------------------------------------------ isomorphism
def _nb201_unique_str(g: np.ndarray) -> str:
    """NB201's own ``to_unique_str(consider_zero=True)`` rules, quirks included: a node whose
    inputs are all zero reads ``#+#`` (not ``#``), so ops on it are not zero; zero terms stay
    in sums; skip inserts its source's whole string as one term."""
    nodes = {0: "0"}
    for j in (1, 2, 3):
        cur = []
        for e, (a, b) in enumerate(NB201_EDGES):
            if b != j:
                continue
            op = NB201_CODES[g[e]]
            if op == "none" or nodes[a] == "#":
                cur.append("#")
            elif op == "skip_connect":
                cur.append(nodes[a])
            else:
                cur.append(f"({nodes[a]})@{op}")
        nodes[j] = "+".join(sorted(cur))
    return nodes[3]


def test_class_count() -> None:
    keys = {nb201_key(g) for g in ALL}
    assert len(keys) == 4930 == len(nb201_representatives())
    # NB201's 6,466 comes from its string's quirks (see _nb201_unique_str), reproduced here
    assert len({_nb201_unique_str(g) for g in ALL}) == 6466
    assert is_disconnected(ALL).sum() == 341


@pytest.mark.parametrize("a, b", [
    ((0, 2, 3, 1, 4, 3), (0, 2, 0, 1, 0, 3)),  # node 1 is zero: edges out of it are dead
    ((3, 3, 2, 1, 1, 0), (3, 0, 0, 1, 1, 0)),  # node 2 feeds nothing: edges into it are dead
    ((3, 0, 0, 0, 1, 0), (0, 0, 0, 3, 0, 0)),  # conv(x) reaches node 3 through a skip
    ((0, 3, 0, 0, 0, 1), (0, 0, 0, 3, 0, 0)),
    ((1, 0, 0, 0, 3, 0), (0, 0, 0, 3, 0, 0)),  # conv(skip(x)) == conv(x)
    ((4, 0, 0, 0, 1, 0), (0, 0, 0, 4, 0, 0)),
    ((1, 0, 1, 0, 0, 1), (0, 0, 0, 1, 0, 0)),  # x through three skips is x
    ((1, 3, 1, 0, 0, 1), (3, 0, 0, 1, 1, 0)),  # skip(conv(x) + x) == conv(x) + x (flattened)
    ((1, 3, 1, 0, 0, 1), (0, 3, 0, 1, 0, 1)),
])
def test_twins_share_keys(a, b) -> None:
    assert nb201_key(a) == nb201_key(b)
    assert (nb201_canonical(np.array(a)) == nb201_canonical(np.array(b))).all()


def test_distinct_cells_differ_and_disconnected() -> None:
    assert nb201_key((3, 0, 0, 0, 3, 0)) != nb201_key((0, 0, 0, 3, 0, 0))  # depth 2 vs 1
    assert nb201_key((1, 0, 0, 1, 1, 0)) != nb201_key((0, 0, 0, 1, 0, 0))  # 2x vs x
    assert nb201_key((0, 0, 0, 3, 0, 0)) != nb201_key((0, 0, 0, 2, 0, 0))
    for g in [(0, 0, 0, 0, 3, 3), (3, 3, 3, 0, 0, 0), (0, 0, 0, 0, 0, 0), (4, 0, 0, 0, 0, 0)]:
        assert nb201_key(g) == "0"
        assert is_disconnected(np.array(g))
        assert nb201_canonical(np.array(g)).tolist() == [0] * 6
    assert not is_disconnected(np.array([0, 0, 0, 1, 0, 0]))
    assert nb201_key({f"op{i}": "skip_connect" for i in range(6)}) == "x+x+x+x"


def test_canonical_is_idempotent_and_stays_in_class() -> None:
    cls = nb._classes()
    rep = nb201_canonical(ALL)
    assert (nb201_canonical(rep) == rep).all()
    idx = rep @ nb._POW
    assert [cls.keys[i] for i in idx] == list(cls.keys)  # same class as the original
    assert (idx <= np.arange(len(ALL))).all()  # never larger, so the smallest member
    # representatives have no dead edges: every non-none edge is on the cell's live plan
    for g in nb201_representatives():
        plan = cell_plan(tuple(g))
        assert sorted(e for node in plan for e, _ in node) == np.flatnonzero(g).tolist()
    space = nb201_cell_space()
    X = space.sample(50, 0)
    assert (space.canonical(X) == X).all() and (nb201_canonical(X) == X).all()
    assert space.key([3, 0, 0, 0, 1, 0]) == space.key([0, 0, 0, 3, 0, 0])
    with pytest.raises(GenomeError):
        nb201_canonical(np.array([[0, 0, 0, 0, 0, 5]]))


# ------------------------------------------------------------------ supernet
def test_protocol_and_round_trip(small) -> None:
    assert isinstance(small, WeightSharingSupernet)
    settings = small.settings()
    assert settings["kind"] == "nb201"
    again = build_supernet(settings)
    assert isinstance(again, NB201Supernet) and again.settings() == settings
    again.load_state_dict(small.state_dict())
    again.eval()
    x = torch.randn(2, 3, 16, 16)
    cfg = small.space.decode([3, 2, 4, 1, 3, 2])
    small.set_active(cfg)
    again.set_active(cfg)
    assert torch.equal(small(x), again(x))
    assert small.input_shape(cfg) == (3, 16, 16)
    with pytest.raises(GenomeError):
        small.set_active({"op0": "conv"})


def test_extract_equals_supernet(small) -> None:
    rng = np.random.default_rng(0)
    genomes = [*rng.integers(0, 5, size=(22, 6)), [0] * 6, [3] * 6, [1] * 6, [4, 4, 4, 4, 4, 4]]
    x = torch.randn(2, 3, 16, 16)
    ptrs = {p.data_ptr() for p in small.parameters()}
    for g in genomes:
        cfg = small.space.decode(g)
        small.set_active(cfg)
        sub = small.extract()
        assert sub.config == cfg and not sub.training
        assert torch.allclose(small(x), sub(x), atol=1e-6)
        assert not any(p.data_ptr() in ptrs for p in sub.parameters())  # copies, not views
    # extract(config) leaves the active config alone
    small.set_active(small.space.decode([0, 0, 0, 3, 0, 0]))
    small.extract(small.space.decode([3] * 6))
    assert small.active_config == small.space.decode([0, 0, 0, 3, 0, 0])


def test_disconnected_cell_outputs_zeros(small) -> None:
    small.set_active(small.space.decode([3, 3, 3, 0, 0, 0]))
    x = torch.randn(2, 4, 16, 16)
    assert torch.equal(small.cells[0](x), torch.zeros_like(x))
    sub = small.extract()
    assert sum(len(c.edges) for c in sub.layers if hasattr(c, "edges")) == 0


def test_costs_equal_hooks(small) -> None:
    for g in [[0] * 6, [3] * 6, [2, 0, 4, 1, 3, 0], [1, 4, 2, 3, 0, 1], [0, 3, 3, 1, 0, 1]]:
        cfg = small.space.decode(g)
        assert small.costs(cfg) == count_with_hooks(small.extract(cfg), (3, 16, 16))
    torch.manual_seed(0)
    big = NB201Supernet()  # NB201's CIFAR-10 network: the table's params, exactly
    for g in [[3] * 6, [2, 0, 4, 1, 3, 0], [0, 0, 0, 4, 0, 0]]:
        cfg = big.space.decode(g)
        sub = big.extract(cfg)
        assert big.costs(cfg) == count_with_hooks(sub, (3, 32, 32))
    assert big.costs(big.space.decode([3] * 6)) == (220_119_680, 1_531_546)
    lean = NB201Supernet(C=4, N=1, image_size=16, affine=False)
    cfg = lean.space.decode([3] * 6)
    assert lean.costs(cfg) == count_with_hooks(lean.extract(cfg), (3, 16, 16))


def test_sgd_step_changes_only_active_weights() -> None:
    torch.manual_seed(0)
    net = NB201Supernet(C=4, N=1, image_size=8)
    cfg = net.space.decode([3, 0, 2, 1, 0, 3])  # live: op0 conv3, op2 conv1, op3 skip, op5 conv3
    assert net.space.encode(cfg).tolist() == [3, 0, 2, 1, 0, 3]  # canonical already
    net.set_active(cfg)
    net.train()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    loss = nn.functional.cross_entropy(net(torch.randn(4, 3, 8, 8)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    with torch.no_grad():  # plain SGD (torch.optim's first import alone takes seconds)
        for p in net.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    active = {(0, "nor_conv_3x3"), (2, "nor_conv_1x1"), (5, "nor_conv_3x3")}
    for n, p in net.named_parameters():
        changed = not torch.equal(before[n], p)
        parts = n.split(".")
        if parts[0] == "layers" and parts[2] == "ops":
            assert changed == ((int(parts[3]), parts[4]) in active), n
        else:
            assert changed, n  # stem, reduction blocks, last BN and classifier all train
