"""Export a trained detector to ONNX or TorchScript, then measure its parity with PyTorch.

    python tools/export.py output/demo/model_final.pth --format onnx --output output/demo/model_final.onnx
    python tools/export.py output/demo/model_final.pth --format torchscript --image photo1.jpg photo2.jpg

The exported model takes one float32 RGB image in [0, 1] (3 x H x W, any H
and W) and returns boxes (x1, y1, x2, y2 in the image's pixels), labels,
scores and, for Mask R-CNN, masks (N x 1 x H x W probabilities): what the
PyTorch model returns in eval mode. Run it with onnxruntime, torch.jit.load,
or ``detection.export.load_exported(path)(image)``.

Right after writing the file, the exported model is run on each --image (the
first one is also the traced example; without --image, one synthetic image)
and compared with the PyTorch model ("measured parity"): the largest box
difference (pixels and relative), the largest score difference, and whether
the labels are equal. The bar is boxes within 1e-3 relative, the same labels,
scores within 1e-4; outside it the program says so and exits with status 1.
ONNX uses the TorchScript-based exporter: PyTorch's torch.export-based one
cannot export torchvision's detectors (see detection/export/export.py).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from backbones.errors import UserError, check_choice
from detection.cli import command
from detection.data.dataset import read_image_file
from detection.engine.checkpoint import load_detector
from detection.export import FORMATS, export_model, load_exported, measure_parity
from detection.export.export import check_exportable, check_output_path
from detection.export.parity import describe

SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a detector checkpoint (model_final.pth of a training run)")
    p.add_argument("--format", default="onnx", help=f"{' or '.join(FORMATS)} (default onnx)")
    p.add_argument("--output", help="the file to write (default: beside the checkpoint, <name>.onnx or "
                   "<name>.torchscript.pt); its folder must exist")
    p.add_argument("--image", nargs="+", default=[], help="photographs to measure parity on (the first is the "
                   "traced example); give two of different sizes to see the size is dynamic")
    return p.parse_args(argv)


def to_chw(image: np.ndarray) -> torch.Tensor:
    """An H x W x 3 uint8 RGB image as the 3 x H x W float image in [0, 1] the detector takes."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255)


def synthetic_image(model) -> torch.Tensor:
    """A smooth random image at the model's test size, for when no photograph is given."""
    size = model.config.min_size if isinstance(model.config.min_size, int) else model.config.min_size[-1]
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size * 4 // 3), mode="bilinear")[0]


@command
def main(argv=None):
    args = parse_args(argv)
    check_choice("--format", args.format, FORMATS)
    checkpoint = Path(args.checkpoint)
    output = check_output_path(args.output or checkpoint.with_name(checkpoint.stem + SUFFIXES[args.format]),
                               args.format)
    images = [(path, to_chw(read_image_file(path))) for path in args.image]  # unreadable files fail first
    model, payload = load_detector(checkpoint)
    try:
        check_exportable(model)
    except UserError as err:
        raise UserError(f"cannot export {checkpoint}: {err}") from None
    if not images:
        images = [("a synthetic image (give --image for photographs)", synthetic_image(model))]
    path = export_model(model, args.format, output, images[0][1], class_names=payload.get("class_names"))
    print(f"wrote {path} ({args.format}, {path.stat().st_size / 1e6:.1f} MB)")
    exported = load_exported(path)
    print("measured parity (exported vs PyTorch):")
    results = []
    for name, image in images:
        result = measure_parity(model, exported, image)
        results.append(result)
        print(f"  {name}: {describe(result)}")
    if not all(r["ok"] for r in results):
        print("warning: the exported model differs from PyTorch beyond the bar (boxes 1e-3 relative, scores 1e-4, "
              "same labels); check it before using it", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
