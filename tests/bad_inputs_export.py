"""Bad-input cases of tools/export.py and tools/analyze_model.py (see bad_input_table.py): files that are not
detector checkpoints, an unknown format, an output path that cannot be written, a model the exporter does not
support, and options that are not what they should be.

The format and the output path are checked before the checkpoint is read, and the model before anything is
exported, so no case runs an exporter.
"""
from bad_input_table import Case


def _checkpoint(argv, compat="torchvision", file=None):
    """A small R18-FPN Faster R-CNN checkpoint with random weights (classes cat and dog), then ``argv``."""
    def setup(folder):
        import torch

        from detection.detector import build_detector
        from detection.engine.checkpoint import save_checkpoint
        torch.manual_seed(0)
        model = build_detector(backbone="resnet18", num_classes=2, min_size=64, max_size=96,
                               box_representation_size=32, compat=compat)
        save_checkpoint(folder / "model_final.pth", model, ["cat", "dog"], [1, 2], 0)
        if file is not None:
            (folder / file[0]).write_bytes(file[1])
        return ["model_final.pth", *argv]
    return setup


def _not_a_checkpoint(argv=()):
    def setup(folder):
        (folder / "model_final.pth").write_bytes(b"not a checkpoint: a text file renamed")
        return ["model_final.pth", *argv]
    return setup


def _state_dict(program_argv):
    def setup(folder):
        import torch
        torch.save({"conv1.weight": torch.zeros(1)}, folder / "resnet18.pth")
        return ["resnet18.pth", *program_argv]
    return setup


CASES = [
    Case("export and cost", "export: a file that is not a checkpoint", "export", _not_a_checkpoint(),
         "model_final.pth is not a checkpoint that can be loaded safely"),
    Case("export and cost", "export: a backbone state dict instead of a detector checkpoint", "export",
         _state_dict([]), "resnet18.pth is not a detector checkpoint of this toolkit"),
    Case("export and cost", "export: an unknown --format", "export", _not_a_checkpoint(["--format", "tflite"]),
         "unknown --format 'tflite'"),
    Case("export and cost", "export: --output in a folder that does not exist", "export",
         _checkpoint(["--output", "exports/model.onnx"]), "its folder exports does not exist; create it"),
    Case("export and cost", "export: --output under a file, not a folder", "export",
         _checkpoint(["--output", "model_final.pth/model.onnx"]), "model_final.pth is a file, not a folder"),
    Case("export and cost", "export: --output is a folder", "export",
         _checkpoint(["--output", "."]), "is a folder; give a file name"),
    Case("export and cost", "export: a compat: detectron2 model (not supported by the exporter)", "export",
         _checkpoint([], compat="detectron2"), "cannot export model_final.pth: export does not support compat: "
         "detectron2"),
    Case("export and cost", "export: an --image that is not an image", "export",
         _checkpoint(["--image", "notes.jpg"], file=("notes.jpg", b"plain text")), "cannot read image notes.jpg"),
    Case("export and cost", "analyze_model: a file that is not a checkpoint", "analyze_model", _not_a_checkpoint(),
         "model_final.pth is not a checkpoint that can be loaded safely"),
    Case("export and cost", "analyze_model: neither a checkpoint nor --config", "analyze_model", lambda folder: [],
         "give a checkpoint or --config YAML"),
    Case("export and cost", "analyze_model: --input-size not HxW", "analyze_model",
         lambda folder: ["--config", "configs/shapes_demo.yaml", "--input-size", "800by1333"],
         "--input-size '800by1333' is not HxW"),
    Case("export and cost", "analyze_model: --backbone with a checkpoint", "analyze_model",
         _not_a_checkpoint(["--backbone", "resnet50"]), "--backbone, --neck, --mask and --num-classes go with --config"),
]
