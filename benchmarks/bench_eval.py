"""Time scoring one sub-network through the supernet vs through its extracted static copy.

Both paths do the same work: BN re-calibration on the same 500 training images, then validation
on the digits validation split. Timings are interleaved (A, B, A, B, ...) so machine noise hits
both alike; medians and their ratio go to benchmarks/results/eval.json.

    .venv/bin/python benchmarks/bench_eval.py [--repeats 7] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from evo_nas.data import load_dataset
from evo_nas.machine import machine_info
from evo_nas.nn import Supernet, recalibrate_bn
from evo_nas.objectives import SupernetAccuracy
from evo_nas.train import TrainConfig, train_supernet

RESULTS = Path(__file__).parent / "results"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=3, help="supernet training before timing")
    ap.add_argument("--out", default=str(RESULTS / "eval.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    net = Supernet("tiny")
    train_supernet(net, data, TrainConfig(epochs=args.epochs, seed=0), device=args.device)
    acc = SupernetAccuracy(net, data, calib_images=500, device=args.device)
    space = net.space
    configs = {"largest": space.decode(space.largest()),
               "smallest": space.decode(space.smallest()),
               "random": space.decode(space.sample(1, 0)[0])}

    def through_supernet(config):
        return acc.evaluate(config)[0]

    @torch.no_grad()
    def through_extracted(config):
        sub = net.extract(config).to(args.device)
        calib, evals = acc.inputs(config)
        recalibrate_bn(sub, calib)
        sub.eval()
        correct = sum(int((sub(x).argmax(1) == y.to(args.device)).sum())
                      for x, y in zip(evals, acc.eval_split.y.split(acc.batch_size), strict=True))
        return 100.0 * correct / len(acc.eval_split)

    rows = {}
    for name, config in configs.items():
        through_supernet(config)  # warm-up, also fills the resized-image cache
        through_extracted(config)
        times = {"supernet": [], "extracted": []}
        accs = {}
        for _ in range(args.repeats):
            for label, fn in (("supernet", through_supernet), ("extracted", through_extracted)):
                sync(args.device)
                t0 = time.perf_counter()
                accs[label] = fn(config)
                sync(args.device)
                times[label].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        rows[name] = {"supernet_ms_median": round(med["supernet"], 2),
                      "extracted_ms_median": round(med["extracted"], 2),
                      "ratio_supernet_over_extracted": round(med["supernet"] / med["extracted"], 3),
                      "supernet_ms_all": [round(t * 1e3, 2) for t in times["supernet"]],
                      "extracted_ms_all": [round(t * 1e3, 2) for t in times["extracted"]],
                      "accuracy_supernet": accs["supernet"],
                      "accuracy_extracted": accs["extracted"],
                      "res": config["res"]}
        print(f"{name:8s} supernet {med['supernet']:7.1f} ms  extracted {med['extracted']:7.1f} ms"
              f"  ratio {med['supernet'] / med['extracted']:.2f}  "
              f"acc {accs['supernet']:.2f} / {accs['extracted']:.2f}")
    doc = {"benchmark": "eval", "what": "one subnet: BN re-calibration on 500 train images + "
           "validation on 360 digits images (tiny preset)", "repeats": args.repeats,
           "train_epochs_before_timing": args.epochs, "calib_images": 500,
           "val_images": len(acc.eval_split), "machine": machine_info(args.device), "results": rows,
           "date": time.strftime("%Y-%m-%d")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
