"""Hardware-aware latency: measurement on this machine and per-part lookup tables.

:mod:`evo_nas.latency.measure` times modules (torch eager, TorchScript, ONNX Runtime) and records
the device; it needs only torch, so it also runs standalone on a target device.
:mod:`evo_nas.latency.lut` builds, checks, loads and applies lookup tables.
"""

from evo_nas.latency.lut import (
    DeviceMismatchWarning,
    LatencyFunction,
    LatencyTable,
    LatencyTableError,
    MeasuredLatency,
    build_table,
    check_table,
    export_parts,
    measure_configs,
    part_keys,
)
from evo_nas.latency.measure import (
    BACKENDS,
    device_info,
    measure_latency,
    measure_many,
)

__all__ = [
    "BACKENDS",
    "DeviceMismatchWarning",
    "LatencyFunction",
    "LatencyTable",
    "LatencyTableError",
    "MeasuredLatency",
    "build_table",
    "check_table",
    "device_info",
    "export_parts",
    "measure_configs",
    "measure_latency",
    "measure_many",
    "part_keys",
]
