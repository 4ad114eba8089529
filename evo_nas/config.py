"""Typed run configuration, validated up front from YAML/TOML/dicts.

Unknown keys (with a did-you-mean), wrong types and impossible values fail before any work
starts, and every message carries the dotted path of the field (``search.budgets.flops``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evo_nas.errors import ConfigError
from evo_nas.metrics import CATALOGUE
from evo_nas.train.trainer import TrainConfig

__all__ = ["DataConfig", "EvalConfig", "SearchConfig", "LatencyConfig", "RunConfig",
           "load_config", "parse"]


@dataclass
class DataConfig:
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    val_fraction: float = 0.2
    max_train: int | None = None
    path: str | None = None  # the .npz file of dataset "npz" (see evo_nas.data.load_npz)


@dataclass
class EvalConfig:
    split: str = "val"
    calib_images: int = 500
    batch_size: int = 1000
    bn: str = "recalibrate"  # or "batch": batch statistics of each evaluation batch
    eval_images: int | None = None  # score on the first N images of the split (all: None)


# A preset's own defaults, applied where the source leaves a field unset: the NB201 recipe is the
# best row of benchmarks/bench_nb201.py (class-uniform single-path SPOS, batch-statistics BN).
PRESET_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "nb201": {"train": {"sampler": "uniform", "n_random": 1, "distill": False, "lr": 0.05,
                        "weight_decay": 5e-4, "sampler_options": {"by_class": True}},
              "eval": {"bn": "batch", "eval_images": 500}},
}


@dataclass
class SearchConfig:
    algorithm: str = "nsga2"
    pop_size: int = 24
    # the most generations (surrogate: rounds); None: 12 without a budget, unlimited with one
    generations: int | None = None
    budget: int | None = None  # distinct real evaluations, for every algorithm (cache hits free)
    objectives: list[str] = field(default_factory=lambda: ["error", "flops"])
    budgets: dict[str, float] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # passed to the algorithm's builder
    # where expensive metrics (supernet accuracy) run: see evo_nas.parallel
    backend: str = "serial"  # serial (in the driver) | loky (local processes) | dask
    workers: int = 1  # loky processes / local Dask workers
    scheduler: str | None = None  # Dask scheduler address (tls://host:8786); None: local cluster
    worker_threads: int = 1  # torch CPU threads per worker process


@dataclass
class LatencyConfig:
    """How the ``latency`` metric is obtained: a table file (e.g. measured on the target device
    with ``evo-nas latency build``), else a table measured here once per run directory."""

    table: str | None = None
    backend: str = "eager"
    threads: int = 1
    batch_size: int = 1
    repeats: int = 30
    stat: str = "median"
    contexts: int = 3


@dataclass
class RunConfig:
    name: str = "run"
    seed: int = 0
    preset: str = "tiny"
    supernet: dict[str, Any] = field(default_factory=dict)  # options of the preset (nb201: C, N)
    device: str = "cpu"
    runs_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def validate(self) -> RunConfig:
        from evo_nas.algorithms import ALGORITHMS
        from evo_nas.data import DATASETS

        # seeds first: build_supernet seeds torch, which overflows past 2**64 with a traceback
        for where, seed in (("seed", self.seed), ("train.seed", self.train.seed)):
            if not 0 <= seed <= MAX_SEED:
                raise ConfigError(f"{where} = {seed}: must be between 0 and {MAX_SEED} (2**32-1)")
        net = self.build_supernet()  # unknown presets and supernet options fail here
        if self.data.dataset not in DATASETS:
            raise ConfigError(_choose("data.dataset", self.data.dataset, DATASETS))
        if self.search.algorithm not in ALGORITHMS:
            raise ConfigError(_choose("search.algorithm", self.search.algorithm, ALGORITHMS))
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"name = {self.name!r}: must be a plain directory name")
        if not _DEVICE.fullmatch(self.device):
            raise ConfigError(f"device = {self.device!r}: choose 'cpu', 'cuda' or 'cuda:N'")
        if self.data.max_train is not None and self.data.max_train < 1:
            raise ConfigError(f"data.max_train = {self.data.max_train}: must be >= 1 (training "
                              f"images; leave it unset for all)")
        if self.eval.batch_size < 1:
            raise ConfigError(f"eval.batch_size = {self.eval.batch_size}: must be >= 1")
        known = set(CATALOGUE)
        for i, o in enumerate(self.search.objectives):
            if o not in known:
                raise ConfigError(_choose(f"search.objectives[{i}]", o, known))
        if not self.search.objectives:
            raise ConfigError("search.objectives: at least one objective is needed")
        if len(set(self.search.objectives)) != len(self.search.objectives):
            raise ConfigError(f"search.objectives = {self.search.objectives}: repeated name")
        channels = self._data_channels()
        if net.in_channels != channels:
            raise ConfigError(f"preset = {self.preset!r} takes {net.in_channels}"
                              f"-channel images but data.dataset = {self.data.dataset!r} has "
                              f"{channels}")
        for k, v in self.search.budgets.items():
            if k not in known:
                raise ConfigError(_choose(f"search.budgets.{k}", k, known))
            if not v > 0:
                raise ConfigError(f"search.budgets.{k} = {v}: must be positive")
        for name in ("pop_size", "generations", "budget"):
            value = getattr(self.search, name)
            if value is not None and value < (2 if name == "pop_size" else 1):
                raise ConfigError(f"search.{name} = {value}: too small")
        if self.search.algorithm == "surrogate" and self.search.budget is None:
            raise ConfigError("search.budget: algorithm 'surrogate' needs a budget of real "
                              "evaluations (search.budget, --budget N)")
        self._validate_parallel()
        if self.eval.bn not in ("recalibrate", "batch"):
            raise ConfigError(_choose("eval.bn", self.eval.bn, ("recalibrate", "batch")))
        if self.eval.eval_images is not None and self.eval.eval_images < 1:
            raise ConfigError(f"eval.eval_images = {self.eval.eval_images}: must be >= 1")
        if self.eval.calib_images < 1:
            raise ConfigError(f"eval.calib_images = {self.eval.calib_images}: must be >= 1")
        from evo_nas.algorithms import check_algorithm_options

        space = net.space
        s = self.search
        check_algorithm_options(  # bad options fail now, against what the config knows
            s.algorithm, s.options, space=space, pop_size=s.pop_size, objectives=s.objectives,
            cheap_budgets=[k for k in s.budgets if k in CHEAP_METRICS], budget=s.budget)
        self.train.validate(space)  # phases checked against the space
        self._validate_latency()
        return self

    def build_supernet(self) -> Any:
        """An untrained supernet of ``preset`` with the ``supernet`` options (torch seeded by
        ``train.seed``, so the initial weights follow the run's seed rule)."""
        import torch

        from evo_nas.nn.protocol import supernet_from_preset

        with torch.random.fork_rng():
            torch.manual_seed(self.train.seed)
            try:
                return supernet_from_preset(self.preset, **self.supernet)
            except TypeError as e:
                raise ConfigError(f"supernet = {self.supernet}: {e}") from None

    def _validate_parallel(self) -> None:
        from evo_nas.parallel import BACKENDS

        s = self.search
        if s.backend not in BACKENDS:
            raise ConfigError(_choose("search.backend", s.backend, BACKENDS))
        for name in ("workers", "worker_threads"):
            if getattr(s, name) < 1:
                raise ConfigError(f"search.{name} = {getattr(s, name)}: must be >= 1")
        if s.scheduler is not None and s.backend != "dask":
            raise ConfigError(f"search.scheduler = {s.scheduler!r} needs search.backend = "
                              f"'dask', not {s.backend!r}")

    def _validate_latency(self) -> None:
        from evo_nas.latency.measure import BACKENDS, STATS

        lat = self.latency
        if lat.backend not in BACKENDS:
            raise ConfigError(_choose("latency.backend", lat.backend, BACKENDS))
        if lat.stat not in STATS:
            raise ConfigError(_choose("latency.stat", lat.stat, STATS))
        for name in ("threads", "batch_size", "repeats", "contexts"):
            if getattr(lat, name) < 1:
                raise ConfigError(f"latency.{name} = {getattr(lat, name)}: must be >= 1")
        if lat.table is not None and not Path(lat.table).is_file():
            raise ConfigError(f"latency.table = {lat.table!r}: file does not exist")


    def _data_channels(self) -> int:
        """Channels of the configured images; for ``npz`` read from the file, so a wrong
        ``data.path`` or a preset/channel mismatch fails before any training."""
        d = self.data
        if d.dataset != "npz":
            if d.path is not None:
                raise ConfigError(f"data.path = {d.path!r} is read only by data.dataset = 'npz', "
                                  f"not {d.dataset!r}")
            return {"cifar10": 3}.get(d.dataset, 1)
        if d.path is None:
            raise ConfigError("data.path: data.dataset = 'npz' needs the .npz file (--data-path)")
        if not Path(d.path).is_file():
            raise ConfigError(f"data.path = {d.path!r}: file does not exist")
        from evo_nas.data import npz_channels

        return npz_channels(d.path)


def _choose(path: str, value: Any, options) -> str:
    return f"{path} = {value!r}: choose one of {sorted(options)}"


MAX_SEED = 2**32 - 1  # what numpy, sklearn and torch all accept
# Metrics the pipeline can compute cheaply (pipeline.build_problem: flops and params from the
# analytic CostModel, latency from a table): the budgets search.options repair/sampling = budget
# can use. Latency measured per sub-network is not cheap; the algorithm's builder says so then.
CHEAP_METRICS = ("flops", "params", "latency")
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def check_device(device: str, field: str = "device") -> None:
    """Fail before any work when ``device`` names a GPU this machine does not have."""
    if not _DEVICE.fullmatch(str(device)):
        raise ConfigError(f"{field} = {device!r}: choose 'cpu', 'cuda' or 'cuda:N'")
    if device == "cpu":
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"{field} = {device!r}: no CUDA GPU is available here (use cpu)")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(f"{field} = {device!r}: this machine has {torch.cuda.device_count()} "
                          f"CUDA device(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})")


def check_dir_name(field: str, value: Any) -> None:
    """A run or batch name must be one plain folder name: no separators, '..' or absolute path."""
    text = str(value)
    if (not text or text in (".", "..") or "/" in text or "\\" in text
            or Path(text).is_absolute()):
        raise ConfigError(f"{field} = {value!r}: must be a plain directory name (no '/', '..' "
                          f"or absolute path)")


def check_writable_dir(path: str | Path, field: str) -> None:
    """Fail up front (before any training or search) when ``path`` cannot become a writable
    directory: it, or the nearest folder above it that exists, is a file or is not writable."""
    p = Path(path)
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    what = "it" if probe == p else repr(str(probe))
    if not probe.is_dir():
        raise ConfigError(f"{field} = {str(path)!r}: {what} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{field} = {str(path)!r}: {what} is not writable (read-only); "
                          f"choose another directory")


def check_writable_file(path: str | Path, field: str) -> None:
    """Fail up front when the file ``path`` could not be written at the end of the work."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{field} = {str(path)!r}: is a directory, not a file")
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"{field} = {str(path)!r}: file is not writable")
    check_writable_dir(p.parent, field)


def parse(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, checking every key and type against its hints."""
    where = path or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in names:
            msg = f"unknown config key {sub!r}"
            close = difflib.get_close_matches(str(key), names, n=1)
            raise ConfigError(msg + (f" (did you mean {close[0]!r}?)" if close else ""))
        if cls is SearchConfig and key == "budget" and isinstance(value, dict):
            raise ConfigError(f"{sub} = {value!r}: the budget counts real evaluations (an "
                              f"integer); bounds on metrics are 'budgets' (did you mean "
                              f"'budgets'?)")
        kwargs[key] = _coerce(hints[key], value, sub)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return parse(hint, value, path)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path} = {value!r}: expected a list")
        return [_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path} = {value!r}: expected a mapping")
        return {str(k): _coerce(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} = {value!r}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} = {value!r}: expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path} = {value!r}: expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} = {value!r}: expected a string")
        return value
    return value


def read_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not a text file (byte "
                          f"{e.object[e.start]:#04x} at offset {e.start} is not UTF-8): expected "
                          f"YAML or TOML") from None
    try:
        data = tomllib.loads(text) if p.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        kind = "TOML" if p.suffix == ".toml" else "YAML"
        raise ConfigError(f"config file {str(p)!r} is not valid {kind}: {e}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping, not {type(data).__name__}")
    return data


def load_config(source: str | Path | dict[str, Any] | None = None) -> RunConfig:
    """A validated :class:`RunConfig` from a YAML/TOML file, a dict, or defaults (``None``).

    The one seed rule, for files, dicts, the CLI and batches alike: ``train.seed`` follows the
    run's ``seed`` unless the source sets ``train.seed`` itself, so different run seeds train
    different supernets while an explicit training seed stays fixed."""
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, dict):
        data = source
    else:
        data = read_file(source)
    cfg = parse(RunConfig, data)
    for section, fields in PRESET_DEFAULTS.get(cfg.preset, {}).items():
        given = data.get(section)
        for name, value in fields.items():
            if not (isinstance(given, dict) and name in given):
                setattr(getattr(cfg, section), name, copy.deepcopy(value))
    train = data.get("train")
    if not (isinstance(train, dict) and "seed" in train):
        cfg.train.seed = cfg.seed
    return cfg.validate()


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
