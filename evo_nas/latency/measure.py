"""Latency measurement of torch modules, with the device it was measured on.

This module imports only torch and the standard library (onnxruntime lazily, when asked for), so
it doubles as the standalone script that builds a latency table on a target device from an
exported part set (see :func:`evo_nas.latency.export_parts`)::

    python measure.py PARTS_DIR --threads 1 --out table.json

Timing rules, each chosen because this 2-core shared machine showed the problem without it:

* a fixed torch thread count, warm-up calls, ``torch.inference_mode``, the GC paused;
* many single-call timings, summarised by the median and IQR (or the lower quartile);
* several networks timed *interleaved*, round after round in random order, so a load change
  hits all of them alike and their ranking survives it;
* every timed pass right after an untimed pass of the same network (the steady state of repeated
  inference), which removed a ~2 % dependence on where the weights lie in memory;
* with one thread, the thread's CPU time as the clock: the latency of single-threaded inference,
  without the time other processes hold the core (the wall clock is used for ``threads > 1``);
* glibc's malloc set to reuse freed memory (:func:`steady_allocator`): by default blocks above
  128 KiB are mapped and faulted in afresh on every call, a cost that depends on the neighbours'
  allocations and not on the block.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "BACKENDS",
    "TABLE_FORMAT",
    "PARTS_FORMAT",
    "cpu_model",
    "device_info",
    "device_name",
    "prepare",
    "onnx_runner",
    "time_chains",
    "clock_for",
    "steady_allocator",
    "STATS",
    "summarize",
    "measure_latency",
    "measure_many",
    "fit_calibration",
    "table_from_parts",
    "build_from_parts_dir",
    "main",
]

BACKENDS = ("eager", "torchscript", "onnxruntime")
TABLE_FORMAT = "evo-nas-latency-table/1"
PARTS_FORMAT = "evo-nas-latency-parts/1"


# --------------------------------------------------------------------------- device
def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "processor\t: ")):
                    value = line.split(":", 1)[1].strip()
                    if value and not value.isdigit():
                        return value
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def device_info(threads: int, backend: str = "eager", batch_size: int = 1) -> dict[str, Any]:
    """Everything a latency figure depends on besides the model: recorded with every figure."""
    info: dict[str, Any] = {
        "name": "", "cpu": cpu_model(), "platform": platform.platform(),
        "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__,
        "threads": int(threads), "backend": backend, "batch_size": int(batch_size),
        "clock": clock_for(threads), "allocator": steady_allocator(),
    }
    if backend == "onnxruntime":
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
    info["name"] = device_name(info)
    return info


def device_name(info: dict[str, Any]) -> str:
    """A short, human-readable device identity: CPU model and OS/architecture."""
    system = str(info.get("platform", "")).split("-")[0]
    return f"{info.get('cpu', 'unknown cpu')} ({system} {info.get('machine', '')})".strip()


_ALLOCATOR: list[str] = []


def steady_allocator() -> str:
    """Make glibc's malloc keep and reuse freed memory for the rest of the process (no-op on
    other C libraries); return a description of the allocator state for the device record.

    By default glibc maps every block above 128 KiB afresh and returns it on free, so a layer
    whose activations are that large pays first-touch page faults on each call, or not,
    depending on what its neighbours allocated: the same block measured 0.4 ms after one
    neighbour and 0.7 ms after another here. A warmed-up inference process reuses its heap,
    so the table and the checks measure that steady state: mmap threshold 32 MiB (glibc's
    maximum) and no trimming. Memory freed by the process is then kept, not returned.
    """
    if _ALLOCATOR:
        return _ALLOCATOR[0]
    desc = "system default"
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        ok = (mallopt(m_mmap_threshold, 32 * 1024 * 1024) == 1
              and mallopt(m_trim_threshold, 1 << 30) == 1
              and mallopt(m_top_pad, 16 * 1024 * 1024) == 1)
        if ok:
            desc = "glibc malloc: mmap_threshold 32 MiB, trim_threshold 1 GiB, top_pad 16 MiB"
    except (OSError, AttributeError):
        pass
    _ALLOCATOR.append(desc)
    return desc


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """torch.jit and the legacy ONNX exporter warn that they are deprecated; the calls work."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


# --------------------------------------------------------------------------- backends
def prepare(module: torch.nn.Module, example: torch.Tensor, backend: str = "eager",
            threads: int = 1, onnx_cache: dict[int, bytes] | None = None
            ) -> tuple[Callable[[Any], Any], Any]:
    """``(run, x)``: ``run(x)`` is one forward of ``module`` the way ``backend`` runs it, ``x``
    the example in that backend's input type; ``run``'s output is a valid input of the next part.

    ``eager``: the module in eval mode. ``torchscript``: scripted (or already a ScriptModule),
    then frozen, which folds BatchNorm into the convolutions as deployment does.
    ``onnxruntime``: exported to ONNX (bytes memoised in ``onnx_cache`` by module id) and run by
    an InferenceSession limited to ``threads`` intra-op threads (numpy in and out).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: choose one of {list(BACKENDS)}")
    module = module.eval()
    if backend == "eager":
        return module, example
    if backend == "torchscript":
        with _quiet_jit():
            scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(
                module)
            frozen = torch.jit.freeze(scripted.eval())
        return frozen, example
    cache = {} if onnx_cache is None else onnx_cache
    if id(module) not in cache:
        buf = io.BytesIO()
        with _quiet_jit():
            _onnx_export(module, example, buf)
        cache[id(module)] = buf.getvalue()
    return onnx_runner(cache[id(module)], threads), example.detach().cpu().numpy()


def onnx_runner(model: bytes | str, threads: int = 1) -> Callable[[Any], Any]:
    """An onnxruntime session (``threads`` intra-op threads) as ``numpy array -> numpy array``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def _onnx_export(module: torch.nn.Module, example: torch.Tensor, target: Any) -> None:
    """ONNX export with a dynamic batch axis; the TorchScript-based exporter needs no onnxscript,
    the torch.export-based one is the fallback where the former is gone."""
    kwargs: dict[str, Any] = dict(input_names=["input"], output_names=["output"],
                                  dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    try:
        torch.onnx.export(module, (example,), target, dynamo=False, **kwargs)
    except TypeError:  # an old torch without the ``dynamo`` argument
        torch.onnx.export(module, (example,), target, **kwargs)


# --------------------------------------------------------------------------- timing
Chain = tuple[Sequence[Callable[[Any], Any]], Any]
"""Callables run one after another, each on the previous one's output, starting from an input."""


def clock_for(threads: int) -> str:
    """The clock a measurement with ``threads`` threads uses (see :func:`time_chains`)."""
    return "thread" if int(threads) == 1 else "wall"


def time_chains(chains: Sequence[Chain], repeats: int = 50, warmup: int = 10, seed: int = 0,
                threads: int = 1, prime: bool = True,
                clock: str | None = None) -> list[list[list[float]]]:
    """Single-call timings in ms of every callable of every chain, ``repeats`` rounds.

    ``samples[c][i]`` holds the timings of callable ``i`` of chain ``c``. A chain is timed in one
    pass with a clock read between its callables, so each one is timed in the context it has in
    a network: its real input, right after its real predecessor. Rounds visit the chains in a
    fresh random order, so a load change on the machine hits all of them alike, which keeps the
    *ranking* of many similar modules stable under noise.

    With ``prime`` (default) each timed pass directly follows an untimed pass of the same chain:
    the steady state of repeated inference, with that network's weights in cache. Without it the
    figures depend on what ran before and on where the weights happen to lie in memory: two
    copies of one network then differed by ~2 % here (Kendall tau 0.83 between copies of 50
    networks, 0.91 primed, as good as two halves of one copy's repeats).

    ``clock`` (default :func:`clock_for`): ``"thread"`` reads the calling thread's CPU time,
    which is the latency when one thread does all the work (inference does no I/O) and, unlike
    the wall clock, leaves out the time other processes hold the core; ``"wall"`` reads
    ``perf_counter``, needed when worker threads share the work (``threads > 1``).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats = {repeats}, warmup = {warmup}: need repeats >= 1, warmup >= 0")
    rng = random.Random(seed)
    order = list(range(len(chains)))
    samples: list[list[list[float]]] = [[[] for _ in fns] for fns, _ in chains]
    clock = {"thread": time.thread_time, "wall": time.perf_counter}[clock or clock_for(threads)]
    steady_allocator()
    was_enabled = gc.isenabled()
    with _threads(threads), torch.inference_mode():
        for fns, x in chains:
            for _ in range(warmup):
                y = x
                for fn in fns:
                    y = fn(y)
        gc.collect()
        gc.disable()
        try:
            for _ in range(repeats):
                rng.shuffle(order)
                for c in order:
                    fns, y = chains[c]
                    out = samples[c]
                    if prime:
                        z = y
                        for fn in fns:
                            z = fn(z)
                    t0 = clock()
                    for i, fn in enumerate(fns):
                        y = fn(y)
                        t1 = clock()
                        out[i].append((t1 - t0) * 1e3)
                        t0 = t1
        finally:
            if was_enabled:
                gc.enable()
    return samples


def summarize(samples_ms: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, IQR and minimum of timings in ms."""
    xs = sorted(samples_ms)
    if len(xs) >= 2:
        q1, med, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    else:
        q1 = med = q3 = xs[0]
    return {"median_ms": med, "iqr_ms": q3 - q1, "q1_ms": q1, "q3_ms": q3, "min_ms": xs[0],
            "n": len(xs)}


STATS = ("median", "q1")
"""Statistics a table or check may rank by: the median, or the lower quartile, which is steadier
on a shared machine where interference only ever adds time."""


def _example(shape: Sequence[int], batch_size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, *shape[-3:]), generator=g)


def _combine(per_context: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of each summary figure over the contexts a part was timed in."""
    out = {k: sum(d[k] for d in per_context) / len(per_context) for k in per_context[0]}
    out["n"] = int(sum(d["n"] for d in per_context))
    out["contexts"] = len(per_context)
    return out


def measure_many(modules: Sequence[torch.nn.Module], input_shapes: Sequence[Sequence[int]],
                 backend: str = "eager", batch_size: int = 1, threads: int = 1,
                 warmup: int = 10, repeats: int = 50, seed: int = 0) -> list[dict[str, Any]]:
    """Latency of several whole modules (inputs ``(C, H, W)``, batch ``batch_size``), timed
    interleaved and primed (see :func:`time_chains`); each result holds the median, IQR,
    quartiles and minimum in ms, and the device description."""
    cache: dict[int, bytes] = {}
    with _threads(threads):
        chains = [([fn], x) for fn, x in (prepare(m, _example(s, batch_size), backend, threads,
                                                  cache)
                                          for m, s in zip(modules, input_shapes, strict=True))]
    samples = time_chains(chains, repeats, warmup, seed, threads)
    dev = device_info(threads, backend, batch_size)
    return [{**summarize(s[0]), "device": dev} for s in samples]


def measure_latency(module: torch.nn.Module, input_shape: Sequence[int], backend: str = "eager",
                    batch_size: int = 1, threads: int = 1, warmup: int = 10, repeats: int = 100,
                    seed: int = 0) -> dict[str, Any]:
    """Latency of one module on this machine: ``{"median_ms", "iqr_ms", ..., "device"}``."""
    return measure_many([module], [input_shape], backend, batch_size, threads, warmup, repeats,
                        seed)[0]


# --------------------------------------------------------------------------- tables
def fit_calibration(sums_ms: Sequence[float], measured_ms: Sequence[float]) -> dict[str, Any]:
    """Least-squares ``measured = scale * sum_of_parts + offset`` over whole-network timings.

    A sum of part timings misses the network's own forward overhead and part of the cache
    effects; a line fitted on a few whole networks absorbs both. With fewer than two distinct
    sums, or a non-positive slope, only the offset is fitted (scale 1). A network's own overhead
    cannot be negative: when timing noise makes the fitted offset negative (which would predict
    a negative latency for the smallest networks), the line is refitted through the origin.
    """
    n = len(sums_ms)
    if n == 0:
        return {"scale": 1.0, "offset_ms": 0.0, "n_networks": 0}
    mx, my = sum(sums_ms) / n, sum(measured_ms) / n
    sxx = sum((x - mx) ** 2 for x in sums_ms)
    sxy = sum((x - mx) * (y - my) for x, y in zip(sums_ms, measured_ms, strict=True))
    scale = sxy / sxx if sxx > 0 else 0.0
    if scale <= 0:
        scale = 1.0
    offset = my - scale * mx
    if offset < 0:
        sxx0 = sum(x * x for x in sums_ms)
        sxy0 = sum(x * y for x, y in zip(sums_ms, measured_ms, strict=True))
        if sxx0 > 0 and sxy0 > 0:
            scale, offset = sxy0 / sxx0, 0.0
    return {"scale": scale, "offset_ms": offset, "n_networks": n}


def table_from_parts(parts: Mapping[str, tuple[torch.nn.Module, Sequence[int]]],
                     chains: Sequence[Sequence[str]],
                     networks: Sequence[tuple[dict[str, Any], Sequence[str], torch.nn.Module,
                                              Sequence[int]]],
                     backend: str = "eager", batch_size: int = 1, threads: int = 1,
                     warmup: int = 10, repeats: int = 50, seed: int = 0, stat: str = "median",
                     meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Time every part in context and fit the calibration; return the table as a dict.

    ``parts`` maps a key to ``(module, input (C, H, W))``; ``chains`` are key sequences that
    form real networks and together contain every part (each part several times, preferably);
    a part's entry is the mean of its statistic over the chains (contexts) it appears in.
    ``networks`` are ``(config, part keys, whole module, input)`` for the calibration, timed
    right after the chains, interleaved among themselves as :func:`measure_many` times networks
    (timed amid the chains they came out 10-17 % slower than amid each other, a gap that did
    not carry over to later measurements).
    """
    if stat not in STATS:
        raise ValueError(f"stat {stat!r}: choose one of {list(STATS)}")
    t0 = time.time()
    cache: dict[int, bytes] = {}
    with _threads(threads):
        runs = {k: prepare(m, _example(s, batch_size), backend, threads, cache)
                for k, (m, s) in parts.items()}
        timed: list[Chain] = [([runs[k][0] for k in ch], runs[ch[0]][1]) for ch in chains]
        whole: list[Chain] = [([fn], x) for fn, x in (
            prepare(m, _example(s, batch_size), backend, threads, cache)
            for _, _, m, s in networks)]
    samples = time_chains(timed, repeats, warmup, seed, threads)
    # whole networks among whole networks, as measure_many and a check time them
    samples += time_chains(whole, repeats, warmup, seed + 1, threads) if whole else []
    per_context: dict[str, list[dict[str, float]]] = {k: [] for k in parts}
    for ch, s in zip(chains, samples, strict=False):
        for k, xs in zip(ch, s, strict=True):
            per_context[k].append(summarize(xs))
    entries = {}
    for k, ms in per_context.items():
        if not ms:
            raise ValueError(f"part {k!r} is in no chain, so it was never timed")
        m = _combine(ms)
        entries[k] = {"ms": m[f"{stat}_ms"], "median_ms": m["median_ms"], "iqr_ms": m["iqr_ms"],
                      "contexts": m["contexts"]}
    cal_rows: list[dict[str, Any]] = []
    for (config, keys, _, _), s in zip(networks, samples[len(chains):], strict=True):
        m = summarize(s[0])
        cal_rows.append({"config": config, "sum_ms": sum(entries[k]["ms"] for k in keys),
                         "measured_ms": m[f"{stat}_ms"], "median_ms": m["median_ms"],
                         "iqr_ms": m["iqr_ms"]})
    cal = fit_calibration([r["sum_ms"] for r in cal_rows], [r["measured_ms"] for r in cal_rows])
    cal["method"] = ("predicted = scale * (sum of part timings) + offset_ms, least squares on "
                     "random whole networks timed right after the parts")
    cal["networks"] = cal_rows
    return {
        "format": TABLE_FORMAT, **(meta or {}),
        "device": device_info(threads, backend, batch_size),
        "backend": backend, "batch_size": int(batch_size), "threads": int(threads),
        "warmup": int(warmup), "repeats": int(repeats), "stat": stat, "chains": len(chains),
        "timing": "in context: parts of real networks, clock read between parts, each timed "
                  "pass right after an untimed one, rounds interleaved in random order",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(time.time() - t0, 3), "calibration": cal, "entries": entries,
    }


# --------------------------------------------------------------------------- standalone
def build_from_parts_dir(parts_dir: str | os.PathLike[str], threads: int = 1,
                         repeats: int = 50, warmup: int = 10, batch_size: int | None = None,
                         stat: str = "median") -> dict[str, Any]:
    """A table measured here (TorchScript backend) from an exported part set: the
    ``manifest.json`` and TorchScript files written by :func:`evo_nas.latency.export_parts`."""
    root = Path(parts_dir)
    man_path = root / "manifest.json"
    if not man_path.is_file():
        raise FileNotFoundError(f"{str(man_path)!r} does not exist: not an exported part set")
    man = json.loads(man_path.read_text())
    if man.get("format") != PARTS_FORMAT:
        raise ValueError(f"{str(man_path)!r} has format {man.get('format')!r}, "
                         f"expected {PARTS_FORMAT!r}")
    with _quiet_jit():
        parts = {k: (torch.jit.load(str(root / p["file"]), map_location="cpu"), p["input"])
                 for k, p in man["parts"].items()}
        nets = [(n["config"], n["keys"], torch.jit.load(str(root / n["file"]),
                                                        map_location="cpu"), n["input"])
                for n in man["networks"]]
    bs = int(man.get("batch_size", 1) if batch_size is None else batch_size)
    # the supernet it belongs to: a MobileNet "spec", or any other supernet's "supernet" settings
    meta = {"space": man["space"], **{k: man[k] for k in ("spec", "supernet") if k in man},
            "source": f"exported parts {root.name}"}
    return table_from_parts(parts, man["chains"], nets, "torchscript", bs, threads, warmup,
                            repeats, stat=stat, meta=meta)


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry: measure an exported part set on this device, write the table JSON."""
    p = argparse.ArgumentParser(description="Build an evo-nas latency table on this device "
                                            "from an exported part set (needs only torch).")
    p.add_argument("parts_dir")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--stat", default="median", choices=STATS)
    p.add_argument("--out", default=None, help="default: PARTS_DIR/latency_table.json")
    args = p.parse_args(argv)
    try:
        table = build_from_parts_dir(args.parts_dir, args.threads, args.repeats, args.warmup,
                                     args.batch_size, args.stat)
    except (OSError, ValueError, KeyError) as e:
        print(f"measure: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.parts_dir) / "latency_table.json"
    out.write_text(json.dumps(table, indent=1))
    print(f"{len(table['entries'])} parts measured on {table['device']['name']} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
