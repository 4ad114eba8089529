"""Data-parallel supernet training over ``torch.distributed`` (DDP; gloo on CPU, NCCL on GPUs).

:func:`evo_nas.train.train_supernet` notices an initialised process group by itself: every rank
reads the same shuffled batch (same seed), keeps its ``rank::world_size`` shard, samples the same
sub-networks from the shared seed (rank 0's genomes are broadcast as well), and DDP averages the
gradients. A step trains several sub-networks, each using only part of the weights, so DDP runs
with ``find_unused_parameters=True`` and all but the last backward of a step inside ``no_sync()``:
gradients accumulate locally and one all-reduce per step averages them all.

Launch with torchrun through :mod:`evo_nas.commands.ddp` (same flags as ``evo-nas train``; rank 0
writes the checkpoint)::

    torchrun --nproc_per_node 2 -m evo_nas.commands.ddp --epochs 10 --name ddp

or from Python with :func:`spawn` (what the tests do, gloo on CPU). This module knows nothing of
the CLI or the pipeline: it sits below both.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistContext", "current_context", "init_from_env", "spawn"]


@dataclass(frozen=True)
class DistContext:
    """This process's place in the process group (``world_size == 1`` without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_context() -> DistContext:
    """The context of the initialised process group, or the single-process one."""
    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        return DistContext(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))
    return DistContext()


def init_from_env(device: str = "cpu") -> DistContext:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR/PORT): NCCL for
    CUDA, gloo for CPU. Returns the single-process context when launched without torchrun."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) < 2:
        return DistContext()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return current_context()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, backend: str, threads: int,
            fn: Callable[..., Any], args: Sequence[Any]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(threads)
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        fn(rank, *args)
    finally:
        dist.destroy_process_group()


def spawn(fn: Callable[..., Any], nprocs: int, args: Sequence[Any] = (), backend: str = "gloo",
          threads: int = 1) -> None:
    """Run ``fn(rank, *args)`` in ``nprocs`` fresh processes joined in one process group.

    ``fn`` must be importable (a module-level function); results travel through files or queues.
    """
    torch.multiprocessing.spawn(_worker, args=(nprocs, _free_port(), backend, threads, fn,
                                               tuple(args)), nprocs=nprocs, join=True)
