"""Ranking fidelity: does the supernet rank sub-networks the way stand-alone training does?

The protocol (``evo-nas fidelity``, ``benchmarks/bench_fidelity.py``):

1. draw ``k`` distinct sub-networks spread evenly over the space's FLOPs range;
2. train each one stand-alone (an extracted static module, fresh or the supernet's initial
   weights, a fixed budget) for ``seeds`` seeds, and score it on the validation split;
3. train one supernet per sampler with identical settings (same epochs, batches and number of
   trained sub-networks per step), and score the same sub-networks through it after BN
   re-calibration;
4. compare the two rankings: Kendall tau and Spearman rho (scipy), top-k overlap, on validation
   cross-entropy (continuous, the primary figure) and on accuracy, with a bootstrap confidence
   interval for tau that resamples architectures and, within each, stand-alone seeds;
5. set each sampler against uniform (SPOS) with a *paired* bootstrap of the tau difference
   (:func:`bootstrap_tau_difference`; :func:`pooled_tau_difference` averages several studies).

The agreement between two stand-alone seeds (the *noise ceiling*) is reported too: it says how
far the stand-alone ranking, the reference every sampler is scored against, can be trusted.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from evo_nas.costs import CostModel
from evo_nas.data import Dataset, batches, load_dataset
from evo_nas.errors import ConfigError
from evo_nas.machine import machine_info
from evo_nas.nn import resize
from evo_nas.nn.protocol import build_supernet, supernet_from_preset
from evo_nas.objectives import SupernetAccuracy
from evo_nas.predictors.metrics import kendall_tau, spearman_rho
from evo_nas.space import SearchSpace
from evo_nas.train import (
    SAMPLERS,
    FlopsBuckets,
    TrainConfig,
    make_sampler,
    sampler_kwargs,
    train_supernet,
)

__all__ = [
    "FidelityConfig",
    "bootstrap_tau",
    "bootstrap_tau_difference",
    "parse_sampler",
    "plot_fidelity",
    "pooled_tau_difference",
    "rank_metrics",
    "run_fidelity",
    "spread_architectures",
    "train_standalone",
]


def parse_sampler(spec: str) -> tuple[str, str, int | None]:
    """``name[:mode][@N]`` -> (name, mode or "", N or None); e.g. ``attentive:worstup``,
    ``uniform@2`` (2 sub-networks per step)."""
    head, at, per = spec.partition("@")
    name, _, mode = head.partition(":")
    if not at:
        return name, mode, None
    try:
        n = int(per)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"fidelity.samplers: {spec!r}: @{per} must be a positive whole "
                          f"number of sub-networks per step")
    return name, mode, n


@dataclass
class FidelityConfig:
    """Settings of one fidelity study; the defaults are the committed CPU benchmark."""

    preset: str = "tiny"
    dataset: str = "digits_hard"
    data_dir: str | None = None
    k: int = 14
    seeds: int = 3
    supernet_seeds: int = 2
    samplers: list[str] = field(
        default_factory=lambda: ["uniform", "sandwich", "fair", "flops_bucket", "attentive",
                                 "attentive:worstup"])
    supernet_epochs: int = 20
    standalone_epochs: int = 20
    batch_size: int = 64
    lr: float = 0.1
    subnets_per_step: int = 4
    distill: bool = True
    init: str = "fresh"
    calib_images: int = 400
    spacing: str = "log"
    band: float = 0.15
    top_k: int = 4
    n_boot: int = 2000
    seed: int = 0
    n_jobs: int = 2
    device: str = "cpu"
    reuse_standalone: str | None = None

    @classmethod
    def quick(cls, **changes: Any) -> FidelityConfig:
        """Smoke-run settings (about a minute on 2 cores): the pipeline, not the figures."""
        base = {"k": 4, "seeds": 2, "supernet_seeds": 1, "samplers": ["uniform", "sandwich"],
                "supernet_epochs": 1,
                "standalone_epochs": 1, "top_k": 2, "n_boot": 200, "calib_images": 200}
        return cls(**{**base, **changes})

    def validate(self, space: SearchSpace | None = None) -> None:
        for name in ("k", "seeds", "supernet_seeds", "supernet_epochs", "standalone_epochs",
                     "batch_size", "n_boot", "n_jobs", "calib_images", "subnets_per_step"):
            if getattr(self, name) < 1:
                raise ConfigError(f"fidelity.{name} = {getattr(self, name)}: must be at least 1")
        if self.k < 3:
            raise ConfigError(f"fidelity.k = {self.k}: need at least 3 architectures to rank")
        if not 1 <= self.top_k <= self.k:
            raise ConfigError(f"fidelity.top_k = {self.top_k}: must lie in 1..k ({self.k})")
        if self.init not in ("fresh", "same"):
            raise ConfigError(f"fidelity.init = {self.init!r}: choose 'fresh' or 'same'")
        if not self.samplers:
            raise ConfigError("fidelity.samplers: name at least one sampler")
        if len(set(self.samplers)) != len(self.samplers):
            raise ConfigError(f"fidelity.samplers = {self.samplers}: a sampler is named twice")
        for s in self.samplers:
            name, mode, per = parse_sampler(s)
            if name not in SAMPLERS:
                raise ConfigError(f"fidelity.samplers: {s!r} is unknown, choose from "
                                  f"{sorted(SAMPLERS)} (attentive:bestup / attentive:worstup, "
                                  f"@N for N sub-networks per step)")
            if mode and (name != "attentive" or mode not in ("bestup", "worstup")):
                raise ConfigError(f"fidelity.samplers: {s!r}: only attentive takes a mode "
                                  f"(attentive:bestup or attentive:worstup)")
            if per is not None:
                fixed = _fixed_subnets(name, self.distill)
                if name == "fair":
                    raise ConfigError(f"fidelity.samplers: {s!r}: fair trains one sub-network "
                                      f"per option of the widest gene, its count is not free")
                if per <= fixed:
                    raise ConfigError(f"fidelity.samplers: {s!r}: {name} needs more than {fixed} "
                                      f"sub-networks per step (its fixed ones + 1 random)")
        if space is not None and self.k > space.cardinality():
            raise ConfigError(f"fidelity.k = {self.k}: space {space.name!r} holds only "
                              f"{space.cardinality()} architectures")

    def train_config(self, sampler: str, seed: int | None = None) -> TrainConfig:
        """The supernet training of ``sampler``: equal sub-network passes for all.

        With distillation the largest network is trained every step; the sampler fills the other
        slots (uniform: ``n_random``; sandwich/buckets/attentive: smallest + ``n_random``; fair:
        its own ``k``, the space's largest option count). A plain name trains
        ``subnets_per_step`` sub-networks per step for ``supernet_epochs``; ``name@N`` trains N
        per step for ``supernet_epochs * subnets_per_step / N`` epochs (rounded), so fewer
        sub-networks per step buy more optimiser steps at the same compute.
        """
        name, mode, per = parse_sampler(sampler)
        epochs = self.supernet_epochs
        if per is not None:
            epochs = max(1, round(self.supernet_epochs * self.subnets_per_step / per))
        options: dict[str, Any] = {"mode": mode} if mode else {}
        n_random = max((per or self.subnets_per_step) - _fixed_subnets(name, self.distill), 1)
        return TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=self.lr,
                           sampler=name, n_random=n_random, distill=self.distill,
                           seed=self.seed if seed is None else seed, sampler_options=options)

    def supernet_seed_list(self) -> list[int]:
        """One training seed per supernet of a sampler (the first is ``seed`` itself)."""
        return [self.seed + j for j in range(self.supernet_seeds)]


def _default_sampler_spec(cfg: FidelityConfig, space: SearchSpace) -> str:
    """The row of the study that is the library's default training (``TrainConfig()``): its
    sampler, with ``@N`` when it trains another number of sub-networks per step."""
    default = TrainConfig()
    per = _subnets_per_step(default, space)
    return default.sampler if per == cfg.subnets_per_step else f"{default.sampler}@{per}"


def _fixed_subnets(sampler: str, distill: bool) -> int:
    """Sub-networks a step of ``sampler`` trains beside its random picks, as the sampler says
    (:meth:`~evo_nas.train.samplers.UniformSampler.fixed_subnets`)."""
    return make_sampler(sampler).fixed_subnets(distill)


def _subnets_per_step(tc: TrainConfig, space: SearchSpace) -> int:
    """Sub-networks one training step of ``tc`` trains, as its sampler says
    (:meth:`~evo_nas.train.samplers.UniformSampler.subnets_per_step`)."""
    return make_sampler(tc.sampler, **sampler_kwargs(tc)).subnets_per_step(space, tc.distill)


# ---------------------------------------------------------------------- architectures
SPACINGS = ("log", "linear", "band")


def spread_architectures(space: SearchSpace, k: int, rng: np.random.Generator | int | None = None,
                         cost: Callable[[dict[str, Any]], float] | None = None,
                         pool: int = 4000, spacing: str = "log", band: float = 0.15
                         ) -> np.ndarray:
    """``k`` distinct canonical genomes whose FLOPs are spread between the smallest and largest
    sub-network: the nearest unused proposal to each of ``k`` targets evenly spaced in log-FLOPs
    (``spacing="log"``, where accuracy changes fastest, at the small end) or in FLOPs
    (``"linear"``). ``"band"`` instead spaces the targets evenly within +-``band`` (relative) of
    the geometric middle of the range: networks of about one size, where FLOPs alone says little
    about which is better and the supernet has to rank shapes, not sizes."""
    if spacing not in SPACINGS:
        raise ConfigError(f"fidelity.spacing = {spacing!r}: choose one of {list(SPACINGS)}")
    if not 0.0 < band < 1.0:
        raise ConfigError(f"fidelity.band = {band}: the relative half-width must lie in (0, 1)")
    if k > space.cardinality():
        raise ConfigError(f"fidelity.k = {k}: space {space.name!r} holds only "
                          f"{space.cardinality()} architectures")
    rng = np.random.default_rng(rng)
    fb = FlopsBuckets(space, 1, cost)
    if space.cardinality() <= pool:
        grid = np.array(list(itertools.product(*[range(m) for m in space.n_options])))
        X = np.unique(space.canonical(grid), axis=0)
    else:
        X = np.vstack([space.largest(), space.smallest(), fb.propose(pool, rng)])
        _, first = np.unique(X, axis=0, return_index=True)
        X = X[np.sort(first)]
    f = fb.flops(X)
    if spacing == "band":
        mid = float(np.sqrt(f.min() * f.max()))
        targets = np.linspace(mid * (1 - band), mid * (1 + band), k)
    elif spacing == "log":
        targets = np.geomspace(f.min(), f.max(), k)
    else:
        targets = np.linspace(f.min(), f.max(), k)
    free = np.ones(len(X), dtype=bool)
    picks = []
    for t in targets:
        d = np.where(free, np.abs(f - t), np.inf)
        j = int(np.argmin(d))
        picks.append(j)
        free[j] = False
    return X[np.array(picks)]


# ---------------------------------------------------------------------- scoring
class _Standalone(torch.nn.Module):
    """A stand-alone (extracted, static) network seen through the supernet interface
    :class:`~evo_nas.objectives.SupernetAccuracy` reads: one architecture, one input shape."""

    def __init__(self, model: torch.nn.Module, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.model, self.shape = model, tuple(input_shape)

    def input_shape(self, config: dict[str, Any]) -> tuple[int, ...]:
        return self.shape

    def set_active(self, config: dict[str, Any]) -> None:
        pass  # it is the one architecture

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _scorer(net: Any, data: Dataset, cfg: FidelityConfig) -> SupernetAccuracy:
    """(accuracy %, mean cross-entropy) on the validation split after BN re-calibration, by
    :meth:`SupernetAccuracy.evaluate`: the study's ``calib_images`` fixed calibration images
    (the same for every network), in batches of 200, and validation batches of 500."""
    return SupernetAccuracy(net, data, split="val", calib_images=cfg.calib_images,
                            calib_batch=200, batch_size=500, device=cfg.device, seed=cfg.seed)


def train_standalone(settings: dict[str, Any], config: dict[str, Any], data: Dataset,
                     epochs: int, seed: int, batch_size: int = 64, lr: float = 0.1,
                     weight_decay: float = 5e-5,
                     init_state: dict[str, torch.Tensor] | None = None,
                     device: str = "cpu") -> torch.nn.Module:
    """Train ``config`` alone as a static module (extracted, no elastic code) for a fixed budget.

    ``settings`` are a supernet's ``settings()``. Weights start fresh (a new supernet seeded
    with ``seed``) or, with ``init_state``, from the
    given supernet weights (the supernet's own initialisation: "same init"). SGD with Nesterov
    momentum, per-step cosine schedule, the dataset's augmentation; batches follow ``seed``.
    """
    torch.manual_seed(seed)
    net = build_supernet(settings)
    if init_state is not None:
        net.load_state_dict(init_state)
    res = _res(net, config)
    model = net.extract(config).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                          weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    total = epochs * -(-len(data.train) // batch_size)
    step = 0
    for _ in range(epochs):
        for x, y in batches(data.train, batch_size, shuffle=True, generator=gen):
            if data.augment is not None:
                x = data.augment(x, gen)
            for g in opt.param_groups:
                g["lr"] = 0.5 * lr * (1 + np.cos(np.pi * step / total))
            step += 1
            x = resize(x, res).to(device).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model


def _res(net: Any, config: dict[str, Any]) -> int:
    """The square input size ``config``'s sub-network takes."""
    return int(net.input_shape(config)[-1])


def _standalone_job(settings: dict[str, Any], config: dict[str, Any], data: Dataset,
                    cfg: FidelityConfig, seed: int, init_state: dict[str, torch.Tensor] | None
                    ) -> dict[str, float]:
    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    model = train_standalone(settings, config, data, cfg.standalone_epochs, seed,
                             cfg.batch_size, cfg.lr, init_state=init_state, device=cfg.device)
    shape = build_supernet(settings).input_shape(config)
    acc, loss = _scorer(_Standalone(model, shape), data, cfg).evaluate(config)
    return {"acc": acc, "loss": loss, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0}


def _supernet_job(settings: dict[str, Any], configs: list[dict[str, Any]], data: Dataset,
                  cfg: FidelityConfig, sampler: str, seed: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    net = build_supernet(settings)
    log = train_supernet(net, data, cfg.train_config(sampler, seed), device=cfg.device)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    score = _scorer(net, data, cfg)
    acc, loss = zip(*(score.evaluate(c) for c in configs), strict=True)
    return {"acc": list(acc), "loss": list(loss), "train_seconds": seconds,
            "cpu_seconds": time.process_time() - c0, "train_cpu_seconds": cpu,
            "final_train_loss": log[-1]["loss"]}


# settings that decide the architectures and their stand-alone results
_STANDALONE_KEYS = ("preset", "dataset", "data_dir", "k", "seeds", "standalone_epochs",
                    "batch_size", "lr", "init", "calib_images", "spacing", "band", "seed")


def _reused_standalone(cfg: FidelityConfig, X: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, float]:
    """Stand-alone (loss, accuracy, seconds) of an earlier study with the same settings, so
    another sampler can join it without retraining the K x seeds networks (most of the cost)."""
    path = Path(cfg.reuse_standalone or "")
    try:
        prior = json.loads(path.read_text())
        settings, archs = prior["settings"], prior["architectures"]
    except FileNotFoundError:
        raise ConfigError(f"fidelity.reuse_standalone = {str(path)!r}: no such file") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"fidelity.reuse_standalone = {str(path)!r}: not a fidelity result "
                          f"JSON ({e})") from None
    defaults = FidelityConfig()
    for key in _STANDALONE_KEYS:
        theirs = settings.get(key, getattr(defaults, key))
        if theirs != getattr(cfg, key):
            raise ConfigError(f"fidelity.reuse_standalone = {str(path)!r}: it was run with "
                              f"{key} = {theirs!r}, this study has {key} = {getattr(cfg, key)!r}")
    if [a["genome"] for a in archs] != X.tolist():
        raise ConfigError(f"fidelity.reuse_standalone = {str(path)!r}: its architectures differ "
                          f"from the ones these settings draw (the space changed?)")
    return (np.array([a["standalone_loss"] for a in archs]),
            np.array([a["standalone_acc"] for a in archs]),
            float(prior.get("standalone_seconds", 0.0)))


# ---------------------------------------------------------------------- statistics
_tau = kendall_tau  # tau-b (scipy), 0 when a side is constant: the one the predictors report


def _tau_replicates(scores: Sequence[np.ndarray], standalone: np.ndarray, n_boot: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(n_boot, len(scores)) bootstrap taus. Each replicate resamples architectures and, within
    each, stand-alone seeds once for all score sets (paired), then picks one supernet (row) of
    each (supernet seeds, k) score set."""
    k, n = standalone.shape
    taus = np.empty((n_boot, len(scores)))
    for b in range(n_boot):
        idx = rng.integers(0, k, k)
        target = standalone[idx[:, None], rng.integers(0, n, (k, n))].mean(1)
        for j, s in enumerate(scores):
            taus[b, j] = _tau(s[rng.integers(0, len(s))][idx], target)
    return taus


def bootstrap_tau(supernet: Sequence[float] | np.ndarray, standalone: np.ndarray,
                  n_boot: int = 2000, rng: np.random.Generator | int | None = 0,
                  level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of Kendall tau between a supernet's scores and the seed-mean of
    ``standalone`` (k, seeds). ``supernet`` is (k,) or (supernet seeds, k): each replicate
    resamples architectures, stand-alone seeds within each, and which supernet was trained, so
    the interval covers all three sources of noise."""
    s = np.atleast_2d(np.asarray(supernet, dtype=float))
    sa = np.atleast_2d(np.asarray(standalone, dtype=float))
    taus = _tau_replicates([s], sa, n_boot, np.random.default_rng(rng))[:, 0]
    lo, hi = np.quantile(taus, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _mean_tau(supernet: np.ndarray, standalone: np.ndarray) -> float:
    return float(np.mean([_tau(row, standalone.mean(1)) for row in supernet]))


def bootstrap_tau_difference(supernet: Sequence[float] | np.ndarray,
                             reference: Sequence[float] | np.ndarray, standalone: np.ndarray,
                             n_boot: int = 2000, rng: np.random.Generator | int | None = 0,
                             level: float = 0.95) -> tuple[float, float, float]:
    """tau(``supernet``) - tau(``reference``) with a *paired* percentile bootstrap CI.

    Both samplers are ranked against the same architectures and stand-alone seeds, so their
    taus share most of their noise; each replicate resamples those once for both (and one
    supernet of each). A CI above 0 says ``supernet`` ranks better beyond that noise. Returns
    (mean difference, low, high)."""
    return pooled_tau_difference([(supernet, reference, standalone)], n_boot, rng, level)


def pooled_tau_difference(studies: Sequence[tuple[Any, Any, np.ndarray]], n_boot: int = 2000,
                          rng: np.random.Generator | int | None = 0,
                          level: float = 0.95) -> tuple[float, float, float]:
    """The mean over independent studies (other data seeds, other architecture sets) of the
    paired tau difference, each ``(supernet, reference, standalone)`` as in
    :func:`bootstrap_tau_difference`; the CI averages one replicate of each study, so it narrows
    as studies accumulate. Returns (mean difference, low, high)."""
    rng = np.random.default_rng(rng)
    diffs, reps = [], []
    for supernet, reference, standalone in studies:
        s = np.atleast_2d(np.asarray(supernet, dtype=float))
        r = np.atleast_2d(np.asarray(reference, dtype=float))
        sa = np.atleast_2d(np.asarray(standalone, dtype=float))
        diffs.append(_mean_tau(s, sa) - _mean_tau(r, sa))
        taus = _tau_replicates([s, r], sa, n_boot, rng)
        reps.append(taus[:, 0] - taus[:, 1])
    lo, hi = np.quantile(np.mean(reps, axis=0), [(1 - level) / 2, (1 + level) / 2])
    return float(np.mean(diffs)), float(lo), float(hi)


def rank_metrics(supernet: Sequence[float] | np.ndarray, standalone: np.ndarray, top_k: int,
                 n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Kendall tau (+ bootstrap CI), Spearman rho and top-k overlap; lower values are better
    (cross-entropy, or error = -accuracy) on both sides.

    ``supernet`` is (k,) or (supernet seeds, k): each figure is then the mean over the supernets
    (what one trained supernet achieves on average), ``tau_per_seed`` lists them one by one."""
    s = np.atleast_2d(np.asarray(supernet, dtype=float))
    sa = np.atleast_2d(np.asarray(standalone, dtype=float))
    mean = sa.mean(1)
    top_a = set(np.argsort(mean, kind="stable")[:top_k])
    taus = [_tau(row, mean) for row in s]
    rhos = [spearman_rho(row, mean) for row in s]
    tops = [len(set(np.argsort(row, kind="stable")[:top_k]) & top_a) / top_k for row in s]
    lo, hi = bootstrap_tau(s, sa, n_boot, seed)
    return {"kendall_tau": float(np.mean(taus)), "tau_ci95": [lo, hi],
            "tau_per_seed": taus,
            "spearman_rho": float(np.mean(rhos)),
            f"top{top_k}_overlap": float(np.mean(tops))}


def _noise_ceiling(sa: np.ndarray) -> float | None:
    """Mean Kendall tau between every pair of stand-alone seeds."""
    if sa.shape[1] < 2:
        return None
    return float(np.mean([_tau(sa[:, i], sa[:, j])
                          for i, j in itertools.combinations(range(sa.shape[1]), 2)]))


def _split_half(sa: np.ndarray) -> float | None:
    """Kendall tau between the means of the first and second half of the stand-alone seeds:
    how well a mean over half the seeds agrees with itself (a floor on the reliability of the
    full mean that every sampler is ranked against)."""
    n = sa.shape[1]
    if n < 4:
        return None
    return _tau(sa[:, :n // 2].mean(1), sa[:, n // 2:].mean(1))


# ---------------------------------------------------------------------- the study
def _describe_data(cfg: FidelityConfig, data: Dataset) -> dict[str, Any]:
    from evo_nas.data import HARD_DIGITS

    d: dict[str, Any] = {"name": data.name, "train": len(data.train), "val": len(data.val),
                         "test": len(data.test),
                         "augment": asdict(data.augment) if data.augment else None}
    if data.name == "digits_hard":
        d["recipe"] = dict(HARD_DIGITS)
        d["why"] = ("plain digits leaves every sub-network at 97-99.7 % (one val image = "
                    "0.28 %), so accuracy ranks are noise: random shifts, rotations and pixel "
                    "noise (fresh per training batch, fixed once for val/test), 1000 training "
                    "images and a large validation split keep stand-alone accuracy far from "
                    "saturation (see noise_ceiling.standalone_acc_range), where architectures "
                    "differ by more than seed noise")
    d["bn_calibration"] = (f"{cfg.calib_images} fixed training images drawn through the "
                           "training augmentation (evo_nas.data.calibration_images), for "
                           "supernet and stand-alone networks alike")
    return d


def run_fidelity(cfg: FidelityConfig | None = None, progress: bool = False,
                 log: Callable[[str], None] | None = None,
                 data: Dataset | None = None) -> dict[str, Any]:
    """Run the whole study and return the JSON-ready result (see the module docstring).

    ``data`` replaces ``cfg.dataset`` (your own :class:`~evo_nas.data.Dataset`)."""
    from joblib import Parallel, delayed

    cfg = cfg or FidelityConfig()
    proto = supernet_from_preset(cfg.preset)
    settings, space = proto.settings(), proto.space
    cfg.validate(space)
    say = log or (lambda _m: None)
    t_start = time.perf_counter()
    if data is None:
        data = load_dataset(cfg.dataset, cfg.data_dir, seed=cfg.seed)
    if data.in_channels != proto.in_channels:
        raise ConfigError(f"fidelity.preset {cfg.preset!r} takes {proto.in_channels}-channel "
                          f"images but dataset {cfg.dataset!r} has {data.in_channels}")
    X = spread_architectures(space, cfg.k, cfg.seed, spacing=cfg.spacing, band=cfg.band)
    configs = space.decode_many(X)
    costs = CostModel(space)(configs)
    init_state = None
    if cfg.init == "same":
        torch.manual_seed(cfg.seed)
        init_state = build_supernet(settings).state_dict()
    seeds = cfg.supernet_seed_list()
    prior = _reused_standalone(cfg, X) if cfg.reuse_standalone else None
    alone_msg = (f"stand-alone results of {cfg.k * cfg.seeds} trainings from "
                 f"{cfg.reuse_standalone}" if prior else f"{cfg.k * cfg.seeds} stand-alone "
                                                          f"trainings")
    say(f"{cfg.k} architectures, {costs['flops'].min():.2f}-{costs['flops'].max():.2f} MFLOPs; "
        f"{alone_msg} and {len(cfg.samplers)} samplers x {len(seeds)} supernet seeds")
    # every job scores on the same calibration images (_scorer: calib_images drawn with seed)
    jobs = [delayed(_supernet_job)(settings, configs, data, cfg, s, sd)
            for s in cfg.samplers for sd in seeds]
    if prior is None:
        jobs += [delayed(_standalone_job)(settings, c, data, cfg, cfg.seed + 1000 * (r + 1),
                                          init_state)
                 for c in configs for r in range(cfg.seeds)]
    out = Parallel(n_jobs=cfg.n_jobs, verbose=10 if progress else 0)(jobs)
    n_sup = len(cfg.samplers) * len(seeds)
    sup, alone = out[:n_sup], out[n_sup:]
    if prior is None:
        sa_loss = np.array([a["loss"] for a in alone]).reshape(cfg.k, cfg.seeds)
        sa_acc = np.array([a["acc"] for a in alone]).reshape(cfg.k, cfg.seeds)
        sa_seconds = round(sum(a["seconds"] for a in alone), 1)
    else:
        sa_loss, sa_acc, sa_seconds = prior
    by_sampler = {name: sup[i * len(seeds):(i + 1) * len(seeds)]
                  for i, name in enumerate(cfg.samplers)}
    # per sampler: (supernet seeds, k) arrays of loss and accuracy
    loss_of = {n: np.array([r["loss"] for r in runs]) for n, runs in by_sampler.items()}
    acc_of = {n: np.array([r["acc"] for r in runs]) for n, runs in by_sampler.items()}

    def metrics(loss: np.ndarray, acc: np.ndarray) -> dict[str, Any]:
        return {"loss": rank_metrics(loss, sa_loss, cfg.top_k, cfg.n_boot, cfg.seed),
                "accuracy": rank_metrics(-acc, -sa_acc, cfg.top_k, cfg.n_boot, cfg.seed)}

    table = []
    for name, runs in by_sampler.items():
        tc = cfg.train_config(name)
        row = {"sampler": name,
               "subnets_per_step": _subnets_per_step(tc, space),
               "supernet_epochs": tc.epochs,
               "supernet_seeds": seeds,
               "train_seconds": round(float(np.median([r["train_seconds"] for r in runs])), 1),
               "train_cpu_seconds": round(float(np.median([r["train_cpu_seconds"]
                                                           for r in runs])), 1),
               **metrics(loss_of[name], acc_of[name])}
        table.append(row)
    if "uniform" in loss_of:  # each sampler against SPOS uniform, paired over the same data
        for row in table:
            if row["sampler"] != "uniform":
                d, lo, hi = bootstrap_tau_difference(loss_of[row["sampler"]], loss_of["uniform"],
                                                     sa_loss, cfg.n_boot, cfg.seed)
                row["loss"]["tau_minus_uniform"] = d
                row["loss"]["tau_minus_uniform_ci95"] = [lo, hi]
    # zero-cost proxies: what ranking by size alone achieves (bigger = better)
    baselines = {key: metrics(-costs[key], costs[key]) for key in ("flops", "params")}
    uniform = next((r["loss"]["kendall_tau"] for r in table if r["sampler"] == "uniform"), None)
    best = max(table, key=lambda r: (r["loss"]["kendall_tau"], r["loss"]["tau_ci95"][0]))
    default = _default_sampler_spec(cfg, space)
    target = None
    drow = next((r for r in table if r["sampler"] == default), None)
    if drow is not None:
        diff_ci = drow["loss"].get("tau_minus_uniform_ci95")
        target = {"default_sampler": default, "tau": drow["loss"]["kendall_tau"],
                  "tau_ci95": drow["loss"]["tau_ci95"], "uniform_tau": uniform,
                  "tau_at_least_0.8": drow["loss"]["kendall_tau"] >= 0.8,
                  "ci_low_above_uniform_tau": (drow["loss"]["tau_ci95"][0] > uniform
                                               if uniform is not None else None),
                  # the paired test: is the default better than uniform beyond noise?
                  "tau_minus_uniform_ci95": diff_ci,
                  "beats_uniform": diff_ci[0] > 0 if diff_ci is not None else None}
    archs = []
    for i, c in enumerate(configs):
        archs.append({"genome": X[i].tolist(), "config": c,
                      "mflops": float(costs["flops"][i]), "mparams": float(costs["params"][i]),
                      "standalone_loss": sa_loss[i].tolist(),
                      "standalone_acc": sa_acc[i].tolist(),
                      "supernet_loss": {n: v[:, i].tolist() for n, v in loss_of.items()},
                      "supernet_acc": {n: v[:, i].tolist() for n, v in acc_of.items()}})
    return {
        "benchmark": "supernet ranking fidelity",
        "settings": asdict(cfg),
        "data": _describe_data(cfg, data),
        "ranked_by": "validation cross-entropy (primary) and accuracy; lower loss / higher "
                     "accuracy is better; a sampler's tau is the mean over its supernet seeds "
                     "(tau_per_seed lists them), against the mean of the stand-alone seeds; "
                     "tau CI = 95 % bootstrap over architectures, stand-alone seeds and "
                     "supernet seeds",
        "noise_ceiling": {"loss_tau_between_seeds": _noise_ceiling(sa_loss),
                          "loss_tau_split_half": _split_half(sa_loss),
                          "acc_tau_between_seeds": _noise_ceiling(-sa_acc),
                          "standalone_acc_range": [float(sa_acc.mean(1).min()),
                                                   float(sa_acc.mean(1).max())],
                          "standalone_acc_seed_sd": float(sa_acc.std(1, ddof=1).mean())
                          if cfg.seeds > 1 else None},
        "table": table,
        "baselines": baselines,
        "best_by_loss_tau": best["sampler"],
        "target": target,
        "standalone_seconds": sa_seconds,
        # where the stand-alone results came from: trained here, or read from an earlier study
        "standalone_reused_from": (Path(cfg.reuse_standalone).name if cfg.reuse_standalone
                                   else None),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        # CPU seconds of all training/scoring jobs: what the study costs on dedicated cores
        # (about cpu_seconds / n_jobs of wall time), whatever else shared the machine
        "cpu_seconds": round(sum(a["cpu_seconds"] for a in alone)
                             + sum(r["cpu_seconds"] for r in sup), 1),
        "supernet_train_seconds_total": round(sum(r["train_seconds"] for r in sup), 1),
        "machine": machine_info(cfg.device),
        "architectures": archs,
    }


def format_table(result: dict[str, Any]) -> str:
    """The side-by-side sampler table (and the size proxies) as text."""
    k = result["settings"]["top_k"]
    lines = [f"{'sampler':<18}{'tau(loss)':>10}{'95% CI':>15}{'per supernet seed':>20}"
             f"{'rho':>6}{f'top{k}':>6}{'tau(acc)':>9}{'train s':>9}"]

    def line(name: str, r: dict[str, Any], seconds: float | None) -> str:
        lo, hi = r["loss"]["tau_ci95"]
        per = " ".join(f"{t:.2f}" for t in r["loss"]["tau_per_seed"])
        return (f"{name:<18}{r['loss']['kendall_tau']:>10.3f}{f'[{lo:.2f}, {hi:.2f}]':>15}"
                f"{per:>20}{r['loss']['spearman_rho']:>6.2f}{r['loss'][f'top{k}_overlap']:>6.2f}"
                f"{r['accuracy']['kendall_tau']:>9.3f}"
                + (f"{seconds:>9.1f}" if seconds is not None else ""))

    for r in result["table"]:
        lines.append(line(r["sampler"], r, r["train_seconds"]))
    for name, r in result.get("baselines", {}).items():
        lines.append(line(f"({name} proxy)", r, None))
    nc = result["noise_ceiling"]
    if nc["loss_tau_between_seeds"] is not None:
        half = nc.get("loss_tau_split_half")
        lines.append(f"noise ceiling: stand-alone seed vs seed tau(loss) "
                     f"{nc['loss_tau_between_seeds']:.3f}, tau(acc) "
                     f"{nc['acc_tau_between_seeds']:.3f}"
                     + (f"; half the seeds vs the other half tau(loss) {half:.3f}"
                        if half is not None else ""))
    diffs = [(r["sampler"], r["loss"]) for r in result["table"]
             if "tau_minus_uniform" in r["loss"]]
    if diffs:
        lines.append("tau(loss) minus uniform's, paired 95 % CI: " + "; ".join(
            f"{n} {m['tau_minus_uniform']:+.3f} [{m['tau_minus_uniform_ci95'][0]:+.2f}, "
            f"{m['tau_minus_uniform_ci95'][1]:+.2f}]" for n, m in diffs))
    t = result.get("target")
    if t:
        against = ("it is the uniform baseline" if t["default_sampler"] == "uniform" else
                   f"CI low {t['tau_ci95'][0]:.3f} vs uniform tau "
                   + (f"{t['uniform_tau']:.3f}" if t["uniform_tau"] is not None else "n/a"))
        lines.append(f"default sampler {t['default_sampler']}: tau {t['tau']:.3f} "
                     f"(target 0.8: {'met' if t['tau_at_least_0.8'] else 'NOT met'}); {against}")
    return "\n".join(lines)


def save_result(result: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    return path


def plot_fidelity(result: dict[str, Any], path: str | Path) -> Path:
    """Supernet vs stand-alone validation cross-entropy, one panel per sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = result["architectures"]
    names = [r["sampler"] for r in result["table"]]
    sa = np.array([a["standalone_loss"] for a in archs])
    flops = np.array([a["mflops"] for a in archs])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.3), squeeze=False)
    for ax, row in zip(axes[0], result["table"], strict=True):
        name = row["sampler"]
        runs = np.array([a["supernet_loss"][name] for a in archs])  # (k, supernet seeds)
        sn = runs.mean(1)
        xerr = sa.std(1) if sa.shape[1] > 1 else None
        yerr = runs.std(1) if runs.shape[1] > 1 else None
        ax.errorbar(sa.mean(1), sn, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.7", lw=0.8)
        sc = ax.scatter(sa.mean(1), sn, c=flops, cmap="viridis", s=22, zorder=3)
        lo, hi = row["loss"]["tau_ci95"]
        ax.set_title(f"{name}\ntau={row['loss']['kendall_tau']:.2f} [{lo:.2f}, {hi:.2f}]",
                     fontsize=9)
        ax.set_xlabel("stand-alone val CE", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("supernet val CE (BN re-calibrated,\nmean over supernet seeds)",
                          fontsize=8)
    fig.colorbar(sc, ax=axes[0].tolist(), label="MFLOPs", shrink=0.8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
