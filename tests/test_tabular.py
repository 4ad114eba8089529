"""TabularProblem: user tables through the public API, the true front by enumeration, NB201."""

from __future__ import annotations

import numpy as np
import pytest
from nb201_slice import SLICE, SUB

from evo_nas.errors import DataError, GenomeError
from evo_nas.search import search
from evo_nas.space import Choice, SearchSpace
from problems import NASProblem
from problems.tabular import TabularProblem, load_nb201, nb201_space


def user_table():
    """A user's own measurements: every (depth, width) pair, as plain column lists."""
    space = SearchSpace([Choice("depth", (2, 3, 4)), Choice("width", (16, 32, 64))], name="mine")
    cols = {"depth": [], "width": [], "acc": [], "ms": []}
    for d in (2, 3, 4):
        for w in (16, 32, 64):
            cols["depth"].append(d)
            cols["width"].append(w)
            cols["acc"].append(80 + 2 * d + w / 16 - (d * w) / 64)
            cols["ms"].append(0.5 * d * w / 16)
    return space, cols


def brute_front(F):
    keep = []
    for i, f in enumerate(F):
        dominated = any(np.all(g <= f) and np.any(g < f) for j, g in enumerate(F) if j != i)
        if not dominated and not any(np.array_equal(F[k], f) for k in keep):
            keep.append(i)
    return sorted(tuple(F[i]) for i in keep)


def test_user_table_problem_through_public_api():
    space, cols = user_table()
    problem = TabularProblem(space, cols, objectives=["error", "ms"],
                             metrics={"error": lambda t: 100 - np.asarray(t["acc"]), "ms": "ms"},
                             budgets={"ms": 3.0}, cheap=["ms"])
    assert isinstance(problem, NASProblem) and len(problem) == 9
    res = search(problem, "nsga2", pop_size=4, generations=3, seed=0)
    assert all(r["ms"] <= 3.0 for r in res.pareto)
    front = problem.true_front()
    seen = {tuple(h["genome"]) for h in problem.history}
    on_front = {tuple(r["genome"]) for r in front}
    assert on_front & seen <= {tuple(r["genome"]) for r in res.pareto}  # found ones are kept
    assert problem.lookup(space.largest()[None], ["ms"])["ms"][0] == 8.0
    assert len(problem.history) == len({tuple(h["genome"]) for h in problem.history})


def test_true_front_by_enumeration_matches_brute_force():
    problem = load_nb201(SLICE, space=nb201_space(SUB), objectives=("error", "latency_raspi4"))
    assert len(problem) == 54  # the 4 rows outside the sub-space are dropped
    for objs in (("error", "flops"), ("error", "latency_raspi4"), ("error", "flops", "params")):
        F = np.column_stack([problem.values[o] for o in objs])
        front = problem.true_front(objs)
        assert sorted(tuple(r[o] for o in objs) for r in front) == brute_front(F)
        assert not problem.history  # enumeration is not an evaluation
    budgeted = load_nb201(SLICE, space=nb201_space(SUB), budgets={"flops": 100.0})
    assert all(r["flops"] <= 100.0 for r in budgeted.true_front())


def test_csv_with_comments_indices_and_missing_rows(tmp_path):
    space, cols = user_table()
    path = tmp_path / "mine.csv"
    lines = ["# measured on my board", "depth,width,acc,ms"]
    lines += [f"{d},{w},{a},{m}" for d, w, a, m in zip(*cols.values(), strict=True)][:-1]
    path.write_text("\n".join(lines) + "\n")
    problem = TabularProblem.from_csv(path, space, objectives=["acc"], cheap=["ms"])
    assert len(problem) == 8
    rec = problem.measure(space.largest()[None])[0]  # the dropped row: a recorded failure
    assert np.isnan(rec["acc"]) and problem.history[-1]["status"] == "nan"
    strict = TabularProblem.from_csv(path, space, objectives=["acc"], missing="error")
    with pytest.raises(GenomeError, match="not in the table"):
        strict.measure(space.largest()[None])
    idx = dict(cols, depth=[space["depth"].options.index(d) for d in cols["depth"]],
               width=[space["width"].options.index(w) for w in cols["width"]])
    assert len(TabularProblem(space, idx, objectives=["ms"], genes_as="index")) == 9


def test_bad_tables_are_named(tmp_path):
    space, cols = user_table()
    with pytest.raises(DataError, match="gene 'width' = 48 is not an option"):
        TabularProblem(space, dict(cols, width=[48] + cols["width"][1:]), objectives=["ms"])
    with pytest.raises(DataError, match="table rows 0 and 1 describe the same architecture"):
        TabularProblem(space, dict(cols, width=[16, 16] + cols["width"][2:]), objectives=["ms"])
    with pytest.raises(DataError, match="no column 'width'"):
        TabularProblem(space, {k: v for k, v in cols.items() if k != "width"}, objectives=["ms"])
    missing = tmp_path / "nowhere" / "nb201.csv"
    with pytest.raises(DataError, match=str(missing)):
        load_nb201(missing)


def test_nb201_loader_metrics_and_disconnected_cells():
    full = load_nb201(SLICE, objectives=("error", "latency_raspi4"), accuracy="valid")
    assert len(full) == 58 and "test_error" in full.values
    assert full.metrics["flops"].cheap and not full.metrics["latency_raspi4"].cheap
    none = nb201_space().smallest()
    assert full.lookup(none[None], ["error"])["error"][0] > 85  # disconnected: ~10 % accuracy
    pruned = load_nb201(SLICE, keep_disconnected=False)
    assert len(pruned) == 57 and np.isnan(pruned.lookup(none[None])["error"][0])
