"""Exported detectors: ONNX (onnxruntime) and TorchScript, with their measured parity to PyTorch.

- :mod:`.graph`: the detector as a traceable module (one image in, a tuple out; the resize made exact);
- :mod:`.export`: :func:`export_model` (which exporter and why: its docstring);
- :mod:`.exported_model`: :func:`load_exported`, a callable with the PyTorch model's outputs;
- :mod:`.parity`: :func:`measure_parity`, the exported model against PyTorch on one image.
"""
from .export import FORMATS, export_model
from .exported_model import ExportedDetector, load_exported
from .parity import measure_parity

__all__ = ["FORMATS", "ExportedDetector", "export_model", "load_exported", "measure_parity"]
