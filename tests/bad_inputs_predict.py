"""Bad-input cases of tools/predict.py (see bad_input_table.py): inputs that are not images, folders without
any, videos OpenCV cannot open, files that are not detector checkpoints, and options out of range.

Every input is checked before the checkpoint's model is built, so most cases need no real checkpoint: an
existing file stands in for it. The checkpoint cases write what a user might mistake for one.
"""
from pathlib import Path

from bad_input_table import Case

PHOTO = Path(__file__).parent / "data" / "coco_000000343934_160x120.jpg"


def _with(*files, argv):
    """Write ``files`` (name -> bytes, or None for a folder) and a stand-in checkpoint; argv after it."""
    def setup(folder):
        (folder / "model_final.pth").write_bytes(b"stand-in: never read when an input is refused")
        for name, data in files:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir() if data is None else path.write_bytes(data)
        return ["model_final.pth", *argv]
    return setup


def _state_dict(folder):
    import torch
    torch.save({"conv1.weight": torch.zeros(1)}, folder / "resnet18.pth")
    return ["resnet18.pth", str(PHOTO), "--output", "out"]


def _real_checkpoint(argv, file=None):
    """A small Faster R-CNN checkpoint with random weights (classes cat and dog), and ``file`` (name, bytes)."""
    def setup(folder):
        import torch

        from detection.detector import build_detector
        from detection.engine.checkpoint import save_checkpoint
        torch.manual_seed(0)
        model = build_detector(backbone="resnet18", num_classes=2, min_size=64, max_size=96,
                               box_representation_size=32)
        save_checkpoint(folder / "model_final.pth", model, ["cat", "dog"], [1, 2], 0)
        if file is not None:
            (folder / file[0]).write_bytes(file[1])
        return ["model_final.pth", *argv]
    return setup


def _video_with_pseudo_labels(folder):
    import cv2
    image = cv2.imread(str(PHOTO))
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, image.shape[1::-1])
    writer.write(image)
    writer.release()
    (folder / "model_final.pth").write_bytes(b"stand-in: never read when an input is refused")
    return ["model_final.pth", "clip.mp4", "--output", "out", "--pseudo-labels", "coco"]


CASES = [
    Case("prediction", "a checkpoint that does not exist", "predict",
         lambda d: ["output/run/model_final.pth", str(PHOTO), "--output", "out"], "does not exist; pass a model_final"),
    Case("prediction", "an input that does not exist", "predict",
         _with(argv=["photos/IMG_0001.jpg", "--output", "out"]), "input photos/IMG_0001.jpg does not exist"),
    Case("prediction", "an input that is neither an image nor a video", "predict",
         _with(("notes.txt", b"text"), argv=["notes.txt", "--output", "out"]), "is not an image or a video"),
    Case("prediction", "an empty folder", "predict",
         _with(("photos", None), argv=["photos", "--output", "out"]), "holds no image or video files"),
    Case("prediction", "a folder whose images are in subfolders, without `--recursive`", "predict",
         _with(("photos/day1/a.jpg", PHOTO.read_bytes()), argv=["photos", "--output", "out"]),
         "pass --recursive"),
    Case("prediction", "a glob pattern matching nothing", "predict",
         _with(argv=["photos/*.png", "--output", "out"]), "matches no image or video file"),
    Case("prediction", "a video OpenCV cannot open", "predict",
         _with(("clip.mp4", b"\x00\x00\x00\x18ftypmp42 damaged"), argv=["clip.mp4", "--output", "out"]),
         "OpenCV cannot open the video clip.mp4"),
    Case("prediction", "a named image that cannot be decoded", "predict",
         _real_checkpoint(["broken.jpg", "--output", "out"], ("broken.jpg", b"\xff\xd8 cut short")),
         "broken.jpg is truncated"),
    Case("prediction", "a checkpoint that is not a detector (backbone weights)", "predict", _state_dict,
         "is not a detector checkpoint of this toolkit"),
    Case("prediction", "`--score-threshold` outside [0, 1]", "predict",
         _with(argv=[str(PHOTO), "--output", "out", "--score-threshold", "1.5"]), "--score-threshold 1.5: must be"),
    Case("prediction", "`--classes` naming a class the model does not have", "predict",
         _real_checkpoint([str(PHOTO), "--output", "out", "--classes", "cat", "person"]), "unknown class 'person'"),
    Case("prediction", "`--pseudo-labels` for a video", "predict", _video_with_pseudo_labels,
         "extract its frames as images first"),
]
