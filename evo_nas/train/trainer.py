"""Weight-sharing supernet training: several sub-networks per mini-batch, one optimiser step.

One loop serves every setting: any sampler, in-place distillation, progressive-shrinking phases,
CPU or CUDA (mixed precision with ``torch.autocast`` + ``GradScaler`` on CUDA only), one process
or many (``torch.distributed``; see :mod:`evo_nas.train.distributed`), and per-epoch training state
so a killed run resumes to the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from evo_nas.data import Dataset, batches
from evo_nas.errors import CheckpointError, ConfigError, DataError, TrainingError
from evo_nas.nn.bn import frozen_bn
from evo_nas.nn.protocol import WeightSharingSupernet, prepare_input
from evo_nas.space import SearchSpace
from evo_nas.train.checkpoint import load_train_state, save_train_state
from evo_nas.train.distributed import DistContext, current_context
from evo_nas.train.samplers import Sampler, make_sampler
from evo_nas.train.shrinking import Phase, phase_spaces, validate_phases

__all__ = ["Phase", "TrainConfig", "train_supernet", "sampler_kwargs", "batch_loss_scorer"]


@dataclass
class TrainConfig:
    """Supernet training settings (the ``train`` section of a run config).

    ``n_random`` is the number of random sub-networks per step beside the fixed ones (the
    largest, as teacher, when ``distill`` is on; the smallest for sandwich, flops_bucket and
    attentive); fair ignores it (it trains one sub-network per option of the widest gene).
    ``sampler_options`` go to the sampler's constructor and win (e.g. ``{mode: worstup,
    n_candidates: 4}`` for attentive). ``phases`` (progressive shrinking) replace
    ``epochs``/``lr`` when given.

    The default, uniform (SPOS) with 3 random sub-networks + the largest, is what the fidelity
    benchmark measured best: across seven data seeds and FLOPs ranges no sampler ranked
    sub-networks better than uniform (paired tau differences, ``benchmarks/results/fidelity*``).

    ``amp`` (fp16 autocast, CUDA only) and ``channels_last`` (CPU only) are off on CUDA by
    default for a measured reason: a supernet meets a new convolution shape at almost every
    step, and on an H100 the first step on a new cifar sub-network shape took 9.2 s with fp16 +
    channels-last, 2.5 s with fp16, 3.9 s with channels-last and 0.12 s in plain fp32 NCHW
    (repeats: 20-28 ms; ``benchmarks/results/shapes_cuda.json``). Turn ``amp`` on to fine-tune
    one fixed sub-network. ``state_path`` is where the training state is written after every epoch;
    with ``resume`` a run continues from it when it exists.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-5
    sampler: str = "uniform"
    n_random: int = 3
    distill: bool = True
    label_smoothing: float = 0.0
    seed: int = 0
    sampler_options: dict[str, Any] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    amp: bool = False
    channels_last: bool = True
    state_path: str | None = None
    resume: bool = False

    def validate(self, space: SearchSpace | None = None) -> None:
        """Fail before any work; with ``space``, also check the phases' dimensions exist."""
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} = {getattr(self, name)}: must be at least 1")
        if not self.lr > 0:
            raise ConfigError(f"train.lr = {self.lr}: must be positive")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"train.label_smoothing = {self.label_smoothing}: must be in [0, 1)")
        make_sampler(self.sampler, **sampler_kwargs(self))  # unknown names/options fail here
        validate_phases(self.phases, space)
        if self.resume and not self.state_path:
            raise ConfigError("train.resume = true needs train.state_path (where to resume from)")

    @property
    def total_epochs(self) -> int:
        return sum(p.epochs for p in self.phases) if self.phases else self.epochs


def sampler_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """Constructor arguments of the configured sampler: ``n_random`` where it applies, then
    ``sampler_options`` (which win)."""
    kwargs: dict[str, Any] = {}
    if cfg.sampler == "uniform":
        kwargs["n"] = cfg.n_random
    elif cfg.sampler in ("sandwich", "flops_bucket", "attentive"):
        kwargs["n_random"] = cfg.n_random
    return {**kwargs, **cfg.sampler_options}


def batch_loss_scorer(net: WeightSharingSupernet, x: torch.Tensor, y: torch.Tensor,
                      ctx: DistContext | None = None,
                      autocast: Callable[[], Any] = contextlib.nullcontext,
                      channels_last: bool = False) -> Callable[[list[dict[str, Any]]], list[float]]:
    """Score configs by their cross-entropy on one mini-batch (AttentiveNAS's cheap ranking).

    Forwards run in train mode (batch statistics, as in training) without touching any running
    statistic, and without gradients; across ranks the losses are averaged so every rank ranks
    the candidates identically.
    """

    @torch.no_grad()
    def score(configs: list[dict[str, Any]]) -> list[float]:
        was = net.training
        net.train()
        out = []
        with frozen_bn(net):
            for c in configs:
                net.set_active(c)
                with autocast():
                    logits = net(_prep(net, x, c, channels_last))
                out.append(F.cross_entropy(logits.float(), y))
        net.train(was)
        losses = torch.stack(out)
        if ctx is not None and ctx.world_size > 1:
            torch.distributed.all_reduce(losses)
            losses /= ctx.world_size
        return losses.cpu().tolist()

    return score


def _prep(net: WeightSharingSupernet, x: torch.Tensor, config: dict[str, Any],
          channels_last: bool) -> torch.Tensor:
    out = prepare_input(net, x, config)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def _fingerprint(cfg: TrainConfig, net: WeightSharingSupernet, world_size: int
                 ) -> dict[str, Any]:
    d = asdict(cfg)
    d.pop("state_path")
    d.pop("resume")
    return {"train": d, "supernet": net.settings(), "world_size": world_size}


def _check_resume(saved: dict[str, Any], now: dict[str, Any], path: str) -> None:
    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, val in d.items():
            if isinstance(val, dict):
                out.update(flat(val, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = val
        return out

    a, b = flat(json.loads(json.dumps(saved))), flat(json.loads(json.dumps(now)))
    diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    if not diff:
        return
    shown = ", ".join(f"{k} = {a.get(k)!r} (now {b.get(k)!r})" for k in diff[:3])
    raise CheckpointError(f"training state {path!r} was written by another configuration: {shown}")


def train_supernet(net: WeightSharingSupernet, data: Dataset, cfg: TrainConfig | None = None,
                   device: str = "cpu", progress: bool = False, *,
                   sampler: Sampler | None = None, stop_after: int | None = None
                   ) -> list[dict[str, float]]:
    """Train ``net`` in place with SGD (Nesterov) and a per-step cosine schedule per phase.

    Each step trains the sub-networks the sampler picks on one mini-batch (resized to each one's
    resolution), summing their gradients before a single optimiser step. With ``distill`` the
    largest network of the (phase's) space is the teacher: it learns from the labels and every
    other sub-network from its soft predictions (in-place distillation); it is prepended when the
    sampler does not lead with it. ``sampler`` overrides ``cfg.sampler`` (e.g. an attentive
    sampler with a trained predictor). ``stop_after`` ends the call after that many epochs in
    total (the state is saved; a later call with ``resume`` continues). Inside a
    ``torch.distributed`` process group each rank trains on its shard of every batch, all ranks
    train the same sub-networks, and gradients are averaged by DDP. Returns one log row per epoch.

    The steps: :func:`_set_up` (seeds, device, optimiser, DDP), :func:`_resume` (the saved
    state, with ``resume``), then per epoch :func:`_train_epoch` (each batch one
    :func:`_train_step`) and :func:`_checkpoint`, and :func:`_finish`.
    """
    run = _set_up(net, data, cfg or TrainConfig(), device, sampler)
    _resume(run)
    last = len(run.phase_of_epoch)
    if stop_after is not None:
        last = min(last, stop_after)
    # the bar moves per mini-batch (an epoch of a real supernet takes minutes)
    bar = tqdm(total=max(last - run.start, 0) * run.steps_per_epoch, desc="train supernet",
               unit="batch", disable=not progress or not run.ctx.is_main)
    for epoch in range(run.start, last):
        row = _train_epoch(run, data, epoch, tick=bar.update)
        bar.set_postfix(epoch=epoch + 1, loss=f"{row['loss']:.3f}")
        _checkpoint(run, epoch + 1)
    bar.close()
    _finish(run)
    return run.log


@dataclass
class _Run:
    """What one call of :func:`train_supernet` carries from step to step."""

    net: WeightSharingSupernet
    space: SearchSpace  # the net's whole space (a phase's may be smaller)
    model: torch.nn.Module  # ``net``, or its DDP wrapper in a distributed run
    cfg: TrainConfig
    ctx: DistContext
    device: str
    is_cuda: bool
    channels_last: bool
    sampler: Sampler
    use_batch_scorer: bool  # install the mini-batch loss as the sampler's scorer every step
    plan: list[Phase]  # the phases (one when there is no progressive shrinking)
    spaces: list[SearchSpace]  # the space of each phase
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    autocast: Callable[[], Any]
    rng: np.random.Generator  # the sampler's draws
    gen: torch.Generator  # batch order and augmentation
    steps_per_epoch: int
    phase_of_epoch: list[int]
    phase_start: np.ndarray  # first epoch of each phase
    fingerprint: dict[str, Any]  # what a resumed run must match
    log: list[dict[str, float]] = field(default_factory=list)
    start: int = 0  # the first epoch this call trains
    step: int = 0  # optimiser steps taken so far (the schedule's position)


def _set_up(net: WeightSharingSupernet, data: Dataset, cfg: TrainConfig, device: str,
            sampler: Sampler | None) -> _Run:
    """Validate, seed every generator from ``cfg.seed``, put ``net`` on ``device`` (in the memory
    layout and precision the run uses), build the optimiser and, across ranks, the DDP wrapper."""
    space = net.space
    cfg.validate(space)
    ctx = current_context()
    plan = cfg.phases or [Phase(unlock=[], epochs=cfg.epochs, lr=cfg.lr)]
    spaces = phase_spaces(space, cfg.phases) if cfg.phases else [space]
    sampler = sampler if sampler is not None else make_sampler(cfg.sampler, **sampler_kwargs(cfg))
    use_batch_scorer = getattr(sampler, "needs_scorer", False) and sampler.scorer is None

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    is_cuda = str(device).startswith("cuda")
    use_amp = cfg.amp and is_cuda
    # channels-last pays on CPU; on CUDA it makes every new sub-network shape cost seconds of
    # cuDNN planning (see TrainConfig), and DDP's gradient buckets expect the layout the
    # gradients come in, so CUDA and distributed runs keep the default layout
    channels_last = cfg.channels_last and ctx.world_size == 1 and not is_cuda
    net.to(device)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=plan[0].lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    autocast = ((lambda: torch.autocast("cuda", dtype=torch.float16)) if use_amp
                else contextlib.nullcontext)
    model: torch.nn.Module = net
    if ctx.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        # find_unused_parameters: a sub-network uses only part of the weights.
        # BN running statistics stay per rank (they are re-calibrated before any evaluation).
        no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers"
                          in inspect.signature(DistributedDataParallel).parameters
                          else {"broadcast_buffers": False})
        model = DistributedDataParallel(
            net, device_ids=[torch.device(device).index] if is_cuda else None,
            find_unused_parameters=True, **no_buffer_sync)
    if len(data.train) < 1:
        raise DataError("the training split is empty (data.max_train or the dataset): nothing "
                        "to train on")
    return _Run(
        net=net, space=space, model=model, cfg=cfg, ctx=ctx, device=device, is_cuda=is_cuda,
        channels_last=channels_last, sampler=sampler, use_batch_scorer=use_batch_scorer,
        plan=plan, spaces=spaces, opt=opt, scaler=scaler, autocast=autocast, rng=rng, gen=gen,
        steps_per_epoch=math.ceil(len(data.train) / cfg.batch_size),
        phase_of_epoch=[i for i, ph in enumerate(plan) for _ in range(ph.epochs)],
        phase_start=np.cumsum([0] + [ph.epochs for ph in plan]),
        fingerprint=_fingerprint(cfg, net, ctx.world_size))


def _resume(run: _Run) -> None:
    """With ``resume`` and a state file: continue where it ends (weights, optimiser, scaler,
    every generator, schedule position and log), refusing a state of another configuration."""
    cfg = run.cfg
    if not (cfg.resume and cfg.state_path and Path(cfg.state_path).is_file()):
        return
    st = load_train_state(cfg.state_path)
    _check_resume(json.loads(st["config"]), run.fingerprint, cfg.state_path)
    run.net.load_state_dict(st["model"])
    run.opt.load_state_dict(st["optimizer"])
    if run.scaler is not None and st["scaler"]:
        run.scaler.load_state_dict(st["scaler"])
    run.rng.bit_generator.state = json.loads(st["rng"]["numpy"])
    run.gen.set_state(st["rng"]["torch_generator"])
    torch.set_rng_state(st["rng"]["torch"])
    if run.is_cuda and "cuda" in st["rng"]:
        torch.cuda.set_rng_state(st["rng"]["cuda"], torch.device(run.device))
    run.start, run.step, run.log = int(st["epoch"]), int(st["scheduler"]["step"]), list(st["log"])


def _train_epoch(run: _Run, data: Dataset, epoch: int,
                 tick: Callable[[], Any] | None = None) -> dict[str, float]:
    """One pass over the (augmented, shuffled) training split, the learning rate set per step on
    the phase's cosine schedule; appends and returns the epoch's log row (mean loss over every
    trained sub-network and sample, summed across ranks). ``tick`` is called after each
    mini-batch (the progress bar)."""
    cfg, ctx = run.cfg, run.ctx
    p = run.phase_of_epoch[epoch]
    ph, pspace = run.plan[p], run.spaces[p]
    largest = pspace.largest()
    phase_steps = ph.epochs * run.steps_per_epoch
    total = torch.zeros(2, dtype=torch.float64)
    for x, y in batches(data.train, cfg.batch_size, shuffle=True, generator=run.gen):
        aug = getattr(data, "augment", None)
        if aug is not None:
            x = aug(x, run.gen)
        t = run.step - int(run.phase_start[p]) * run.steps_per_epoch
        lr = 0.5 * ph.lr * (1.0 + math.cos(math.pi * t / phase_steps))
        for group in run.opt.param_groups:
            group["lr"] = lr
        run.step += 1
        if len(y) >= ctx.world_size:  # else a last batch too small to give every rank a sample
            x = x[ctx.rank::ctx.world_size].to(run.device)
            y = y[ctx.rank::ctx.world_size].to(run.device)
            _train_step(run, x, y, pspace, largest, total, epoch, ph.lr)
        if tick is not None:
            tick()
    if ctx.world_size > 1:
        torch.distributed.all_reduce(total)
    if not math.isfinite(float(total[0])):  # every rank sees the same sum: all stop
        raise TrainingError(_diverged(float(total[0]), epoch, run.step, ph.lr))
    row = {"epoch": epoch + 1, "phase": p, "loss": float(total[0] / max(total[1], 1)),
           "lr": lr}
    run.log.append(row)
    return row


def _step_genomes(run: _Run, pspace: SearchSpace, largest: np.ndarray) -> np.ndarray:
    """The sub-networks of one step: the sampler's picks, the largest first when distilling;
    in a distributed run, rank 0's picks on every rank."""
    genomes = np.atleast_2d(run.sampler(pspace, run.rng))
    if run.cfg.distill and not np.array_equal(genomes[0], largest):
        genomes = np.vstack([largest, genomes])
    if run.ctx.world_size > 1:  # belt and braces: every rank trains rank 0's choice
        g = torch.as_tensor(genomes, device=run.device)
        torch.distributed.broadcast(g, src=0)
        genomes = g.cpu().numpy()
    return genomes


def _train_step(run: _Run, x: torch.Tensor, y: torch.Tensor, pspace: SearchSpace,
                largest: np.ndarray, total: torch.Tensor, epoch: int, phase_lr: float) -> None:
    """One optimiser step: every sub-network of the step on the mini-batch ``x, y``, their
    gradients summed (the first is the teacher of the others when distilling); each one's loss
    times the batch size is added to ``total`` (sum, count) in place."""
    cfg, ctx, net, model = run.cfg, run.ctx, run.net, run.model
    if run.use_batch_scorer:
        scorer = batch_loss_scorer(net, x, y, ctx, run.autocast, run.channels_last)
        run.sampler.scorer = scorer
    configs = pspace.decode_many(_step_genomes(run, pspace, largest))
    run.opt.zero_grad(set_to_none=True)
    teacher = None
    for i, config in enumerate(configs):
        net.set_active(config)
        sync = ctx.world_size == 1 or i == len(configs) - 1
        with contextlib.nullcontext() if sync else model.no_sync():
            with run.autocast():
                logits = model(_prep(net, x, config, run.channels_last))
            logits = logits.float()
            if cfg.distill and teacher is not None:
                loss = F.kl_div(F.log_softmax(logits, dim=1), teacher, reduction="batchmean")
            else:
                loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            if cfg.distill and i == 0:
                teacher = F.softmax(logits.detach(), dim=1)
            (run.scaler.scale(loss) if run.scaler is not None else loss).backward()
        value = loss.item()
        if ctx.world_size == 1 and not math.isfinite(value):
            raise TrainingError(_diverged(value, epoch, run.step, phase_lr))
        total += torch.tensor([value * len(y), len(y)], dtype=torch.float64)
    if run.scaler is not None:
        run.scaler.step(run.opt)
        run.scaler.update()
    else:
        run.opt.step()


def _checkpoint(run: _Run, epochs_done: int) -> None:
    """With ``state_path``: the training state after ``epochs_done`` epochs (written by the main
    rank; the others wait for it)."""
    if not run.cfg.state_path:
        return
    if run.ctx.is_main:
        _save_state(run.cfg.state_path, run.net, run.opt, run.scaler, run.rng, run.gen,
                    run.is_cuda, run.device, epochs_done, run.step, run.log, run.fingerprint)
    if run.ctx.world_size > 1:
        torch.distributed.barrier()


def _finish(run: _Run) -> None:
    """Refuse diverged weights; leave the net on its largest sub-network, in eval mode."""
    net, space = run.net, run.space
    bad = next((n for n, t in net.named_parameters() if not torch.isfinite(t).all()), None)
    if bad is not None:
        raise TrainingError(f"training diverged: weight {bad!r} holds NaN or infinite values "
                            f"(train.lr = {run.plan[-1].lr}); no checkpoint is written")
    net.set_active(space.decode(space.largest()))
    net.eval()


def _diverged(loss: float, epoch: int, step: int, lr: float) -> str:
    return (f"training diverged: loss = {loss} at epoch {epoch + 1}, step {step} (train.lr = "
            f"{lr}); no checkpoint is written: lower train.lr or check the data")


def _save_state(path: str, net: WeightSharingSupernet, opt: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler | None, rng: np.random.Generator,
                gen: torch.Generator, is_cuda: bool, device: str, epoch: int, step: int,
                log: list[dict[str, float]], fingerprint: dict[str, Any]) -> None:
    rng_state: dict[str, Any] = {"numpy": json.dumps(rng.bit_generator.state),
                                 "torch_generator": gen.get_state(),
                                 "torch": torch.get_rng_state()}
    if is_cuda:
        rng_state["cuda"] = torch.cuda.get_rng_state(torch.device(device))
    save_train_state(path, {
        "epoch": epoch, "scheduler": {"step": step}, "model": net.state_dict(),
        "optimizer": opt.state_dict(), "scaler": scaler.state_dict() if scaler else {},
        "rng": rng_state, "log": log, "config": json.dumps(fingerprint),
    })


def train_config_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)


def replace(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of ``cfg`` with ``changes`` (phases and options copied, not shared)."""
    return dataclasses.replace(cfg, **{"phases": list(cfg.phases),
                                       "sampler_options": dict(cfg.sampler_options), **changes})
