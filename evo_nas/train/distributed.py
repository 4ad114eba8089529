"""Data-parallel supernet training over ``torch.distributed`` (DDP; gloo on CPU, NCCL on GPUs).

:func:`evo_nas.train.train_supernet` notices an initialised process group by itself: every rank
reads the same shuffled batch (same seed), keeps its ``rank::world_size`` shard, samples the same
sub-networks from the shared seed (rank 0's genomes are broadcast as well), and DDP averages the
gradients. A step trains several sub-networks, each using only part of the weights, so DDP runs
with ``find_unused_parameters=True`` and all but the last backward of a step inside ``no_sync()``:
gradients accumulate locally and one all-reduce per step averages them all.

Launch with torchrun (same flags as ``evo-nas train``; rank 0 writes the checkpoint)::

    torchrun --nproc_per_node 2 -m evo_nas.train.distributed --epochs 10 --name ddp

or from Python with :func:`spawn` (what the tests do, gloo on CPU).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistContext", "current_context", "init_from_env", "spawn", "main"]


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


def main(argv: Sequence[str] | None = None) -> int:
    """torchrun entry point: ``evo-nas train`` flags; every rank trains, rank 0 saves."""
    import sys

    from evo_nas.cli import _config, build_parser
    from evo_nas.config import to_dict
    from evo_nas.errors import EvoNasError
    from evo_nas.pipeline import load_run_data
    from evo_nas.train.checkpoint import save_checkpoint
    from evo_nas.train.trainer import train_supernet

    args = build_parser().parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    try:
        cfg = _config(args)
    except EvoNasError as e:
        print(f"evo-nas: error: {e}", file=sys.stderr)
        return 2
    ctx = init_from_env(cfg.device)
    device = f"cuda:{ctx.local_rank}" if cfg.device.startswith("cuda") else cfg.device
    data = load_run_data(cfg)
    net = cfg.build_supernet()
    log = train_supernet(net, data, cfg.train, device=device, progress=not args.quiet)
    if ctx.is_main:
        path = save_checkpoint(cfg.run_dir / "supernet.pt", net.cpu(),
                               {"train_log": log, "config": to_dict(cfg),
                                "world_size": ctx.world_size})
        print(f"supernet trained on {ctx.world_size} process(es) -> {path}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
