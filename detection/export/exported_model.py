"""Run an exported detector: ``load_exported(path)(image)`` gives what the PyTorch model gives.

The file's kind is read from its bytes (a TorchScript module is a zip
archive, an ONNX graph is not), so the name's suffix does not matter. ONNX
graphs run in onnxruntime (CPU, or CUDA when asked for and available);
TorchScript modules in PyTorch.
"""
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from backbones.errors import UserError

from .export import INPUT_NAME, METADATA_KEY


class ExportedDetector:
    """A callable: a 3 x H x W float RGB image in [0, 1] (tensor or numpy) -> the dict a detector in
    eval mode returns for it (``boxes``, ``labels``, ``scores`` and, for Mask R-CNN, ``masks``), as
    torch tensors on the CPU."""

    def __init__(self, path, fmt, run, info):
        self.path, self.format, self._run = Path(path), fmt, run
        self.outputs = tuple(info.get("outputs") or ())
        self.config = info.get("config")
        self.class_names = info.get("class_names")

    def __call__(self, image) -> dict:
        image = torch.as_tensor(np.asarray(image) if not torch.is_tensor(image) else image, dtype=torch.float32)
        if image.ndim != 3 or image.shape[0] != 3:
            raise UserError(f"{self.path} takes one 3 x H x W RGB image, got shape {tuple(image.shape)}")
        return dict(zip(self.outputs, self._run(image.cpu().contiguous())))

    def __repr__(self):
        return f"ExportedDetector({str(self.path)!r}, format={self.format!r}, outputs={self.outputs})"


def _onnx(path, device, threads=None):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise UserError(f"onnxruntime here has no CUDA provider (only {onnxruntime.get_available_providers()}); "
                            f"run {path} with device cpu, or install onnxruntime-gpu")
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=providers)
    except Exception as err:
        raise UserError(f"{path} is not an ONNX graph onnxruntime can load ({str(err).splitlines()[0]}); "
                        f"export it with tools/export.py") from None
    info = json.loads(session.get_modelmeta().custom_metadata_map.get(METADATA_KEY, "{}"))
    if not info.get("outputs"):
        info["outputs"] = [o.name for o in session.get_outputs()]

    def run(image):
        return tuple(torch.from_numpy(np.asarray(a)) for a in session.run(None, {INPUT_NAME: image.numpy()}))
    return run, info


def _torchscript(path, device, threads=None):  # TorchScript runs on torch's threads
    extra = {METADATA_KEY: ""}
    try:
        with warnings.catch_warnings():  # TorchScript's deprecation notice (see detection.export.export)
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as err:
        raise UserError(f"{path} is not a TorchScript module PyTorch can load ({str(err).splitlines()[0]}); "
                        f"export it with tools/export.py") from None
    info = json.loads(extra[METADATA_KEY] or "{}")
    if not info.get("outputs"):
        raise UserError(f"{path} is a TorchScript module but not a detector exported by tools/export.py")

    def run(image):
        with torch.no_grad():
            return tuple(t.cpu() for t in module(image.to(device)))
    return run, info


def load_exported(path, device: str = "cpu", threads=None) -> ExportedDetector:
    """The detector exported to ``path`` (ONNX or TorchScript), ready to call on images. ``threads``: the
    intra-op threads of onnxruntime (default: its own choice, one per core)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"exported model {path} does not exist; write one with tools/export.py")
    fmt = "torchscript" if zipfile.is_zipfile(path) else "onnx"
    run, info = (_torchscript if fmt == "torchscript" else _onnx)(path, device, threads)
    return ExportedDetector(path, fmt, run, info)
