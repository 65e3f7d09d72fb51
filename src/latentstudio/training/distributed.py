"""Data-parallel training over several processes (GPUs or machines), started with `torchrun`.

Each process trains on its slice of the batch; gradients are averaged with one all-reduce per optimizer
step, so every rank keeps identical weights (NCCL on GPUs, gloo on CPUs). The gradients are reduced by
hand rather than through the `DistributedDataParallel` module wrapper because the StyleGAN2 phases freeze
one network per phase and take double-backward passes (R1, path length), which the wrapper's bucketed
hooks do not fit; this is the same scheme NVIDIA's StyleGAN3 trainer uses. Only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import os

import torch

from ..device import resolve_device
from ..errors import UserError


@dataclasses.dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return tensor
        out = tensor.clone()
        torch.distributed.all_reduce(out)
        return out

    def all_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.all_sum(tensor) / self.world_size if self.enabled else tensor

    def average_gradients(self, params) -> None:
        """Average .grad across ranks (one flat all-reduce) and replace NaN/Inf, as every step does."""
        params = [p for p in params if p.grad is not None]
        if not params:
            return
        if self.enabled:
            flat = torch.cat([p.grad.flatten() for p in params])
            torch.distributed.all_reduce(flat)
            flat /= self.world_size
            torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
            for p, g in zip(params, flat.split([p.numel() for p in params]), strict=True):
                p.grad.copy_(g.reshape(p.shape))
        else:
            for p in params:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Average floating-point buffers (the tracked mean w) so ranks stay identical."""
        if self.enabled:
            for b in module.buffers():
                if b.is_floating_point():
                    b.copy_(self.all_mean(b))

    def broadcast_module(self, module: torch.nn.Module) -> None:
        if self.enabled:
            for t in list(module.parameters()) + list(module.buffers()):
                torch.distributed.broadcast(t.data, src=0)

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Equal-sized tensors from every rank (on every rank)."""
        if not self.enabled:
            return [tensor]
        t = tensor.to(self.device)
        out = [torch.empty_like(t) for _ in range(self.world_size)]
        torch.distributed.all_gather(out, t)
        return [o.cpu() for o in out]

    def check_consistent(self, module: torch.nn.Module, name: str) -> None:
        """Fail loudly if the ranks' copies of a network have drifted apart (a bug, never expected)."""
        if not self.enabled:
            return
        sums = torch.stack([t.detach().double().sum() for t in module.state_dict().values()])
        gathered = self.gather(sums)
        if any(not torch.equal(g, gathered[0]) for g in gathered[1:]):
            raise RuntimeError(f"{name} differs between ranks; the distributed run is inconsistent")

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()


def init_distributed(device: str = "auto") -> Dist:
    """Single process unless started by torchrun (WORLD_SIZE > 1): then join the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=resolve_device(device))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"torchrun started {local_rank + 1}+ processes on this machine but only "
                            f"{torch.cuda.device_count()} GPU(s) are visible; use --nproc_per_node "
                            f"{torch.cuda.device_count()}")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    if dev.type == "cpu":
        # Ranks on one machine share its cores; give each an equal share.
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return Dist(rank=rank, world_size=world, device=dev)


def shutdown(dist: Dist) -> None:
    if dist.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
