"""Search your own table of measured results, under a hard latency budget.

You measured some architectures (accuracy, latency on your board) and keep them in a CSV. Describe
the search space, say which columns are objectives and which metric has a budget, and search the
table as if it were the real thing; the exact Pareto front is known by enumeration, so you can
see how close the search came. Here the "measurements" are synthetic and written to a temporary
CSV; pass ``--csv`` with columns depth, width, kernel, acc, latency_ms to use yours.

    python examples/tabular_search.py [--quick] [--csv my_results.csv]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from evo_nas.algorithms import RegularizedEvolution
from evo_nas.search import search
from evo_nas.space import Choice, SearchSpace
from operators import BudgetRepair, BudgetSampling
from problems.tabular import TabularProblem

SPACE = SearchSpace([Choice("depth", (2, 3, 4, 5)), Choice("width", (16, 24, 32, 48, 64)),
                     Choice("kernel", (3, 5, 7))], name="my-board")


def write_fake_measurements(path: Path) -> Path:
    """Stand-in for real measurements: accuracy saturates with size, latency grows with it."""
    rng = np.random.default_rng(0)
    lines = ["# synthetic measurements (depth, width, kernel) -> accuracy %, latency ms",
             "depth,width,kernel,acc,latency_ms"]
    for d in SPACE["depth"].options:
        for w in SPACE["width"].options:
            for k in SPACE["kernel"].options:
                size = d * w * k * k / (5 * 64 * 49)
                acc = 95 - 12 * np.exp(-4 * size) + rng.normal(0, 0.3)
                ms = 0.4 + 6 * size * (1 + rng.normal(0, 0.05))
                lines.append(f"{d},{w},{k},{acc:.2f},{ms:.3f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, help="your table (default: synthetic measurements)")
    ap.add_argument("--budget-ms", type=float, default=2.0, help="latency budget (ms)")
    ap.add_argument("--quick", action="store_true", help="a small evaluation budget only")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.csv or write_fake_measurements(Path(tmp) / "measurements.csv")
        problem = TabularProblem.from_csv(
            path, SPACE, objectives=["error", "latency_ms"],
            metrics={"error": lambda t: 100 - np.asarray(t["acc"], dtype=float),
                     "latency_ms": "latency_ms"},
            budgets={"latency_ms": args.budget_ms},
            cheap=["latency_ms"],  # a latency table is cheap: the repair may consult it freely
        )
    algo = RegularizedEvolution(SPACE, pop_size=12, sample_size=4,
                                weights="random",  # a fresh scalarisation each generation
                                repair=BudgetRepair.from_problem(problem),
                                sampling=BudgetSampling.from_problem(problem))
    # budget: distinct real evaluations (table lookups of the expensive columns), exactly
    result = search(problem, algo, budget=20 if args.quick else 40, seed=0)
    print(result.table())

    true = problem.true_front()
    found = {tuple(r["genome"]) for r in result.pareto}
    hits = sum(tuple(r["genome"]) in found for r in true)
    print(f"\n{len(problem)} architectures in the table, {result.info['real_evaluations']} "
          f"evaluated; "
          f"{hits} of the {len(true)} truly Pareto-optimal ones within "
          f"{args.budget_ms} ms found (budget repairs: {result.info['budget_repair']['repaired']})")


if __name__ == "__main__":
    main()
