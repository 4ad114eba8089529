"""Supernet training throughput (images/s) on CPU or CUDA, for the tiny and cifar presets.

tiny trains on the bundled digits. cifar has no data set on these machines, so it trains on
random tensors of CIFAR-10's shape: a throughput figure only, and the JSON says so. A step trains
several sub-networks (sandwich rule: largest, smallest, 2 random); images/s counts each image once
per step, sub-network images/s counts it once per sub-network trained. The TrainConfig defaults
apply (on CUDA: fp32, NCHW; see bench_shapes.py for why).

    .venv/bin/python benchmarks/bench_train.py [--device cuda] [--epochs 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from evo_nas.data import Dataset, Split, load_dataset
from evo_nas.machine import machine_info
from evo_nas.nn import Supernet
from evo_nas.train import TrainConfig, train_supernet

RESULTS = Path(__file__).parent / "results"


def synthetic_cifar(n: int = 5000) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    split = Split(x, y)
    return Dataset("synthetic-cifar-shape", split, Split(x[:500], y[:500]),
                   Split(x[:500], y[:500]), 3, 10, 32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=2, help="the last epoch is timed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--presets", default="tiny,cifar", help="cifar on CPU takes minutes")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = {}
    for preset in args.presets.split(","):
        data = load_dataset("digits") if preset == "tiny" else synthetic_cifar()
        cfg = TrainConfig(epochs=args.epochs, batch_size=128, sampler="sandwich",
                          n_random=2, seed=0)  # 4 sub-networks per step, as recorded
        torch.manual_seed(0)
        net = Supernet(preset)
        t_all = time.perf_counter()
        train_supernet(net, data, TrainConfig(**{**cfg.__dict__, "epochs": args.epochs - 1}),
                       device=args.device) if args.epochs > 1 else None
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_supernet(net, data, TrainConfig(**{**cfg.__dict__, "epochs": 1}), device=args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        n = len(data.train)
        subnets = 2 + cfg.n_random
        cuda = args.device.startswith("cuda")
        rows[preset] = {"data": data.name, "sampler": cfg.sampler, "train_images": n,
                        "batch_size": cfg.batch_size, "amp": cfg.amp and cuda,
                        "channels_last": cfg.channels_last and not cuda,
                        "subnets_per_step": subnets, "epoch_seconds": round(dt, 3),
                        "images_per_s": round(n / dt, 1),
                        "subnet_images_per_s": round(n * subnets / dt, 1),
                        # includes the untimed first epochs: on CUDA mostly the one-off cost
                        # of each new sub-network shape (bench_shapes.py)
                        "total_seconds": round(time.perf_counter() - t_all, 2)}
        print(preset, rows[preset])
    info = machine_info(args.device)
    out = Path(args.out or RESULTS / f"train_{args.device.split(':')[0]}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "train", "machine": info, "results": rows,
                               "date": time.strftime("%Y-%m-%d")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
