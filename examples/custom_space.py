"""A custom search space and problem in a few lines, searched with constrained NSGA-II.

The "network" is a stack of up to 4 layers; each layer has a width and a kernel size that only
matter when the depth reaches it. Error and cost here are cheap formulas standing in for your own
evaluator (any callable taking a list of config dicts).

    python examples/custom_space.py [--evals 300]
"""

import argparse

from evo_nas.search import search
from evo_nas.space import Choice, SearchSpace
from problems import NASProblem

space = SearchSpace([
    Choice("depth", (1, 2, 3, 4)),
    *[Choice(f"width{i}", (16, 32, 64, 128), active_if=("depth", tuple(range(i + 1, 5))))
      for i in range(4)],
    *[Choice(f"kernel{i}", (3, 5, 7), active_if=("depth", tuple(range(i + 1, 5))))
      for i in range(4)],
], name="toy-stack")


def cost(configs):
    """Multiply-accumulates of a toy conv stack on 16x16 inputs, in millions."""
    out = []
    for c in configs:
        ch, total = 3, 0
        for i in range(c["depth"]):
            total += 16 * 16 * ch * c[f"width{i}"] * c[f"kernel{i}"] ** 2
            ch = c[f"width{i}"]
        out.append(total / 1e6)
    return out


cost.cheap = True  # analytic: lets the search check the budget before it starts


def error(configs):
    """A stand-in for validation error that falls with depth, width and receptive field."""
    return [30.0 / (1 + sum(c[f"width{i}"] * c[f"kernel{i}"] for i in range(c["depth"])) / 100)
            for c in configs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--evals", type=int, default=300, help="distinct real evaluations")
    args = ap.parse_args()
    problem = NASProblem(space, objectives={"error": error, "mmacs": cost},
                         budgets={"mmacs": 20.0})
    result = search(problem, pop_size=20, budget=args.evals, seed=0)
    print(f"{space.cardinality()} architectures in the space")
    print(result.table())
    best = result.pareto[0]["config"]
    print("most accurate within budget:", {k: v for k, v in best.items()})


if __name__ == "__main__":
    main()
