"""Where a figure was measured: one description of the machine for every result file.

Timings (and, through thread counts and library versions, sometimes the numbers themselves)
depend on the machine, so every study and benchmark records :func:`machine_info` with its
results. Only the standard library is imported here: torch is described when the process has
imported it (a process that never imported torch ran nothing in it), so pure pymoo benchmarks
stay free of its import time.

The latency tables' device record (:func:`evo_nas.latency.measure.device_info`) keeps its own
copy of the CPU-model lookup on purpose: ``measure.py`` is also copied alone to a target device
and run there without evo-nas. The keys both write (``platform``, ``machine``, ``cpu``,
``cpu_count``, ``python``, ``torch``) hold the same values.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

__all__ = ["cpu_model", "machine_info"]


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what :mod:`platform` knows.

    :mod:`evo_nas.latency.measure` keeps its own copy on purpose: that file is shipped alone to
    a target device (``evo-nas latency export-parts``) where only torch is installed, and this
    module must not import torch."""
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


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(device: str | None = None, packages: Iterable[str] = ()) -> dict[str, Any]:
    """The machine a result was measured on, as a JSON-ready dict.

    Always: ``platform``, ``machine`` (architecture), ``cpu`` (model name), ``cpu_count``,
    ``python``, ``omp_num_threads`` (the environment variable, or None) and, where the OS has
    one, ``load_average_1min`` (other work on a shared machine slows timings). When torch is
    imported: ``torch`` (version) and ``torch_threads``. With ``device``: ``device``, and for a
    CUDA device ``gpu`` (its name) and ``cudnn`` (version). ``packages``: their installed
    versions under ``versions`` (None for one not installed).
    """
    info: dict[str, Any] = {
        "platform": platform.platform(), "machine": platform.machine(), "cpu": cpu_model(),
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    try:
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every OS
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    if device is not None:
        info["device"] = str(device)
        if str(device).startswith("cuda"):
            import torch

            info["gpu"] = torch.cuda.get_device_name(device)
            info["cudnn"] = torch.backends.cudnn.version()
    packages = list(packages)
    if packages:
        info["versions"] = {p: _version(p) for p in packages}
    return info
