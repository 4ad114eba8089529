"""A choice-block supernet (SPOS / FairNAS) from your own candidate modules: train it on the
bundled digits with FairNAS strict fairness, then a FLOPs-budgeted NSGA-II search from Python.

The part to adapt is between the markers: your candidate ops (a name and a zero-argument factory
each), the fixed stem, and the supernet built from them. Costs are counted per candidate once.

    python examples/choice_supernet.py [--quick] [--epochs 20] [--evals 200] [--budget 0.4]
"""

import argparse

import torch
from torch import nn

from evo_nas.costs import CostModel
from evo_nas.data import load_dataset
from evo_nas.nn import ChoiceSupernet
from evo_nas.objectives import SupernetAccuracy
from evo_nas.search import search
from evo_nas.train import TrainConfig, train_supernet
from problems import NASProblem

FULL = {"epochs": 20, "evals": 200, "pop_size": 20}
QUICK = {"epochs": 2, "evals": 16, "pop_size": 8}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run in a few seconds")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--evals", type=int, help="distinct real evaluations")
    ap.add_argument("--pop-size", type=int)
    ap.add_argument("--budget", type=float, default=0.4, help="MFLOPs (multiply-accumulates)")
    ap.add_argument("--out", default="runs/choice_example")
    args = ap.parse_args()
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    torch.manual_seed(0)
    if args.quick:
        torch.set_num_threads(1)  # 8x8 tensors: more threads only contend on a busy machine

    # ---- your supernet: candidate ops per layer, a fixed stem; the default head pools + classifies
    C = 16

    def conv_bn(cin: int, cout: int, k: int, groups: int = 1) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU())

    candidates = {
        "conv3x3": lambda: conv_bn(C, C, 3),
        "conv5x5": lambda: conv_bn(C, C, 5),
        "dwsep3x3": lambda: nn.Sequential(conv_bn(C, C, 3, groups=C), conv_bn(C, C, 1)),
        "skip": nn.Identity,  # any zero-argument factory returning a module
    }
    net = ChoiceSupernet([candidates] * 4, stem=conv_bn(1, C, 3), input_shape=(1, 8, 8),
                         num_classes=10)  # one gene per layer: l0 .. l3
    # ----------------------------------------------------------------------------------------

    data = load_dataset("digits", seed=0)  # 8x8 grey images, 10 classes
    # FairNAS: every step trains 4 paths that use each candidate of each layer exactly once
    cfg = TrainConfig(epochs=args.epochs, batch_size=64, sampler="fair", distill=False)
    train_supernet(net, data, cfg, progress=not args.quick)

    # error: accuracy after BN re-calibration per subnet; flops: exact, from per-candidate counts
    problem = NASProblem(net.space, budgets={"flops": args.budget}, objectives={
        "error": SupernetAccuracy(net, data, calib_images=500), "flops": CostModel(net.space)})
    result = search(problem, pop_size=args.pop_size, budget=args.evals, seed=0,
                    progress=not args.quick)
    print(result.table())
    result.save(args.out)
    best = result.pareto[0]
    subnet = net.extract(best["config"])  # nn.Sequential(stem, chosen ops, head), own weights
    print(f"most accurate: {100 - best['error']:.2f} % at {best['flops']:.3f} MFLOPs "
          f"({', '.join(best['config'].values())}), extracted {len(subnet)} modules")

if __name__ == "__main__":
    main()
