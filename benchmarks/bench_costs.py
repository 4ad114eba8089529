"""Cost-model figures: analytic FLOPs vs hook counting speed, and lookup-table latency accuracy.

1. Per architecture (50 random ones per preset): analytic MACs + params from the config (one
   config at a time, and vectorised over a population of 10,000 genomes with ``GenomeCosts``)
   against forward-hook counting (``count_with_hooks``) on the extracted module; medians, ratios.
2. Per preset: latency-table prediction speed, one config at a time (``LatencyTable.predict``,
   what ``predict_many`` loops over) against the vectorised genome path a search uses
   (``LatencyTable.predict_genomes`` / ``batch_genomes``) on populations of 100 and 10,000,
   side by side in one run, and the two paths' agreement. The table is the one this bench
   measured before (``latency_<preset>_eager.json``) when it is there, else a quick build
   (prediction speed does not depend on how well the parts were timed).
3. Per preset: a latency lookup table measured on this machine, checked against real timings of
   50 random sub-networks not used to build it: Kendall tau, MAPE and max error.

Writes benchmarks/results/costs.json with the machine description and a top-level ``summary``.
``--skip-latency`` skips 3 (minutes: it times every part); 1 and 2 take seconds.

    .venv/bin/python benchmarks/bench_costs.py [--presets tiny,cifar] [--n 50]
        [--build-repeats tiny=50,cifar=30] [--check-repeats tiny=100,cifar=40] [--skip-latency]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from evo_nas.costs import GenomeCosts, count_with_hooks, flops, layout_costs, params
from evo_nas.latency import LatencyTable, LatencyTableError, build_table, check_table, device_info
from evo_nas.nn import Supernet
from evo_nas.spaces import get_spec

RESULTS = Path(__file__).parent / "results"


def _per_preset(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (item.split("=") for item in text.split(",") if item)}


def flops_speed(preset: str, n: int, seed: int) -> dict:
    """Median microseconds per architecture: analytic counting (``layout_costs`` of the layout,
    as CostModel does, memo off; and the validating ``flops`` + ``params``) against hook
    counting on the extracted module (alone, and with the extraction it needs)."""
    spec = get_spec(preset)
    torch.manual_seed(seed)
    net = Supernet(spec).eval()
    sp = net.space
    cfgs = sp.decode_many(sp.sample(n, seed))
    t: dict[str, list[float]] = {"analytic": [], "analytic_validated": [], "hooks": [],
                                 "extract_hooks": []}

    def per_call(fn, inner: int) -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            best = min(best, (time.perf_counter() - t0) / inner)
        return best * 1e6

    for cfg in cfgs:
        shape = (spec.in_channels, cfg["res"], cfg["res"])
        sub = net.extract(cfg)
        assert (flops(spec, cfg), params(spec, cfg)) == count_with_hooks(sub, shape)
        t["analytic"].append(per_call(lambda c=cfg: layout_costs(spec.layout(c)), 100))
        t["analytic_validated"].append(per_call(
            lambda c=cfg: (flops(spec, c), params(spec, c)), 20))
        t["hooks"].append(per_call(lambda m=sub, s=shape: count_with_hooks(m, s), 1))
        t["extract_hooks"].append(per_call(
            lambda c=cfg, s=shape: count_with_hooks(net.extract(c), s), 1))
    med = {k: statistics.median(v) for k, v in t.items()}
    # the vectorised path a pymoo problem can use: one call for a whole population of genomes
    genome_costs = GenomeCosts(sp)
    pop = sp.sample(10_000, seed)
    macs, nparams = genome_costs(pop[:n])
    assert [(int(a), int(b)) for a, b in zip(macs, nparams, strict=True)] == [
        layout_costs(spec.layout(c)) for c in sp.decode_many(pop[:n])]
    med["analytic_vectorised_10k"] = per_call(lambda: genome_costs(pop), 3) / len(pop)
    return {"n_archs": n, **{f"{k}_us_median": v for k, v in med.items()},
            "ratio_hooks_over_analytic_vectorised":
                med["hooks"] / med["analytic_vectorised_10k"],
            "ratio_hooks_over_analytic": med["hooks"] / med["analytic"],
            "ratio_hooks_over_analytic_validated": med["hooks"] / med["analytic_validated"],
            "ratio_extract_hooks_over_analytic": med["extract_hooks"] / med["analytic"],
            "agree_on_every_arch": True}


def lut_speed(preset: str, n: int, seed: int) -> dict:
    """Median microseconds per config of latency-table prediction: one config at a time
    against the vectorised genome path (compiled on first use; its one-off cost is reported
    apart), measured in the same run on the same table, and the largest difference between
    the two paths' predictions."""
    path = RESULTS / f"latency_{preset}_eager.json"
    source = path.name
    try:
        table = LatencyTable.load(path, get_spec(preset).space(), warn_device=False)
    except LatencyTableError:
        table, source = build_table(preset, repeats=3, warmup=1, contexts=1, calibration=4), \
            "quick build (repeats 3)"
    sp = table.space
    pop = sp.sample(10_000, seed)
    X = sp.canonical(pop[:n])
    cfgs = sp.decode_many(X)
    t0 = time.perf_counter()
    batched = table.predict_genomes(X)  # compiles the table's genome form
    compile_s = time.perf_counter() - t0
    per_config = table.predict_many(cfgs)
    assert np.allclose(batched, per_config, rtol=1e-12, atol=1e-12)

    def median_us(fn, count: int, repeats: int) -> float:
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - t0) / count * 1e6)
        return statistics.median(runs)

    one = [median_us(lambda c=c: table.predict(c), 1, 21) for c in cfgs]
    per = statistics.median(one)
    b100 = median_us(lambda: table.predict_genomes(pop[:100]), 100, 21)
    b10k = median_us(lambda: table.predict_genomes(pop), len(pop), 7)
    return {"table": source, "parts": len(table.entries), "n_archs": n,
            "per_config_us_median": per, "batched_100_us_median": b100,
            "batched_10k_us_median": b10k, "speedup_batched_100": per / b100,
            "speedup_batched_10k": per / b10k, "compile_seconds": compile_s,
            "genome_form": table._genomes.kind,
            "max_abs_diff_ms": float(np.abs(batched - per_config).max())}


def lut_accuracy(preset: str, n: int, build_repeats: int, check_repeats: int,
                 seed: int) -> dict:
    t0 = time.perf_counter()
    table = build_table(preset, repeats=build_repeats, seed=seed)
    built = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.save(RESULTS / f"latency_{preset}_eager.json")
    t0 = time.perf_counter()
    rep = check_table(table, n=n, seed=seed + 1, repeats=check_repeats)
    checked = time.perf_counter() - t0
    keep = ("n", "kendall_tau", "mape_%", "max_abs_err_ms", "max_rel_err_%",
            "mape_uncalibrated_%", "measured_ms", "backend", "batch_size", "threads", "stat",
            "repeats")
    cal = table.data["calibration"]
    return {**{k: rep[k] for k in keep}, "parts": len(table.entries),
            "chains": table.data.get("chains"), "build_repeats": build_repeats,
            "calibration": {"scale": cal["scale"], "offset_ms": cal["offset_ms"],
                            "n_networks": cal["n_networks"]},
            "build_seconds": round(built, 1), "check_seconds": round(checked, 1),
            "table_file": f"latency_{preset}_eager.json"}


def summary(doc: dict) -> dict:
    """The headline figures per preset, from whatever sections ``doc`` holds."""
    out: dict = {}
    for p, f in doc.get("flops", {}).items():
        out.setdefault(p, {})["hooks_over_analytic_vectorised"] = round(
            f["ratio_hooks_over_analytic_vectorised"], 1)
    for p, f in doc.get("latency_speed", {}).items():
        out.setdefault(p, {}).update({
            "latency_per_config_us": round(f["per_config_us_median"], 2),
            "latency_batched_100_us": round(f["batched_100_us_median"], 3),
            "latency_batched_10k_us": round(f["batched_10k_us_median"], 3),
            "latency_speedup_batched_100": round(f["speedup_batched_100"], 1),
            "latency_speedup_batched_10k": round(f["speedup_batched_10k"], 1),
            "latency_paths_max_abs_diff_ms": f["max_abs_diff_ms"]})
    for p, f in doc.get("latency_table", {}).items():
        out.setdefault(p, {}).update({"latency_table_kendall_tau": round(f["kendall_tau"], 3),
                                      "latency_table_mape_%": round(f["mape_%"], 2)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="tiny,cifar")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--build-repeats", default="tiny=50,cifar=30")
    ap.add_argument("--check-repeats", default="tiny=100,cifar=40")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "costs.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    presets = [p for p in args.presets.split(",") if p]
    build_r, check_r = _per_preset(args.build_repeats), _per_preset(args.check_repeats)
    out = Path(args.out)
    # figures of presets not run this time are kept (one preset can be re-measured alone)
    doc: dict = json.loads(out.read_text()) if out.is_file() else {}
    doc.pop("command", None)
    doc["machine"] = device_info(1)
    doc.setdefault("flops", {})
    doc.setdefault("latency_speed", {})
    doc.setdefault("latency_table", {})
    command = "benchmarks/bench_costs.py " + " ".join(
        (f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')} {v}")
        for k, v in vars(args).items() if k != "out" and v is not False)

    def stamp() -> dict:
        return {"command": command, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "load_average_1min": round(os.getloadavg()[0], 2)}

    for p in presets:
        doc["flops"][p] = {**flops_speed(p, args.n, args.seed), **stamp()}
        print(p, "FLOPs", json.dumps(doc["flops"][p]), flush=True)
    for p in presets:
        doc["latency_speed"][p] = {**lut_speed(p, args.n, args.seed), **stamp()}
        print(p, "LUT speed", json.dumps(doc["latency_speed"][p]), flush=True)
    if not args.skip_latency:
        for p in presets:
            start = stamp()
            fig = lut_accuracy(p, args.n, build_r.get(p, 50), check_r.get(p, 50), args.seed)
            doc["latency_table"][p] = {**fig, **start,
                                       "load_average_1min_at_end": stamp()["load_average_1min"]}
            print(p, "LUT", json.dumps(doc["latency_table"][p]), flush=True)
    doc.pop("summary", None)
    doc = {"summary": summary(doc), **doc}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
