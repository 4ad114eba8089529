"""What a new sub-network shape costs: one training step on sub-networks never seen before vs the
same sub-networks again, per precision (fp32 / fp16 autocast) and memory layout (NCHW /
channels-last).

A weight-sharing supernet meets new convolution shapes at almost every step, so a backend that
plans or compiles per shape (cuDNN on CUDA) pays again and again; this is why ``TrainConfig``
trains in fp32 NCHW on CUDA by default. Each mode runs in a fresh process (per-process caches),
one after the other, on the same seeded sub-networks and one random batch of 128 images at the
preset's largest resolution. Writes benchmarks/results/shapes_<device>.json.

    .venv/bin/python benchmarks/bench_shapes.py [--device cuda] [--preset cifar] [--new 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
MODES = {"fp32": (False, False), "fp32+channels_last": (False, True),
         "amp": (True, False), "amp+channels_last": (True, True)}


def worker(mode: str, preset: str, device: str, n_new: int) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from evo_nas.nn import Supernet, resize
    from evo_nas.spaces import get_spec

    amp, channels_last = MODES[mode]
    torch.set_num_threads(1)
    spec = get_spec(preset)
    space = spec.space()
    torch.manual_seed(0)
    net = Supernet(spec).to(device)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    configs = space.decode_many(space.sample(n_new, rng))
    size = max(spec.resolutions)
    x = torch.randn(128, spec.in_channels, size, size, device=device)
    y = torch.randint(0, 10, (128,), device=device)
    autocast = ((lambda: torch.autocast("cuda", dtype=torch.float16)) if amp
                else contextlib.nullcontext)

    def step(c: dict) -> float:
        t0 = time.perf_counter()
        net.set_active(c)
        xi = resize(x, c["res"])
        if channels_last:
            xi = xi.contiguous(memory_format=torch.channels_last)
        with autocast():
            loss = F.cross_entropy(net(xi).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    step(space.decode(space.smallest()))  # CUDA context, allocator: not a shape cost
    new = [step(c) for c in configs]
    again = [step(c) for c in configs]
    return {"new_shape_step_ms": [round(t * 1e3, 2) for t in new],
            "repeat_step_ms": [round(t * 1e3, 2) for t in again],
            "new_median_ms": round(statistics.median(new) * 1e3, 2),
            "repeat_median_ms": round(statistics.median(again) * 1e3, 2),
            "new_over_repeat": round(statistics.median(new) / statistics.median(again), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--preset", default="cifar")
    ap.add_argument("--new", type=int, default=5, help="sub-networks never seen before")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.preset, args.device, args.new)))
        return
    import torch  # noqa: F401  (machine_info records the torch this process imported)

    modes = [m for m in args.modes.split(",")
             if args.device.startswith("cuda") or not MODES[m][0]]  # no fp16 autocast on CPU
    rows = {}
    for mode in modes:
        out = subprocess.run([sys.executable, __file__, "--worker", mode, "--preset", args.preset,
                              "--device", args.device, "--new", str(args.new)],
                             capture_output=True, text=True, check=True)
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{mode:<20} new shape {rows[mode]['new_median_ms']:9.1f} ms   "
              f"repeat {rows[mode]['repeat_median_ms']:7.1f} ms", flush=True)
    from evo_nas.machine import machine_info

    info = machine_info(args.device)
    out = Path(args.out or RESULTS / f"shapes_{args.device.split(':')[0]}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "shapes", "preset": args.preset, "batch_size": 128,
        "what": "one SGD step (forward, backward, update) on a sub-network shape never seen "
                "before vs the same sub-networks again; medians over --new sub-networks; each "
                "mode in a fresh process",
        "machine": info, "results": rows, "date": time.strftime("%Y-%m-%d")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
