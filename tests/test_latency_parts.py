"""Per-part latency tables for supernets other than MobileNet, through the protocol's optional
``latency_keys`` / ``latency_parts`` / ``latency_configs``: a choice-block supernet (SPOS) and
NAS-Bench-201 cells.

Timings on a shared machine are noisy: the structural claims (parts cover the network, every
part is enumerated, files round-trip, other supernets are refused) are exact; the timing claims
are orderings with a wide margin (Kendall tau > 0 on 8 configs, the largest network predicted
slower than the empty one), never wall-clock limits.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau
from torch import nn

from evo_nas.cli import main
from evo_nas.latency import (
    LatencyTable,
    LatencyTableError,
    MeasuredLatency,
    build_table,
    export_parts,
    measure_configs,
)
from evo_nas.latency.measure import build_from_parts_dir
from evo_nas.nn import ChoiceSupernet, SupernetBase
from evo_nas.nn.choice import spos_supernet
from evo_nas.nn.nb201 import NB201Supernet
from evo_nas.nn.protocol import supports_latency_table
from evo_nas.spaces.nb201 import nb201_cell_space

QUICK = dict(repeats=3, warmup=1, contexts=1, calibration=4)
KINDS = ["choice", "nb201"]


def _choice() -> ChoiceSupernet:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return spos_supernet(num_layers=3, channels=8, in_channels=1, image_size=12).eval()


def _nb201(C: int = 4) -> NB201Supernet:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return NB201Supernet(C=C, N=1, in_channels=1, image_size=8).eval()


@pytest.fixture(scope="module")
def nets() -> dict[str, SupernetBase]:
    return {"choice": _choice(), "nb201": _nb201()}


@pytest.fixture(scope="module")
def tables(nets) -> dict[str, LatencyTable]:
    return {k: build_table(net, **QUICK) for k, net in nets.items()}


def _configs(space, n: int, seed: int) -> list[dict]:
    return [space.decode(space.smallest()), space.decode(space.largest()),
            *space.decode_many(space.sample(n, seed))]


def _n_params(mod: nn.Module) -> int:
    return sum(p.numel() for p in mod.parameters())


# --------------------------------------------------------------------------- parts
@pytest.mark.parametrize("kind", KINDS)
def test_parts_cover_the_extracted_network_and_chain(nets, kind: str) -> None:
    net = nets[kind]
    assert supports_latency_table(net)
    for cfg in _configs(net.space, 8, 0):
        parts = net.latency_parts(cfg)
        assert [k for k, _, _ in parts] == [k for _, k in net.latency_keys(cfg)]
        sub = net.extract(cfg).eval()
        assert sum(_n_params(m) for _, m, _ in parts) == _n_params(sub)
        x = torch.randn(2, *net.input_shape(cfg))
        y = x
        with torch.no_grad():
            for key, mod, shape in parts:  # each part takes the previous one's output
                assert tuple(y.shape[1:]) == shape, (key, tuple(y.shape), shape)
                y = mod(y)
            assert y.shape == (2, net.num_classes)
            if kind == "choice":  # a choice network is exactly its chain of parts
                torch.testing.assert_close(y, sub(x))


def test_nb201_parts_are_live_edges_and_node_sums(nets) -> None:
    net = nets["nb201"]
    cfg = {"op0": "none", "op1": "nor_conv_3x3", "op2": "none", "op3": "avg_pool_3x3",
           "op4": "none", "op5": "nor_conv_1x1"}
    names = [n for n, _ in net.latency_keys(cfg)]
    # node1 is zero (no part), node2 <- e1, node3 <- e3 + e5 (one sum); in each stage
    assert names[:5] == ["stem", "s0.c0.e1", "s0.c0.e3", "s0.c0.e5", "s0.c0.n3.sum"]
    assert names.count("s1.reduce") == 1 and names[-1] == "tail" and len(names) == 1 + 3 * 4 + 3
    keys = dict(net.latency_keys(cfg))
    assert keys["s2.c0.e1"] == "edge:nor_conv_3x3:c16:r2" and keys["s1.reduce"] == "reduce:c4-8:r8"
    # a twin (node1 only passed on by a skip) is its canonical cell, and has its parts
    twin = {"op0": "nor_conv_3x3", "op1": "none", "op2": "skip_connect", "op3": "avg_pool_3x3",
            "op4": "nor_conv_1x1", "op5": "none"}
    assert net.latency_keys(twin) == net.latency_keys(cfg)
    empty = net.space.decode(net.space.smallest())  # all zero edges: only the fixed parts
    assert [n for n, _ in net.latency_keys(empty)] == ["stem", "s1.reduce", "s2.reduce", "tail"]


@pytest.mark.parametrize("kind", KINDS)
def test_latency_configs_contain_every_part_of_the_space(nets, kind: str) -> None:
    net = nets[kind]
    space = net.space
    known = {k for cfg in net.latency_configs() for _, k in net.latency_keys(cfg)}
    grid = np.indices(tuple(int(n) for n in space.n_options)).reshape(space.n_var, -1).T
    every = np.unique(space.canonical(grid), axis=0)  # all 125 / 4,930 distinct networks
    seen = {k for cfg in space.decode_many(every) for _, k in net.latency_keys(cfg)}
    assert seen == known


# --------------------------------------------------------------------------- the table
@pytest.mark.parametrize("kind", KINDS)
def test_table_predicts_and_ranks_measured_latency(nets, tables, kind: str) -> None:
    net, table = nets[kind], tables[kind]
    space = net.space
    d = table.data
    assert d["supernet"] == json.loads(json.dumps(net.settings())) and "spec" not in d
    assert d["space"] == space.name and d["calibration"]["n_networks"] == 4
    small, large = space.decode(space.smallest()), space.decode(space.largest())
    assert table.predict(large) > table.predict(small) > 0  # many conv parts vs (almost) none
    assert table.predict(large) == pytest.approx(table.scale * table.sum_parts(large)
                                                 + table.offset_ms)
    configs = space.decode_many(space.sample(8, 5))
    pred = table(configs)["latency"]
    measured = [r["median_ms"] for r in measure_configs(net, configs, repeats=15, warmup=2)]
    tau = kendalltau(pred, measured).statistic
    assert tau > 0, (kind, pred, measured)


@pytest.mark.parametrize("kind", KINDS)
def test_table_round_trip(nets, tables, kind: str, tmp_path) -> None:
    net, table = nets[kind], tables[kind]
    path = table.save(tmp_path / f"{kind}.json")
    configs = net.space.decode_many(net.space.sample(6, 2))
    want = table.predict_many(configs)
    # rebuilt from the recorded settings, checked against a space, or bound to the supernet
    for owner in (None, net.space, net):
        again = LatencyTable.load(path, owner)
        np.testing.assert_allclose(again.predict_many(configs), want)
    assert LatencyTable.load(path).net.settings() == net.settings()


@pytest.mark.parametrize("kind", KINDS)
def test_batch_genomes_equals_per_config(nets, tables, kind: str) -> None:
    """The vectorised path a search uses (choice: one array per layer; NB201: memoised per
    distinct genome) returns the per-config floats, also for repeated genomes."""
    table, space = tables[kind], nets[kind].space
    X = np.vstack([space.smallest(), space.largest(), space.sample(200, 11)])
    X = np.vstack([X, X[:50]])
    want = table.predict_many(space.decode_many(X))
    for _ in range(2):  # compiled / memo filled, then warm
        np.testing.assert_allclose(table.batch_genomes(X)["latency"], want, rtol=1e-12,
                                   atol=1e-12)
    assert table._genomes.kind == {"choice": "choice", "nb201": "memo"}[kind]


def test_table_of_another_supernet_is_refused(nets, tables, tmp_path) -> None:
    nb_path = tables["nb201"].save(tmp_path / "nb.json")
    ch_path = tables["choice"].save(tmp_path / "ch.json")
    with pytest.raises(LatencyTableError, match=r'belongs to supernet .*"C": 4.*not to this one'
                                                r'.*"C": 8'):
        LatencyTable.load(nb_path, _nb201(C=8))
    other = nb201_cell_space(C=8, N=1, image_size=8, in_channels=1)
    with pytest.raises(LatencyTableError, match="whose space differs from the given space"):
        LatencyTable.load(nb_path, other)
    with pytest.raises(LatencyTableError, match="built for space 'nb201', not 'spos'"):
        LatencyTable.load(nb_path, nets["choice"])
    with torch.random.fork_rng():
        four = spos_supernet(num_layers=4, channels=8, in_channels=1, image_size=12)
    with pytest.raises(LatencyTableError, match='"num_layers": 3.*"num_layers": 4'):
        LatencyTable.load(ch_path, four)
    data = json.loads(ch_path.read_text())
    del data["entries"]["l1=conv5x5"]
    table = LatencyTable(data, nets["choice"], warn_device=False)
    with pytest.raises(LatencyTableError, match=r"part l1 \(key 'l1=conv5x5'\)"):
        table([{"l0": "skip", "l1": "conv5x5", "l2": "skip"}])
    data["supernet"] = {"kind": "choice", "genes": {"l0": ["a"]}}  # no builder: not rebuildable
    with pytest.raises(LatencyTableError, match="cannot be rebuilt here"):
        LatencyTable(data, warn_device=False)


class _NoParts(ChoiceSupernet):
    """A supernet that does not cut its sub-networks into parts (the protocol's defaults)."""

    latency_parts = SupernetBase.latency_parts
    latency_configs = SupernetBase.latency_configs


def _no_parts() -> _NoParts:
    return _NoParts([{"a": lambda: nn.Conv2d(1, 1, 3, padding=1), "b": nn.Identity}],
                    input_shape=(1, 6, 6), num_classes=2)


def test_supernet_without_parts_gets_a_clear_error_and_measured_latency(tmp_path) -> None:
    from evo_nas.config import load_config
    from evo_nas.pipeline import latency_metric

    net = _no_parts()
    assert not supports_latency_table(net)
    with pytest.raises(LatencyTableError, match="per-part latency tables need .*latency_parts"):
        net.latency_parts(net.active_config)
    with pytest.raises(LatencyTableError, match="_NoParts has no latency_parts"):
        build_table(net, **QUICK)
    cfg = load_config({"runs_dir": str(tmp_path), "name": "r"})
    assert isinstance(latency_metric(cfg, net.space, net), MeasuredLatency)


def test_pipeline_builds_and_reuses_a_table_for_nb201(tmp_path) -> None:
    from evo_nas.config import load_config
    from evo_nas.pipeline import latency_metric

    cfg = load_config({"runs_dir": str(tmp_path), "name": "r", "preset": "nb201",
                       "supernet": {"C": 4, "N": 1, "in_channels": 1, "image_size": 8},
                       "latency": {"repeats": 2, "contexts": 1}})
    net = cfg.build_supernet()
    first = latency_metric(cfg, net.space, net)
    assert isinstance(first, LatencyTable)
    assert json.loads((tmp_path / "r" / "latency_table.json").read_text())["supernet"] == \
        net.settings()
    again = latency_metric(cfg, net.space, net)
    assert again.data["created"] == first.data["created"]  # reused, not re-measured
    other = load_config({"runs_dir": str(tmp_path), "name": "r", "preset": "nb201",
                         "supernet": {"C": 8, "N": 1, "in_channels": 1, "image_size": 8},
                         "latency": {"repeats": 2, "contexts": 1}})
    big = other.build_supernet()
    rebuilt = latency_metric(other, big.space, big)  # the cached table is another supernet's
    assert rebuilt.data["supernet"]["C"] == 8


# --------------------------------------------------------------------------- CLI, device mode
def test_cli_build_and_check_nb201(tmp_path, capsys) -> None:
    out_file = tmp_path / "nb.json"
    code = main(["latency", "build", "--preset", "nb201", "--supernet",
                 "C=4,N=1,in_channels=1,image_size=8", "--repeats", "2", "--warmup", "1",
                 "--contexts", "1", "--calibration", "3", "--out", str(out_file)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "19 parts of nb201" in out
    assert json.loads(out_file.read_text())["supernet"]["C"] == 4
    code = main(["latency", "check", str(out_file), "-n", "3", "--repeats", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["space"] == "nb201"
    assert main(["latency", "build", "--preset", "tiny", "--supernet", "C=8"]) == 2
    _, err = capsys.readouterr()
    assert "apply to the nb201 preset only" in err and err.count("\n") == 1, err


def test_exported_nb201_parts_build_a_table_with_torch_only(nets, tmp_path) -> None:
    net = nets["nb201"]
    root = export_parts(net, tmp_path / "parts", contexts=1, calibration=2)
    man = json.loads((root / "manifest.json").read_text())
    assert man["supernet"] == net.settings() and len(man["parts"]) == 19
    table = LatencyTable(build_from_parts_dir(root, repeats=2, warmup=1), warn_device=False)
    assert table.data["backend"] == "torchscript" and table.space.name == "nb201"
    small, large = (net.space.decode(x) for x in (net.space.smallest(), net.space.largest()))
    assert table.predict(large) > 0 and table.predict(small) > 0


def test_calibration_never_predicts_a_negative_overhead() -> None:
    """Timing noise can tilt the least-squares line so its offset is negative, which would
    predict a negative latency for the smallest network; the fit then goes through the origin."""
    from evo_nas.latency.measure import fit_calibration

    tilted = fit_calibration([1.0, 2.0, 3.0], [0.5, 2.0, 3.5])  # LS: 1.5 x - 1.0
    assert tilted["offset_ms"] == 0.0 and tilted["scale"] == pytest.approx(15.0 / 14.0)
    kept = fit_calibration([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])  # LS: x + 0.5, kept as is
    assert kept["scale"] == pytest.approx(1.0) and kept["offset_ms"] == pytest.approx(0.5)
