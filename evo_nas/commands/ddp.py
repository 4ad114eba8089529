"""torchrun entry point for data-parallel supernet training (DDP; gloo on CPU, NCCL on GPUs).

Takes the flags of ``evo-nas train``; every rank joins the process group torchrun describes and
runs :func:`evo_nas.pipeline.train_run`, which trains on the rank's shard and lets rank 0 alone
score and save ``supernet.pt``::

    torchrun --nproc_per_node 2 -m evo_nas.commands.ddp --epochs 10 --name ddp

This is not an ``evo-nas`` sub-command (the CLI does not import it); it only borrows the CLI's
``train`` parser. The process-group helpers live in :mod:`evo_nas.train.distributed`.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """``evo-nas train`` flags; every rank trains, rank 0 saves. User errors exit 2."""
    import torch.distributed as dist

    from evo_nas.cli import _config, build_parser
    from evo_nas.errors import EvoNasError
    from evo_nas.pipeline import train_run
    from evo_nas.train.distributed import init_from_env

    args = build_parser().parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    try:
        cfg = _config(args)
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        ctx = init_from_env(cfg.device)
        if ctx.world_size > 1 and cfg.device.startswith("cuda"):
            cfg = dataclasses.replace(cfg, device=f"cuda:{ctx.local_rank}")
        path = train_run(cfg, progress=not args.quiet)
    except EvoNasError as e:
        print(f"evo-nas: error: {e}", file=sys.stderr)
        return 2
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if ctx.is_main:
        print(f"supernet trained on {ctx.world_size} process(es) -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
