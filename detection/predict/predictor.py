"""``Predictor``: a trained detector applied to a user's own images, as detectron2's ``DefaultPredictor``.

    >>> from detection.predict import Predictor
    >>> predictor = Predictor("output/demo/model_final.pth", score_threshold=0.5)
    >>> result = predictor(cv2.imread("photo.jpg"), color="bgr")        # one in-memory image
    >>> for result in predictor.predict(["photos/", "clip.mp4"]):      # files, folders, globs, videos
    ...     print(result["file_name"], result["class_names"], result["boxes"])

The checkpoint's own normalisation and test resize are applied inside the
model (its ``GeneralizedRCNNTransform``), so images go in at their original
size and boxes come out in original pixels. Each result is a dict:

- ``boxes`` (N, 4) float32 x1 y1 x2 y2, ``scores`` (N,), ``labels`` (N,) in 1..C,
  ``class_names`` (N names);
- Mask R-CNN: ``rles`` (N compressed COCO RLEs, the default), or ``masks``
  (N, H, W) bool with ``masks="bitmap"``;
- ``file_name``, ``path`` (the file read), ``frame`` (video frames), ``height``, ``width``.

The boxes, scores, labels and RLEs are those of the dataset evaluation path
(:func:`detection.engine.inference.predict`) on the same images.
"""
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch
from torch import nn

from backbones.errors import UserError, check_choice

from ..engine.checkpoint import load_detector
from ..engine.device import resolve_device
from ..engine.inference import numpy_prediction
from .inputs import Frame, expand, frames, rgb_tensor, to_tensor

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
MASK_FORMATS = ("rle", "bitmap")


def check_threshold(name: str, value):
    if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 1):
        raise UserError(f"{name} must be a score in [0, 1], got {value!r}")


class Predictor:
    """A detector ready to predict: from a checkpoint path, or a built model (``model.config`` set).

    ``score_threshold``: keep detections scoring at least this (default: the
    model's ``box_score_thresh``, 0.05). ``classes``: names of the classes to
    keep. ``max_detections``: per image (default: the model's 100).
    ``precision``: fp32, fp16 or bf16 (autocast). ``tta``: a
    :class:`detection.tta.TTAConfig` (or its mapping) for multi-scale and flip testing.
    """

    def __init__(self, model, class_names: Optional[Sequence[str]] = None,
                 category_ids: Optional[Sequence[int]] = None, *, device: Optional[str] = None,
                 precision: str = "fp32", score_threshold: Optional[float] = None,
                 classes: Optional[Sequence[str]] = None, max_detections: Optional[int] = None,
                 masks: str = "rle", mask_threshold: float = 0.5, tta=None, batch_size: int = 2):
        check_choice("precision", precision, PRECISIONS)
        check_choice("masks", masks, MASK_FORMATS)
        check_threshold("score_threshold", score_threshold)
        check_threshold("mask_threshold", mask_threshold)
        if max_detections is not None and not (isinstance(max_detections, int) and max_detections >= 1):
            raise UserError(f"max_detections must be a positive integer, got {max_detections!r}")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise UserError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.checkpoint, self.train_config = None, None
        if isinstance(model, (str, Path)):
            self.checkpoint = Path(model)
            model, payload = load_detector(model)
            class_names = class_names or payload["class_names"]
            category_ids = category_ids or payload.get("category_ids")
            self.train_config = payload.get("train_config")  # the training run's settings (its test.tta)
        if not isinstance(model, nn.Module) or not hasattr(model, "config"):
            raise UserError("Predictor needs a checkpoint path or a detector built by build_detector "
                            "(a model with .config)")
        self.config = model.config
        n = self.config.num_classes
        self.class_names = list(class_names or (f"class{k}" for k in range(1, n + 1)))
        self.category_ids = [int(c) for c in (category_ids or range(1, n + 1))]
        if len(self.class_names) != n or len(self.category_ids) != n:
            raise UserError(f"the model has {n} classes but {len(self.class_names)} class names and "
                            f"{len(self.category_ids)} category ids were given")
        self.keep_labels = self._labels_of(classes)
        self.device = torch.device(resolve_device(device))
        if precision == "fp16" and self.device.type == "cpu":
            raise UserError("precision fp16 needs a CUDA device; on CPU use bf16 or fp32")
        self.precision, self.masks, self.mask_threshold = precision, masks, mask_threshold
        self.batch_size = batch_size
        self.score_threshold = self.config.box_score_thresh if score_threshold is None else score_threshold
        self.max_detections = max_detections or self.config.box_detections_per_img
        # torchvision's RoIHeads filter by score before NMS and keep the top detections after it: set there,
        # a lower threshold or a larger maximum gives more detections than a filter afterwards could
        model.roi_heads.score_thresh = self.score_threshold
        model.roi_heads.detections_per_img = self.max_detections
        self.model = model.to(self.device).eval()
        self.set_tta(tta)

    def set_tta(self, tta=None):
        """Predict with test-time augmentation (a :class:`detection.tta.TTAConfig` or its mapping), or
        without it (None)."""
        self.runner, self.tta = self.model, None
        if tta is not None:
            from ..tta import TestTimeAugmentation, TTAConfig
            self.tta = tta if isinstance(tta, TTAConfig) else TTAConfig.from_dict(tta)
            self.runner = TestTimeAugmentation(self.model, self.tta)

    @property
    def has_masks(self) -> bool:
        return bool(self.config.mask)

    def _labels_of(self, classes) -> Optional[set]:
        if classes is None:
            return None
        if isinstance(classes, str):
            classes = [classes]
        for name in classes:
            check_choice("class", name, self.class_names)
        return {self.class_names.index(name) + 1 for name in classes}

    @torch.no_grad()
    def run(self, images: Sequence[torch.Tensor]) -> list:
        """The model's raw outputs on float (3, H, W) RGB tensors in [0, 1], on this predictor's device."""
        images = [im.to(self.device) for im in images]
        dtype = PRECISIONS[self.precision]
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            return self.runner(images)

    def _result(self, image: torch.Tensor, output: dict, frame: Optional[Frame] = None) -> dict:
        result = numpy_prediction(output, frame.name if frame else None, self.mask_threshold,
                                  bitmaps=self.masks == "bitmap")
        if self.keep_labels is not None:
            keep = [k for k, label in enumerate(result["labels"]) if int(label) in self.keep_labels]
            result = {key: (value[keep] if hasattr(value, "shape") else [value[k] for k in keep])
                      for key, value in result.items()}
        result["class_names"] = [self.class_names[int(label) - 1] for label in result["labels"]]
        result["height"], result["width"] = int(image.shape[1]), int(image.shape[2])
        result["file_name"] = frame.name if frame else None
        result["frame"] = frame.frame if frame else None
        result["path"] = str(frame.path) if frame and frame.path else None
        return result

    def __call__(self, image, color: Optional[str] = None) -> dict:
        """Detections on one in-memory image (numpy with ``color`` "rgb"/"bgr", PIL, or a CHW tensor)."""
        tensor = to_tensor(image, color)
        return self._result(tensor, self.run([tensor])[0])

    def predict_images(self, images: Sequence, color: Optional[str] = None) -> list:
        """Detections on a list of in-memory images, in batches of ``batch_size``."""
        tensors = [to_tensor(image, color) for image in images]
        results = []
        for start in range(0, len(tensors), self.batch_size):
            batch = tensors[start:start + self.batch_size]
            results += [self._result(t, out) for t, out in zip(batch, self.run(batch))]
        return results

    def predict(self, inputs, recursive: bool = False, on_skip=None) -> Iterator[dict]:
        """Detections on files: paths, folders, glob patterns, videos or a list of them, in order.

        Every named input is checked before the model runs. A folder's file
        that cannot be decoded is skipped: ``on_skip(frame)`` is called with it
        (its ``error`` says why). Each result carries the decoded ``image``
        (RGB uint8) too, for drawing; drop it to keep memory flat.
        """
        yield from self.predict_frames(frames(expand(inputs, recursive)), on_skip)

    def predict_frames(self, stream, on_skip=None) -> Iterator[dict]:
        batch = []
        for frame in stream:
            if frame.image is None:
                if on_skip is not None:
                    on_skip(frame)
                continue
            batch.append(frame)
            if len(batch) == self.batch_size:
                yield from self._predict_batch(batch)
                batch = []
        if batch:
            yield from self._predict_batch(batch)

    def _predict_batch(self, batch) -> Iterator[dict]:
        tensors = [rgb_tensor(frame.image) for frame in batch]
        for frame, tensor, output in zip(batch, tensors, self.run(tensors)):
            result = self._result(tensor, output, frame)
            result["image"] = frame.image
            yield result
