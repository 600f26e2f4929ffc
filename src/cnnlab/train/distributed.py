"""Data-parallel training across processes: torchrun's environment, reductions and the launcher.

Each process (rank) trains a replica of the model on its own shard of every batch;
``DistributedDataParallel`` averages the gradients, so all replicas take the same step.
NCCL connects GPUs, gloo connects CPU processes. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job: its rank, the number of ranks, who made the group."""

    rank: int = 0
    world_size: int = 1
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def is_main_process() -> bool:
    """Whether this is rank 0 (or the only process): the one that writes files and reports."""
    return int(os.environ.get("RANK", "0")) == 0


def local_rank() -> int:
    """This process's index on its machine (which GPU it uses); 0 without torchrun."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size_from_env() -> int:
    """The number of processes torchrun started (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group torchrun set up (NCCL for CUDA, gloo otherwise)."""
    world_size = world_size_from_env()
    if world_size == 1:
        return DistContext()
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), world_size, owns_group)


def is_distributed() -> bool:
    """Whether this process has joined a process group of several ranks."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks (in place); unchanged in a single process."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def global_sums(values: list[float], device: torch.device) -> list[float]:
    """Sum a few numbers over all ranks (one collective call; a no-op in a single process)."""
    if not is_distributed():
        return values
    totals = torch.tensor(values, dtype=torch.float64, device=device)
    return all_reduce_sum(totals).tolist()


def barrier() -> None:
    """Wait until every rank gets here (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    """Leave the process group, if :func:`init_from_env` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``cnnlab <argv>`` in ``nproc`` local processes, as ``torchrun --standalone`` would.

    Returns the first failing rank's exit code (2 bad input, 3 diverged), or 0.
    """
    # deferred: torchrun's launcher is slow to import and only the launching process needs it
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    torchrun_args = parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "cnnlab", *argv])
    try:
        run(torchrun_args)
    except ChildFailedError as exc:
        codes = [failure.exitcode for failure in exc.failures.values()]
        return next((code for code in codes if code in (2, 3)), max(codes[0], 1))
    return 0
