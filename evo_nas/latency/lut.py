"""Latency lookup tables: each distinct part of a space measured, networks predicted as sums.

A sub-network is cut into parts that run one after another, by its supernet's optional protocol
methods ``latency_keys`` / ``latency_parts`` / ``latency_configs`` (see
:mod:`evo_nas.nn.protocol`). The elastic MobileNet: the stem, each MBConv block and the tail
(head conv, pooling, classifier); a part's key holds everything that changes its latency (input
resolution, channels in/mid/out, kernel, stride, squeeze-excite width, activation, residual,
expansion conv present), so equal keys are the same computation. A choice-block supernet: stem,
one part per (layer, candidate), head. NAS-Bench-201 cells: stem, reduction blocks, tail, and
per cell one part per live edge (op, channels, size) and per extra input summed into a node.

Parts are timed in context, not alone: a few real networks that together contain every part
(each in ``contexts`` of them) are run part by part with a clock read in between, so each part
sees its real input and predecessor, and its entry is the mean over its contexts. A network's
predicted latency is ``scale * sum(parts) + offset_ms``, a line fitted on random whole networks
timed right after the parts; it absorbs the network's own call overhead (the JSON's ``calibration``
says so and lists those networks). See :mod:`evo_nas.latency.measure` for the timing rules.

Tables are JSON (format ``evo-nas-latency-table/1``) with the space name, the supernet they
belong to (a MobileNet ``spec``, as before the protocol, else the supernet's ``settings()`` under
``supernet``), the device and settings they were measured with. A table from another space or
supernet, or one missing a part, raises :class:`LatencyTableError` naming it; a table from
another device loads with a :class:`DeviceMismatchWarning` naming both devices.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import evo_nas.latency.measure as measure_module
from evo_nas.errors import CheckpointError, LatencyTableError
from evo_nas.latency.measure import (
    BACKENDS,
    PARTS_FORMAT,
    STATS,
    TABLE_FORMAT,
    _quiet_jit,
    device_info,
    measure_many,
    table_from_parts,
)
from evo_nas.nn.parts import (
    MobileNetTail,
    mobilenet_part_modules,
    mobilenet_skeletons,
    part_keys,
)
from evo_nas.space import SearchSpace
from evo_nas.spaces.mobilenet import PRESETS, MobileNetSpec, get_spec, spec_of

__all__ = [
    "LatencyTableError",
    "DeviceMismatchWarning",
    "LatencyTable",
    "LatencyFunction",
    "MeasuredLatency",
    "part_keys",
    "build_table",
    "check_table",
    "export_parts",
    "measure_configs",
]


class DeviceMismatchWarning(UserWarning):
    """A latency table measured on a device other than this one."""


# the per-part helpers of the elastic MobileNet live with the supernets (evo_nas.nn.parts), so
# that the dependency goes one way, latency -> nn; their old names here keep working
_skeletons = mobilenet_skeletons
_part_modules = mobilenet_part_modules
_Tail = MobileNetTail


def _spaces(space_or_preset: SearchSpace | MobileNetSpec | str) -> tuple[SearchSpace,
                                                                         MobileNetSpec]:
    if isinstance(space_or_preset, SearchSpace):
        return space_or_preset, spec_of(space_or_preset)
    spec = get_spec(space_or_preset)
    return spec.space(), spec


def _collect_parts(spec: MobileNetSpec | None, net: Any, contexts: int = 3
                   ) -> tuple[dict[str, tuple[nn.Module, tuple[int, int, int]]],
                              list[list[str]]]:
    """:func:`_collect` under its name from before the protocol (``spec`` is not needed: the
    supernet knows its parts)."""
    return _collect(net, contexts)


def _collect(net: Any, contexts: int = 3
             ) -> tuple[dict[str, tuple[nn.Module, tuple[int, int, int]]], list[list[str]]]:
    """Every distinct part of the space and real networks (chains of part keys) that together
    contain each part at least ``contexts`` times (with other neighbours where the space allows),
    picked greedily among ``net.latency_configs()`` (for MobileNet the skeletons): most parts
    still short of contexts first."""
    space = net.space
    _require_parts(net)
    cands = []
    for cfg in net.latency_configs():
        cfg = space.decode(space.encode(cfg))
        cands.append((cfg, [k for _, k in net.latency_keys(cfg)]))
    need = {k: max(1, contexts) for _, keys in cands for k in keys}
    used = [0] * len(cands)
    parts: dict[str, tuple[nn.Module, tuple[int, int, int]]] = {}
    chains: list[list[str]] = []
    while any(v > 0 for v in need.values()):
        # most parts still needed; among ties the skeleton used least (other neighbours)
        i = max(range(len(cands)), key=lambda j: (sum(need[k] > 0 for k in cands[j][1]),
                                                  -used[j]))
        cfg, keys = cands[i]
        used[i] += 1
        if used[i] == 1:
            for key, (got, mod, shape) in zip(keys, net.latency_parts(cfg), strict=True):
                if got != key:
                    raise RuntimeError(f"{type(net).__name__}: latency_parts gives part {got!r} "
                                       f"where latency_keys gives {key!r}")
                parts.setdefault(key, (mod, tuple(int(v) for v in shape)))
        chains.append(keys)
        for k in keys:
            need[k] -= 1
    return parts, chains


def _require_parts(net: Any) -> None:
    """A LatencyTableError unless ``net`` cuts sub-networks into parts (the protocol's optional
    ``latency_keys`` / ``latency_parts`` / ``latency_configs``)."""
    from evo_nas.nn.protocol import supports_latency_table

    if not supports_latency_table(net):
        raise LatencyTableError(
            f"{type(net).__name__} has no latency_parts()/latency_configs(): per-part latency "
            "tables need a supernet that splits a sub-network into parts (see "
            "evo_nas.nn.protocol); measure its sub-networks with MeasuredLatency instead")


def _settings_of(net: Any) -> dict[str, Any]:
    """``net.settings()`` as a table stores it (through JSON, so it compares with a loaded one)."""
    try:
        return json.loads(json.dumps(net.settings()))
    except (TypeError, ValueError) as e:
        raise LatencyTableError(f"{type(net).__name__}.settings() is not JSON-able, so a table "
                                f"cannot record which supernet it belongs to: {e}") from None


def _describe(settings: Mapping[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True)


def _same_space(a: SearchSpace, b: SearchSpace) -> bool:
    """Same genes, options and cost function: configs of one are the same networks in the
    other (space names alone do not say it: every NB201 space is called ``nb201``)."""
    try:
        return bool(a.name == b.name and tuple(a.choices) == tuple(b.choices)
                    and a.meta.get("costs") == b.meta.get("costs"))
    except (TypeError, ValueError):  # costs that do not compare
        return False


def _identity(space: SearchSpace, net: Any) -> dict[str, Any]:
    """What a table or part set records to name its supernet: a MobileNet ``spec`` (the format
    from before the protocol, so those files stay as they were), else ``settings()``."""
    spec = space.meta.get("spec")
    if isinstance(spec, MobileNetSpec):
        return {"spec": spec.to_dict()}
    return {"supernet": _settings_of(net)}


def _calibration_configs(space: SearchSpace, n: int, seed: int) -> list[dict[str, Any]]:
    """Random configs: the line is fitted where searches sample, not dragged by the extremes."""
    return space.decode_many(space.sample(n, seed + 777)) if n > 0 else []


# --------------------------------------------------------------------------- the table
class LatencyTable:
    """Predicted latency (ms) of sub-networks from per-part measurements; a NASProblem metric.

    ``table(configs)`` returns ``{"latency": ms array}``; ``cheap`` lets budgets be checked
    before a search. ``data`` is the table dict (see :func:`build_table` or a JSON file).
    ``space`` is the space the configs come from, or the supernet itself (then a table of
    another supernet is refused by comparing ``settings()``). A table of a supernet other than
    MobileNet needs that supernet to cut configs into parts: the one given, else an untrained
    one rebuilt from the ``settings()`` the table recorded (latency does not depend on weights).
    """

    cheap = True

    def __init__(self, data: Mapping[str, Any], space: Any = None,
                 warn_device: bool = True, source: str = "<memory>") -> None:
        self.source = source
        supernet = None
        if space is not None and not isinstance(space, SearchSpace):
            supernet, space = space, getattr(space, "space", None)
            if not isinstance(space, SearchSpace):
                raise LatencyTableError(f"latency table {source}: {type(supernet).__name__} is "
                                        "neither a search space nor a supernet with a .space")
        if not isinstance(data, Mapping) or not isinstance(data.get("entries"), Mapping):
            raise LatencyTableError(f"latency table {source}: not a table (no 'entries' mapping)")
        fmt = data.get("format", TABLE_FORMAT)
        if fmt != TABLE_FORMAT:
            raise LatencyTableError(f"latency table {source}: format {fmt!r}, "
                                    f"expected {TABLE_FORMAT!r}")
        self.data = dict(data)
        self.entries: dict[str, float] = {}
        for k, v in data["entries"].items():
            ms = v.get("ms") if isinstance(v, Mapping) else v
            if not isinstance(ms, (int, float)) or not np.isfinite(ms) or ms < 0:
                raise LatencyTableError(f"latency table {source}: entry {k!r} = {v!r} is not a "
                                        "non-negative number of ms")
            self.entries[str(k)] = float(ms)
        cal = data.get("calibration") or {}
        self.scale = float(cal.get("scale", 1.0))
        self.offset_ms = float(cal.get("offset_ms", 0.0))
        self.space_name = str(data.get("space", ""))
        self.net: Any = supernet
        self.spec: MobileNetSpec | None = None
        if "supernet" in data:
            self.space = self._bind_supernet(data["supernet"], space)
        else:  # a MobileNet table: its spec says everything (the format before the protocol)
            if space is None:
                spec_d = data.get("spec")
                if not spec_d:
                    raise LatencyTableError(f"latency table {source}: no 'spec' or 'supernet' "
                                            "to rebuild its space from; pass the space")
                space = MobileNetSpec.from_dict(spec_d).space()
            self.space = space
            if self.space_name != space.name:
                raise LatencyTableError(f"latency table {source} was built for space "
                                        f"{self.space_name or '?'!r}, not {space.name!r}")
            self.spec = spec_of(space)
            if data.get("spec") and MobileNetSpec.from_dict(data["spec"]) != self.spec:
                raise LatencyTableError(f"latency table {source}: its spec of space "
                                        f"{space.name!r} differs from this one (another preset "
                                        "definition)")
        self.device: dict[str, Any] = dict(data.get("device") or {})
        self._genomes: Any = None  # the compiled genome -> ms form, made on first use
        if warn_device:
            self.warn_if_other_device()

    def _bind_supernet(self, recorded: Any, space: SearchSpace | None) -> SearchSpace:
        """The supernet that cuts configs into parts: the one given, if its ``settings()`` are
        the recorded ones, else one rebuilt from them that has the given space."""
        src = self.source
        if not isinstance(recorded, Mapping) or "kind" not in recorded:
            raise LatencyTableError(f"latency table {src}: 'supernet' = {recorded!r} is not a "
                                    "supernet's settings()")
        if space is not None and self.space_name != space.name:
            raise LatencyTableError(f"latency table {src} was built for space "
                                    f"{self.space_name or '?'!r}, not {space.name!r}")
        if self.net is not None:
            theirs = _settings_of(self.net)
            if theirs != recorded:
                raise LatencyTableError(f"latency table {src} belongs to supernet "
                                        f"{_describe(recorded)}, not to this one, "
                                        f"{_describe(theirs)}")
        else:
            from evo_nas.nn.protocol import build_supernet

            try:
                with torch.random.fork_rng():
                    torch.manual_seed(0)
                    self.net = build_supernet(recorded).eval()
            except CheckpointError as e:
                raise LatencyTableError(f"latency table {src} belongs to supernet "
                                        f"{_describe(recorded)}, which cannot be rebuilt here "
                                        f"({e}); pass that supernet instead of a space") from None
            if space is not None and not _same_space(space, self.net.space):
                raise LatencyTableError(f"latency table {src} belongs to supernet "
                                        f"{_describe(recorded)}, whose space differs from the "
                                        f"given space {space.name!r} (other genes or costs): "
                                        "pass the supernet, or build a table for it")
        _require_parts(self.net)
        if self.space_name != self.net.space.name:
            raise LatencyTableError(f"latency table {src} was built for space "
                                    f"{self.space_name or '?'!r}, not {self.net.space.name!r}")
        return space if space is not None else self.net.space

    # ------------------------------------------------------------- io
    @classmethod
    def load(cls, path: str | Path, space: Any = None,
             warn_device: bool = True) -> LatencyTable:
        """Read a table JSON; a missing or unreadable file is a LatencyTableError. ``space``: the
        search space, or the supernet (see the class docstring)."""
        p = Path(path)
        if not p.is_file():
            raise LatencyTableError(f"latency table {str(p)!r} does not exist")
        try:
            data = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise LatencyTableError(f"latency table {str(p)!r} is not valid JSON: {e}") from None
        return cls(data, space, warn_device, source=repr(str(p)))

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.data, indent=1))
        return p

    def warn_if_other_device(self) -> bool:
        """Warn (and return True) when the table was measured on another device than this."""
        theirs = self.device.get("name")
        ours = device_info(1)["name"]
        if theirs and theirs != ours:
            warnings.warn(f"latency table {self.source} was measured on {theirs!r}; this machine "
                          f"is {ours!r}: its figures describe that device", DeviceMismatchWarning,
                          stacklevel=3)
            return True
        return False

    # ------------------------------------------------------------- prediction
    def parts(self, config: Mapping[str, Any]) -> list[tuple[str, str, float]]:
        """``(part name, key, ms)`` of each part of ``config``; a missing part raises."""
        if self.spec is not None:
            lay = self.spec.layout(dict(config))
            keys, where = part_keys(self.spec, lay), f" of config res={lay.resolution}"
        else:
            keys, where = self.net.latency_keys(config), ""
        out = []
        for name, key in keys:
            ms = self.entries.get(key)
            if ms is None:
                raise LatencyTableError(f"latency table {self.source} has no entry for part "
                                        f"{name} (key {key!r}){where}; "
                                        "rebuild it with `evo-nas latency build`")
            out.append((name, key, ms))
        return out

    def sum_parts(self, config: Mapping[str, Any]) -> float:
        """Uncalibrated sum of the parts' medians in ms."""
        return float(sum(ms for _, _, ms in self.parts(config)))

    def predict(self, config: Mapping[str, Any]) -> float:
        """Predicted latency of one config in ms."""
        return self.scale * self.sum_parts(config) + self.offset_ms

    def predict_many(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Predicted latency of each config in ms, one config at a time (the reference path;
        a search uses :meth:`predict_genomes`)."""
        return np.array([self.predict(c) for c in configs], dtype=float)

    def predict_genomes(self, X: np.ndarray) -> np.ndarray:
        """Predicted latency in ms of each genome of ``X`` (``(n, n_var)`` in :attr:`space`),
        vectorised: the same floats as :meth:`predict_many` on the decoded configs, some 100x
        cheaper per architecture (see :mod:`evo_nas.latency.genomes`). A genome using a part
        the table lacks raises as :meth:`predict` does."""
        X = np.atleast_2d(np.asarray(X))
        n_var = self.space.n_var
        if X.ndim != 2 or X.shape[1] != n_var:
            raise LatencyTableError(f"latency table {self.source}: genomes of shape {X.shape}, "
                                    f"but space {self.space.name!r} has {n_var} genes")
        X = self.space.canonical(np.round(X).astype(np.int64))
        if self._genomes is None:
            from evo_nas.latency.genomes import compile_genome_latency

            self._genomes = compile_genome_latency(self)
        out = self.scale * self._genomes.sums(X) + self.offset_ms
        for i in np.flatnonzero(np.isnan(out)):  # a part the table lacks: raises naming it
            out[i] = self.predict(self.space.decode(X[i]))
        return out

    def batch_genomes(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """``{"latency": ms}`` of a genome matrix: what :class:`problems.NASProblem` calls for
        its new architectures (:func:`evo_nas.metrics.metric_values`)."""
        return {"latency": self.predict_genomes(X)}

    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        return {"latency": self.predict_many(configs)}

    def __repr__(self) -> str:
        return (f"LatencyTable(space={self.space_name!r}, parts={len(self.entries)}, "
                f"device={self.device.get('name', '?')!r}, "
                f"backend={self.data.get('backend', '?')!r})")


class LatencyFunction:
    """Any ``config -> ms`` callable (an on-device predictor, a remote runner) as a metric.

    Set ``cheap=False`` when each call is expensive, so budgets are not pre-checked with it.
    """

    def __init__(self, fn: Callable[[dict[str, Any]], float], cheap: bool = True) -> None:
        self.fn = fn
        self.cheap = cheap

    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        return {"latency": np.array([float(self.fn(dict(c))) for c in configs], dtype=float)}


def _supernet(space_or_preset: Any, net: Any = None) -> Any:
    """``net``, or the supernet itself when one was passed, or an untrained one of the preset /
    MobileNet spec (seeded, so the weights and hence any timing quirks are repeatable)."""
    from evo_nas.nn import Supernet
    from evo_nas.nn.protocol import WeightSharingSupernet, supernet_from_preset

    if net is not None:
        return net
    if isinstance(space_or_preset, WeightSharingSupernet):
        return space_or_preset
    if isinstance(space_or_preset, SearchSpace) and "spec" not in space_or_preset.meta:
        raise LatencyTableError(f"search space {space_or_preset.name!r} is not a MobileNet "
                                "space, so no supernet can be made from it: pass the supernet")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        if isinstance(space_or_preset, str) and space_or_preset not in PRESETS:
            return supernet_from_preset(space_or_preset).eval()
        _, spec = _spaces(space_or_preset)
        return Supernet(spec).eval()


def measure_configs(space_or_preset: SearchSpace | MobileNetSpec | str,
                    configs: Sequence[Mapping[str, Any]], backend: str = "eager",
                    batch_size: int = 1, threads: int = 1, repeats: int = 50, warmup: int = 10,
                    seed: int = 0, net: Any = None) -> list[dict[str, Any]]:
    """Measured latency of the extracted sub-networks of ``configs`` (timed interleaved).

    ``space_or_preset`` may be any supernet of the protocol (or a MobileNet space/spec/preset,
    for which an untrained supernet is built: latency does not depend on the weights)."""
    net = _supernet(space_or_preset, net)
    subs = [net.extract(c).eval() for c in configs]
    shapes = [tuple(net.input_shape(net.space.decode(net.space.encode(c)))) for c in configs]
    return measure_many(subs, shapes, backend, batch_size, threads, warmup, repeats, seed)


class MeasuredLatency:
    """Latency measured for real on this machine, per config (slow: ``cheap = False``)."""

    cheap = False

    def __init__(self, space_or_preset: Any, net: Any = None, **measure_kwargs: Any) -> None:
        self.net = _supernet(space_or_preset, net)
        self.space = self.net.space
        self.kwargs = measure_kwargs

    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        if not configs:
            return {"latency": np.zeros(0)}
        res = measure_configs(self.net, configs, **self.kwargs)
        return {"latency": np.array([r["median_ms"] for r in res], dtype=float)}


# --------------------------------------------------------------------------- build / check
def _check_args(backend: str, batch_size: int, threads: int, repeats: int,
                stat: str = "median") -> None:
    if stat not in STATS:
        raise LatencyTableError(f"latency stat {stat!r}: choose one of {list(STATS)}")
    if backend not in BACKENDS:
        raise LatencyTableError(f"latency backend {backend!r}: choose one of {list(BACKENDS)}")
    if backend == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise LatencyTableError("latency backend 'onnxruntime' needs the onnxruntime "
                                    "package (pip install 'evo-nas[onnx]')") from None
    for name, v in (("batch_size", batch_size), ("threads", threads), ("repeats", repeats)):
        if not isinstance(v, int) or v < 1:
            raise LatencyTableError(f"latency {name} = {v!r}: must be a positive integer")


def _net_and_space(space_or_preset: Any, net: Any) -> tuple[Any, SearchSpace]:
    """The supernet whose parts are timed and the space the table answers for."""
    net = _supernet(space_or_preset, net)
    return net, space_or_preset if isinstance(space_or_preset, SearchSpace) else net.space


def build_table(space_or_preset: Any, backend: str = "eager",
                batch_size: int = 1, threads: int = 1, repeats: int = 50, warmup: int = 10,
                calibration: int = 10, seed: int = 0, net: Any = None,
                stat: str = "median", contexts: int = 3) -> LatencyTable:
    """Time every distinct part of the space on this machine, in context (inside a few real
    networks that contain them all), and fit the calibration on ``calibration`` random whole
    networks timed right after. ``stat`` is the statistic of the
    timings used (``median`` or ``q1``). ``space_or_preset``: a MobileNet space, spec or preset
    name, ``"nb201"``, or any supernet with ``latency_parts`` (see :mod:`evo_nas.nn.protocol`).
    Weights do not matter for latency, so a fresh supernet is used unless one is given."""
    _check_args(backend, batch_size, threads, repeats, stat)
    net, space = _net_and_space(space_or_preset, net)
    parts, chains = _collect(net, contexts)
    known = set(parts)
    probe = space.decode_many(space.sample(64, seed + 12345))
    for cfg in probe:  # the claim of latency_configs (MobileNet: mobilenet_skeletons), checked
        for name, key in net.latency_keys(cfg):
            if key not in known:
                raise RuntimeError(f"part enumeration missed {name} ({key})")
    networks = []
    for cfg in _calibration_configs(space, calibration, seed):
        sub = net.extract(cfg).eval()
        keys = [k for _, k in net.latency_keys(cfg)]
        networks.append((cfg, keys, sub, tuple(net.input_shape(cfg))))
    meta = {"space": space.name, **_identity(space, net), "source": "build_table"}
    data = table_from_parts(parts, chains, networks, backend, batch_size, threads, warmup,
                            repeats, seed, stat, meta)
    owner = space if "spec" in meta else net
    return LatencyTable(data, owner, warn_device=False, source=f"<built for {space.name}>")


def check_table(table: LatencyTable, n: int = 50, seed: int = 1,
                configs: Sequence[Mapping[str, Any]] | None = None, repeats: int | None = None,
                warmup: int | None = None, net: Any = None) -> dict[str, Any]:
    """Table vs real measurement on ``n`` random sub-networks (or ``configs``): Kendall tau,
    MAPE and max error, with the settings of the table (backend, batch, threads)."""
    from scipy.stats import kendalltau

    space = table.space
    if configs is None:
        configs = space.decode_many(space.sample(n, seed))
    configs = [dict(c) for c in configs]
    if len(configs) < 2:
        raise LatencyTableError(f"latency check needs at least 2 configs, got {len(configs)}")
    d = table.data
    backend = str(d.get("backend", "eager"))
    bs, th = int(d.get("batch_size", 1)), int(d.get("threads", 1))
    stat = str(d.get("stat", "median"))
    _check_args(backend, bs, th, 1, stat)
    table.warn_if_other_device()
    pred = table.predict_many(configs)
    raw = np.array([table.sum_parts(c) for c in configs])
    res = measure_configs(space, configs, backend, bs, th,
                          int(repeats or d.get("repeats", 50)), int(warmup or d.get("warmup", 10)),
                          seed, net if net is not None else table.net)
    meas = np.array([r[f"{stat}_ms"] for r in res])
    iqr = np.array([r["iqr_ms"] for r in res])
    err = pred - meas
    rel = np.abs(err) / meas
    tau = float(kendalltau(pred, meas).statistic)
    return {
        "n": len(configs), "kendall_tau": tau, "mape_%": float(100 * rel.mean()),
        "max_abs_err_ms": float(np.abs(err).max()), "max_rel_err_%": float(100 * rel.max()),
        "mape_uncalibrated_%": float(100 * (np.abs(raw - meas) / meas).mean()),
        "measured_ms": {"min": float(meas.min()), "median": float(np.median(meas)),
                        "max": float(meas.max()), "median_iqr": float(np.median(iqr))},
        "backend": backend, "batch_size": bs, "threads": th, "stat": stat,
        "repeats": int(repeats or d.get("repeats", 50)), "space": table.space_name,
        "device": res[0]["device"], "table_device": table.device.get("name", "?"),
        "rows": [{"config": c, "predicted_ms": float(p), "measured_ms": float(m),
                  "iqr_ms": float(q)} for c, p, m, q in zip(configs, pred, meas, iqr,
                                                            strict=True)],
    }


def export_parts(space_or_preset: Any, out_dir: str | Path,
                 batch_size: int = 1, calibration: int = 10, seed: int = 0,
                 contexts: int = 3, net: Any = None) -> Path:
    """Write every distinct part (and the calibration networks) as TorchScript files with a
    manifest and the standalone ``measure.py``, to build a table on a device with only torch::

        python DIR/measure.py DIR --threads 1   # writes DIR/latency_table.json

    ``space_or_preset`` as for :func:`build_table`; every part must be scriptable."""
    net, space = _net_and_space(space_or_preset, net)
    root = Path(out_dir)
    (root / "parts").mkdir(parents=True, exist_ok=True)
    (root / "networks").mkdir(exist_ok=True)
    parts, chains = _collect(net, contexts)
    man: dict[str, Any] = {"format": PARTS_FORMAT, "space": space.name, **_identity(space, net),
                           "batch_size": int(batch_size), "parts": {}, "chains": chains,
                           "networks": []}
    with _quiet_jit():
        for i, (key, (mod, shape)) in enumerate(parts.items()):
            f = f"parts/{i:04d}.pt"
            torch.jit.save(torch.jit.script(mod.eval()), str(root / f))
            man["parts"][key] = {"file": f, "input": list(shape)}
        for i, cfg in enumerate(_calibration_configs(space, calibration, seed)):
            sub = net.extract(cfg).eval()
            f = f"networks/{i:03d}.pt"
            torch.jit.save(torch.jit.script(sub), str(root / f))
            man["networks"].append({"config": cfg, "file": f,
                                    "keys": [k for _, k in net.latency_keys(cfg)],
                                    "input": [int(v) for v in net.input_shape(cfg)]})
    (root / "manifest.json").write_text(json.dumps(man, indent=1))
    shutil.copyfile(measure_module.__file__, root / "measure.py")
    return root
