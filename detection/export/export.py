"""Write a detector as an ONNX graph or a TorchScript module that takes images of any size.

    >>> from detection.export import export_model, load_exported
    >>> export_model(model, "onnx", "model.onnx", example_image)   # example_image: 3 x H x W, RGB in [0, 1]
    >>> load_exported("model.onnx")(image)   # {"boxes", "labels", "scores"[, "masks"]}, as model([image])[0]

Which exporter, and why. PyTorch 2.14 recommends its torch.export-based ONNX
exporter (``torch.onnx.export(..., dynamo=True)``, the default since 2.9).
It cannot export these models: ``torch.export`` stops at torchvision's
``batched_nms``, which picks its algorithm by the number of boxes
(``boxes.numel() > 4000``), a branch on a data-dependent size
(``GuardOnDataDependentSymNode: Could not guard on data-dependent expression
4*u1 > 4000``; torch 2.14.1, torchvision 0.29.1, tried on the R18-FPN Faster
R-CNN; it fails after about 80 s). torchvision's detection models support
the TorchScript-based exporter instead (``dynamo=False``, opset >= 11):
its code has tracing paths (``torchvision._is_tracing()``) for the resize,
the padding, the box clipping and the mask pasting. So both formats are
traced with ``torch.jit.trace`` semantics: ``onnx`` with
``torch.onnx.export(dynamo=False, opset_version=17)``, with the image's
height and width and the number of detections dynamic, and ``torchscript``
with ``torch.jit.trace`` (the traced graph follows the same tracing paths,
so it also takes any image size). PyTorch marks both as deprecated; their
warnings are silenced here and :func:`detection.export.parity.measure_parity`
checks the result instead.

The resize is replaced for tracing (:mod:`detection.export.graph`). FPN and
C4 detectors, with or without masks, export; ``compat: detectron2`` models do
not (``detection.detectron2_compat`` resizes and pastes masks with sizes and
boxes computed in Python, which a trace would fix to the example image): a
:class:`UserError` says so.
"""
import json
import os
import warnings
from pathlib import Path

import torch

from backbones.atomic_files import write_atomically
from backbones.errors import UserError, check_choice

from ..engine.run_folder import record_if_run_folder
from .graph import ExportableDetector, output_names

FORMATS = ("onnx", "torchscript")
OPSET = 17
INPUT_NAME = "image"
METADATA_KEY = "resnet_detection_transfer"  # ONNX metadata / TorchScript extra file: config and class names


def check_exportable(model):
    """A :class:`UserError` for the models the exporters cannot trace faithfully."""
    config = getattr(model, "config", None)
    if config is None:
        raise UserError("export needs a detector built by build_detector (it carries its config); "
                        f"got {type(model).__name__}")
    if config.compat != "torchvision":
        raise UserError(f"export does not support compat: {config.compat} models (its detectron2-style resize and mask "
                        f"pasting compute sizes and boxes in Python, which a trace fixes to the example image); "
                        f"run it in PyTorch (tools/predict.py), or export a model with compat: torchvision")


def check_output_path(path, fmt=None) -> Path:
    """The output file, refused up front when its folder is missing or not writable."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--output {path} is a folder; give a file name, e.g. {path / ('model.' + (fmt or 'onnx'))}")
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise UserError(f"cannot write {path}: {folder} is a file, not a folder; write the file elsewhere")
    if not folder.is_dir():
        raise UserError(f"cannot write {path}: its folder {folder} does not exist; create it or write elsewhere")
    if not os.access(folder, os.W_OK):
        raise UserError(f"cannot write {path}: its folder {folder} is not writable; write elsewhere")
    return path


def metadata(model, class_names=None) -> str:
    return json.dumps({"outputs": list(output_names(model)), "config": model.config.to_dict(),
                       "class_names": list(class_names) if class_names is not None else None})


def _as_image(example_image) -> torch.Tensor:
    image = torch.as_tensor(example_image, dtype=torch.float32)
    if image.ndim != 3 or image.shape[0] != 3:
        raise UserError(f"the example image must be 3 x H x W (RGB, CHW), got shape {tuple(image.shape)}")
    return image


def _write_onnx(wrapped, image, tmp, names, info):
    torch.onnx.export(
        wrapped, (image,), str(tmp), dynamo=False, opset_version=OPSET, input_names=[INPUT_NAME],
        output_names=list(names),
        dynamic_axes={INPUT_NAME: {1: "height", 2: "width"}, **{n: {0: "detections"} for n in names}})
    import onnx
    graph = onnx.load(str(tmp))
    entry = graph.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info
    onnx.save(graph, str(tmp))


def _write_torchscript(wrapped, image, tmp, names, info):
    traced = torch.jit.trace(wrapped, (image,), strict=False, check_trace=False)
    torch.jit.save(traced, str(tmp), _extra_files={METADATA_KEY: info})


def export_model(model, fmt: str, path, example_image, class_names=None) -> Path:
    """Write ``model`` (a detector of :func:`detection.build_detector`) as ``fmt`` to ``path``, atomically.

    ``example_image`` (3 x H x W, float RGB in [0, 1]) is traced; the result takes any H and W.
    ``class_names`` are stored beside the graph (``load_exported(path).class_names``). Inside a run
    folder, the file is recorded in its manifest.
    """
    check_choice("export format", fmt, FORMATS)
    check_exportable(model)
    path = check_output_path(path, fmt)
    image = _as_image(example_image)
    wrapped = ExportableDetector(model).eval()
    names = output_names(model)
    info = metadata(model, class_names)
    write = _write_onnx if fmt == "onnx" else _write_torchscript
    with warnings.catch_warnings(), torch.no_grad():
        # the TorchScript-based exporters' deprecation and tracer warnings: expected, see the module docstring
        warnings.simplefilter("ignore")
        return write_atomically(record_if_run_folder(path), lambda tmp: write(wrapped, image, tmp, names, info))
