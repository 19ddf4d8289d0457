"""Scale-out of the benchmark runner under ``torchrun``.

With ``WORLD_SIZE`` > 1 in the environment every rank scores every ``world``-th reference (gloo on
CPU, nccl on CUDA with ``cuda:LOCAL_RANK``); new rows are gathered on rank 0 with
``all_gather_object``. A single process needs none of it (:class:`Dist` with ``world == 1``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Tuple

import torch
import torch.distributed as tdist

__all__ = ["Dist", "init_distributed"]


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    initialized_here: bool = False

    @property
    def active(self) -> bool:
        return self.world > 1

    def gather(self, obj: Any) -> List[Any]:
        """Every rank's ``obj``, in rank order (``[obj]`` for a single process)."""
        if not self.active:
            return [obj]
        out: List[Any] = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        self.gather(None)

    def close(self) -> None:
        if self.initialized_here:
            tdist.destroy_process_group()


def init_distributed(device: torch.device) -> Tuple[Dist, torch.device]:
    """Join the process group torchrun describes (env://); a no-op for a single process."""
    if not tdist.is_available():
        return Dist(), device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda" and device.index is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = torch.device("cuda", local % max(1, torch.cuda.device_count()))
    if tdist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        return Dist(tdist.get_rank(), tdist.get_world_size(), False), device
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    if device.type == "cuda":
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    tdist.init_process_group(backend=backend, init_method="env://")
    return Dist(tdist.get_rank(), tdist.get_world_size(), True), device
