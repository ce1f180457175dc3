"""Which device a tool runs on."""
import torch

from backbones.errors import UserError


def resolve_device(name=None) -> str:
    """``name`` (cpu, cuda, cuda:N) checked against this machine; None: cuda when available, else cpu."""
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but this machine has no CUDA GPU; use cpu")
    if not (name == "cpu" or name.startswith("cuda")):
        raise UserError(f"unknown device {name!r}; use cpu, cuda or cuda:N")
    return name
