"""Data-parallel processes started by ``torchrun``: setup, rank queries and the few collectives the engine uses.

``torchrun --nproc_per_node N tools/train_det.py ...`` (and multi-node
``torchrun --nnodes M --node_rank R --rdzv_endpoint HOST:PORT ...``) sets
RANK, WORLD_SIZE and LOCAL_RANK; :func:`init_from_env` joins the process
group: NCCL when training on GPUs, gloo on CPU. Without those variables
everything here degrades to a single process and the collectives are no-ops.
"""
import os

import torch
import torch.distributed as dist

from backbones.errors import UserError


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str) -> str:
    """Join the process group if started by torchrun; returns the device this process trains on."""
    if not launched_by_torchrun() or dist.is_initialized():
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK {local_rank} but this machine has {torch.cuda.device_count()} GPUs; "
                            f"lower torchrun --nproc_per_node")
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device


def shutdown():
    if dist.is_initialized():
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def any_rank(flags, device) -> list:
    """Element-wise OR of boolean flags over all ranks (e.g. 'stop requested', 'loss not finite')."""
    if not dist.is_initialized():
        return [bool(f) for f in flags]
    t = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def mean_over_ranks(values: dict, device) -> dict:
    """Average of named scalars over all ranks (for logging)."""
    if not dist.is_initialized():
        return values
    keys = list(values)  # the same order on every rank: the same code built the dict
    t = torch.tensor([float(values[k]) for k in keys], device=device, dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(keys, (t / world_size()).tolist()))


def gather_objects(obj) -> list:
    """``obj`` from every rank, in rank order, on every rank."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier():
    if dist.is_initialized():
        dist.barrier()
