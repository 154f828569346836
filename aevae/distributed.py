"""Multi-process training with PyTorch's own engine (torch.distributed + DistributedDataParallel).

`torchrun --nproc_per_node N -m aevae train ...` sets RANK / WORLD_SIZE / MASTER_ADDR; `setup`
joins the process group (gloo on CPU, nccl on CUDA). Outside torchrun everything here is a
no-op for a world of one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over all processes (float64 on the CPU for gloo, on the GPU for nccl)."""
        if self.size == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every process if it is True on one: stops must be agreed, or ranks would hang."""
        return bool(self.sum([float(flag)])[0]) if self.size > 1 else flag


def current() -> World:
    if dist.is_available() and dist.is_initialized():
        device = "cpu" if dist.get_backend() == "gloo" else f"cuda:{torch.cuda.current_device()}"
        return World(dist.get_rank(), dist.get_world_size(), device)
    return World()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str = "cpu") -> World:
    """Join the process group torchrun describes; returns this process's place in it."""
    if not launched_by_torchrun():
        return World(device=device)
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return current()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
