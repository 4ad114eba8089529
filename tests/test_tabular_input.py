"""User tables from CSV files: the module's example runs, bad files are one-line errors naming
file/line/column, and NB201 tables take optional and extra metric columns."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from nb201_slice import SLICE

import problems.tabular as tabular
from evo_nas.errors import ConfigError, DataError
from evo_nas.space import Choice, SearchSpace
from problems.tabular import (
    NB201_CODES,
    NB201_OP_CODE,
    TabularProblem,
    load_nb201,
    read_csv_columns,
)

SPACE = SearchSpace([Choice("depth", (2, 3)), Choice("width", (16, 32))], name="mine")
GOOD = "depth,width,acc,ms\n2,16,70.1,1.2\n2,32,74.0,2.5\n3,16,72.3,1.9\n3,32,76.8,3.9\n"


def test_module_docstring_example_runs():
    """The README-style example (metric arithmetic on CSV columns) used to raise TypeError."""
    result = doctest.testmod(tabular, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


def test_csv_metric_functions_get_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(GOOD)
    p = TabularProblem.from_csv(path, SPACE, objectives=["error"],
                                metrics={"error": lambda t: 100 - t["acc"], "ms": "ms"})
    assert np.allclose(sorted(p.values["error"]), [23.2, 26.0, 27.7, 29.9])


def test_bom_and_float_spelled_options_are_accepted(tmp_path):
    path = tmp_path / "excel.csv"
    body = GOOD.replace("2,16,", "2.0,16.0,", 1)
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    p = TabularProblem.from_csv(path, SPACE, objectives=["acc"])
    assert len(p) == 4 and set(p.values) == {"acc", "ms"}  # "\ufeffdepth" read as "depth"
    assert p.lookup(np.array([[0, 0]]), ["acc"])["acc"][0] == pytest.approx(70.1)


@pytest.mark.parametrize("content, match", [
    (b"depth,width,acc,ms\n", r"'.*bad\.csv' has a header but no data rows"),
    (b"# only a comment\n\n", r"'.*bad\.csv' has no header row"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"'.*bad\.csv' is binary \(NUL byte at offset 8\)"),
    (b"depth,width\n\xff\xfe2,16\n", r"'.*bad\.csv' is not UTF-8 text \(byte 12"),
    (b"depth,width,acc,acc\n2,16,1,2\n",
     r"'.*bad\.csv', header \(line 1\): column name 'acc' appears twice \(columns 3 and 4\)"),
    (b"depth,,acc\n2,16,1\n", r"header \(line 1\): column 2 has an empty name"),
    (b"depth,width,acc,ms\n2,16,70,1\n2,32,,2\n",
     r"'.*bad\.csv', line 3: empty cell in column 'acc'"),
    (b"# note\ndepth,width,acc,ms\n2,16,70,1\n2,32,71\n",
     r"'.*bad\.csv', line 4: 3 cells, header has 4"),
    (b"depth,width,acc,ms\n2,16,70,1\n2,48,71,2\n",
     r"'.*bad\.csv': data row 2: gene 'width' = '48' is not an option"),
    (b"depth,width,acc,ms\n2,16,70,1\n2,16,71,2\n",
     r"'.*bad\.csv': data rows 1 and 2 describe the same architecture"),
])
def test_bad_csv_files_are_one_line_data_errors(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match) as info:
        TabularProblem.from_csv(path, SPACE, objectives=["acc"])
    assert "\n" not in str(info.value)


def test_from_csv_rejects_a_non_space(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(GOOD)
    with pytest.raises(ConfigError, match="space must be a SearchSpace, got dict"):
        TabularProblem.from_csv(path, {"depth": (2, 3)}, objectives=["acc"])


def test_read_csv_columns_keeps_text():
    cols = read_csv_columns(SLICE)
    assert cols["op0"][0].isdigit() and len(cols["op0"]) == 58


def test_nb201_op_codes_are_public():
    assert NB201_OP_CODE["nor_conv_3x3"] == 3 and NB201_CODES[3] == "nor_conv_3x3"
    assert all(NB201_CODES[c] == n for n, c in NB201_OP_CODE.items())
    assert {"NB201_CODES", "NB201_OP_CODE", "NB201_COLUMNS"} <= set(tabular.__all__)


def _slice_with(tmp_path, drop=(), add=None):
    cols = read_csv_columns(SLICE)
    for c in drop:
        del cols[c]
    if add:
        cols |= add
    path = tmp_path / "nb201_part.csv"
    rows = zip(*cols.values(), strict=True)
    path.write_text(",".join(cols) + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return path


def test_load_nb201_takes_optional_and_extra_columns(tmp_path):
    extra = {"jetson_ms": [str(1.0 + i / 10) for i in range(58)]}
    path = _slice_with(tmp_path, drop=("hwnb_fpga_ms", "hwnb_eyeriss_ms", "params_mb",
                                       "c10valid_valid_acc"), add=extra)
    p = load_nb201(path, objectives=("error", "jetson_ms"))
    assert "jetson_ms" in p.values and "latency_fpga" not in p.values
    assert p.metrics["flops"].cheap and "params" not in p.values
    named = load_nb201(path, objectives=("error", "ms"), columns={"ms": "jetson_ms"})
    assert set(named.values) == {"error", "ms"}
    assert np.allclose(np.sort(named.values["ms"]), np.sort(p.values["jetson_ms"]))
    with pytest.raises(DataError, match=r"lacks columns \['hwnb_fpga_ms'\]"):
        load_nb201(path, columns=["hwnb_fpga_ms"])
    with pytest.raises(ConfigError, match="objective 'latency_fpga' is not a table metric"):
        load_nb201(path, objectives=("error", "latency_fpga"))


def test_load_nb201_accepts_op_names_and_float_codes(tmp_path):
    cols = read_csv_columns(SLICE)
    names = {f"op{i}": [NB201_CODES[int(v)] for v in cols[f"op{i}"]] for i in range(3)}
    floats = {f"op{i}": [f"{v}.0" for v in cols[f"op{i}"]] for i in range(3, 6)}
    p = load_nb201(_slice_with(tmp_path, add=names | floats))
    ref = load_nb201(SLICE)
    assert len(p) == len(ref) == 58
    assert np.allclose(np.sort(p.values["error"]), np.sort(ref.values["error"]))
    bad = _slice_with(tmp_path, add={"op0": ["7"] + cols["op0"][1:]})
    with pytest.raises(DataError, match=r"column op0, data row 1: '7' is not an NB201 op code"):
        load_nb201(bad)
