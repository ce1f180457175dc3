"""Mixed precision for training: autocast plus, for fp16, a gradient scaler.

fp16 needs the scaler (small gradients underflow in half precision) and CUDA;
bf16 has fp32's range, so it needs no scaler and also runs on CPU.
"""
import contextlib

import torch

from backbones.errors import UserError


class Precision:
    def __init__(self, amp: str, device):
        self.device_type = torch.device(device).type
        if amp == "fp16" and self.device_type != "cuda":
            raise UserError("runtime.amp=fp16 needs a CUDA device; use runtime.amp=bf16 on CPU")
        if amp == "bf16" and self.device_type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError("this GPU does not support bfloat16; use runtime.amp=fp16")
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(amp)
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def step(self, loss, optimizer, params, clip_grad_norm=None):
        """Backward, optional gradient clipping (on unscaled gradients), optimizer step."""
        if self.scaler is None:
            loss.backward()
            if clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        if clip_grad_norm:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
        self.scaler.step(optimizer)  # skipped when the scaled gradients overflowed
        self.scaler.update()

    def state_dict(self):
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state):
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
