"""Supernet training: samplers, progressive shrinking, trainer, distributed runs, checkpoints."""

from evo_nas.train.checkpoint import (
    load_checkpoint,
    load_train_state,
    save_checkpoint,
    save_train_state,
)
from evo_nas.train.distributed import DistContext, current_context, init_from_env, spawn
from evo_nas.train.samplers import (
    SAMPLERS,
    AttentiveSampler,
    FairSampler,
    FlopsBuckets,
    FlopsBucketSampler,
    Sampler,
    SandwichSampler,
    UniformSampler,
    make_sampler,
)
from evo_nas.train.shrinking import (
    DIMENSIONS,
    Phase,
    dimensions_of,
    gene_dimension,
    ofa_phases,
    phase_spaces,
    restrict,
)
from evo_nas.train.trainer import TrainConfig, batch_loss_scorer, sampler_kwargs, train_supernet

__all__ = [
    "DIMENSIONS",
    "SAMPLERS",
    "AttentiveSampler",
    "DistContext",
    "FairSampler",
    "FlopsBucketSampler",
    "FlopsBuckets",
    "Phase",
    "Sampler",
    "SandwichSampler",
    "TrainConfig",
    "UniformSampler",
    "batch_loss_scorer",
    "current_context",
    "dimensions_of",
    "gene_dimension",
    "init_from_env",
    "load_checkpoint",
    "load_train_state",
    "make_sampler",
    "ofa_phases",
    "phase_spaces",
    "restrict",
    "sampler_kwargs",
    "save_checkpoint",
    "save_train_state",
    "spawn",
    "train_supernet",
]
