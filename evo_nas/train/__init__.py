"""Supernet training: samplers, the trainer, checkpoints."""

from evo_nas.train.checkpoint import load_checkpoint, save_checkpoint
from evo_nas.train.samplers import SAMPLERS, SandwichSampler, UniformSampler, make_sampler
from evo_nas.train.trainer import TrainConfig, train_supernet

__all__ = [
    "SAMPLERS",
    "SandwichSampler",
    "TrainConfig",
    "UniformSampler",
    "load_checkpoint",
    "make_sampler",
    "save_checkpoint",
    "train_supernet",
]
