"""Train the tiny supernet on the bundled digits, then a FLOPs-budgeted NSGA-II search from Python.

    python examples/digits_search.py [--epochs 20] [--evals 200] [--budget 1.0]
"""

import argparse

import torch

from evo_nas.costs import CostModel
from evo_nas.data import load_dataset
from evo_nas.nn import Supernet
from evo_nas.objectives import SupernetAccuracy
from evo_nas.search import search
from evo_nas.train import TrainConfig, train_supernet
from problems import NASProblem


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--evals", type=int, default=200, help="distinct real evaluations")
    ap.add_argument("--pop-size", type=int, default=20)
    ap.add_argument("--budget", type=float, default=1.0, help="MFLOPs")
    ap.add_argument("--out", default="runs/digits_example")
    args = ap.parse_args()

    data = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    net = Supernet("tiny")
    train_supernet(net, data, TrainConfig(epochs=args.epochs), progress=True)

    space = net.space
    accuracy = SupernetAccuracy(net, data, calib_images=500)  # BN re-calibrated per subnet
    costs = CostModel(space)  # exact analytic MFLOPs / Mparams
    problem = NASProblem(space, objectives={"error": accuracy, "flops": costs},
                         budgets={"flops": args.budget})
    result = search(problem, pop_size=args.pop_size, budget=args.evals, seed=0,
                    progress=True)
    print(result.table())
    result.save(args.out)
    best = result.pareto[0]
    subnet = net.extract(best["config"])  # a plain nn.Module with the inherited weights
    print(f"most accurate: {100 - best['error']:.2f} % at {best['flops']:.3f} MFLOPs; "
          f"extracted {sum(p.numel() for p in subnet.parameters())} parameters")


if __name__ == "__main__":
    main()
