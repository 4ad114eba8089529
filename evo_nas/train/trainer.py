"""Weight-sharing supernet training: several sub-networks per mini-batch, one optimiser step."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from evo_nas.data import Dataset, batches
from evo_nas.errors import ConfigError
from evo_nas.nn import Supernet, resize
from evo_nas.train.samplers import make_sampler


@dataclass
class TrainConfig:
    """Supernet training settings (the ``train`` section of a run config)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-5
    sampler: str = "sandwich"
    n_random: int = 2
    distill: bool = False
    label_smoothing: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} = {getattr(self, name)}: must be at least 1")
        if not self.lr > 0:
            raise ConfigError(f"train.lr = {self.lr}: must be positive")
        make_sampler(self.sampler)  # unknown sampler names fail here, before any work


def _sampler_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    return {"n_random": cfg.n_random} if cfg.sampler == "sandwich" else {}


def train_supernet(net: Supernet, data: Dataset, cfg: TrainConfig | None = None,
                   device: str = "cpu", progress: bool = False) -> list[dict[str, float]]:
    """Train ``net`` in place with SGD (Nesterov) and a per-step cosine schedule.

    Each step trains the sub-networks the sampler picks on one mini-batch (resized to each one's
    resolution), summing their losses before a single optimiser step. With ``distill`` the first
    sub-network (the largest, under the sandwich rule) teaches the others with its soft targets
    (in-place distillation). Returns one log row per epoch.
    """
    cfg = cfg or TrainConfig()
    cfg.validate()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    sampler = make_sampler(cfg.sampler, **_sampler_kwargs(cfg))
    space = net.spec.space()
    net.to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(data.train) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    log: list[dict[str, float]] = []
    bar = tqdm(range(cfg.epochs), desc="train supernet", unit="epoch", disable=not progress)
    for epoch in bar:
        total, count = 0.0, 0
        for x, y in batches(data.train, cfg.batch_size, shuffle=True, generator=gen):
            x, y = x.to(device), y.to(device)
            configs = space.decode_many(sampler(space, rng))
            opt.zero_grad(set_to_none=True)
            teacher = None
            for i, config in enumerate(configs):
                net.set_active(config)
                logits = net(resize(x, config["res"]))
                if cfg.distill and teacher is not None:
                    loss = F.kl_div(F.log_softmax(logits, dim=1), teacher, reduction="batchmean")
                else:
                    loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
                if cfg.distill and i == 0:
                    teacher = F.softmax(logits.detach(), dim=1)
                loss.backward()
                total += loss.item() * len(y)
                count += len(y)
            opt.step()
            sched.step()
        row = {"epoch": epoch + 1, "loss": total / max(count, 1), "lr": sched.get_last_lr()[0]}
        log.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}")
    net.eval()
    return log


def train_config_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)
