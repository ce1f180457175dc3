"""Evaluation runs: a checkpoint (or saved predictions) and the data to score it on.

A checkpoint records the resolved config of its training run; the data it is
evaluated on by default is that run's test split, resolved by the same
function as training (:func:`detection.run.resolve.resolve_config`).
"""
import dataclasses
import time
from pathlib import Path

import torch

from backbones.errors import UserError

from ..box_refinement import enable_box_refinement
from ..engine.checkpoint import load_detector
from ..engine.device import resolve_device
from ..engine.inference import predict
from ..evaluation.results_file import load_results, output_path, save_results
from ..tta import TestTimeAugmentation, checkpoint_tta
from .data import evaluation_dataset, open_evaluation_dataset
from .resolve import resolve_config


def default_test_dataset(payload) -> str:
    """The evaluation split that goes with the data the checkpoint was trained on."""
    data = (payload.get("train_config") or {}).get("data") or {}
    if not (data.get("train") or data.get("test")):
        raise UserError("the checkpoint does not say which dataset it was trained on; pass --dataset")
    return resolve_config(saved={"data": data}, log=None).data.test


def checkpoint_and_dataset(checkpoint, dataset_name=None, device=None, tta=None, refine=False):
    """Load a checkpoint and the dataset to run it on; the class lists must agree. ``tta`` (see
    :func:`get_predictions`): the model comes wrapped in :class:`detection.tta.TestTimeAugmentation`.
    ``refine``: the paper's test-time box refinement (:mod:`detection.box_refinement`), whether or not the
    checkpoint's config asks for it."""
    model, payload = load_detector(checkpoint)
    if refine:  # DetectorConfig.validate refuses it where it cannot apply (detectron2's inference)
        model.config = dataclasses.replace(model.config, box_refinement=True).validate()
        enable_box_refinement(model)
    settings = checkpoint_tta(payload.get("train_config"), model.config, tta, f"{checkpoint}: test.tta")
    model.to(resolve_device(device))
    if next(model.parameters()).device.type == "cpu":
        # NHWC convolutions: 1.1-1.4x the images/s of NCHW on CPU with the same detections to 2e-4 px
        # (bench/inference_speed.py); the model is loaded for this evaluation alone. CUDA: not measured, as is.
        model.to(memory_format=torch.channels_last)
    dataset = evaluation_dataset(dataset_name or default_test_dataset(payload), payload["class_names"],
                                 str(checkpoint))
    return (model if settings is None else TestTimeAugmentation(model, settings)), dataset


def get_predictions(checkpoint=None, predictions=None, dataset=None, device=None, limit=None, tta=None,
                    refine=False):
    """(dataset, predictions, source) for a tool's --checkpoint / --predictions / --dataset.

    Run on a checkpoint, the predictions are also saved as a COCO results JSON
    beside it (unless ``limit`` restricts them to the first images).

    ``tta``: test-time augmentation (:mod:`detection.tta`) of the checkpoint: True for its config's
    ``test.tta`` (else :func:`detection.tta.default_tta`), a mapping of settings over those, or a
    ``TTAConfig``. Its predictions go to ``<ckpt>.<dataset>.tta.predictions.json``, which is then the
    returned source, so the tools name their outputs ``<ckpt>.<dataset>.tta.<suffix>`` and leave the
    plain evaluation's files alone. ``refine`` (box refinement, see :func:`checkpoint_and_dataset`) names
    them ``<ckpt>.<dataset>.refined.<suffix>`` (``tta.refined`` with both).
    """
    if predictions:
        if refine:
            raise UserError("--box-refinement runs the model: give --checkpoint CKPT instead of --predictions")
        if tta:
            raise UserError("--tta runs the model: give --checkpoint CKPT instead of --predictions (saved "
                            "predictions with test-time augmentation are <ckpt>.<dataset>.tta.predictions.json)")
        if not dataset:
            raise UserError("--predictions needs --dataset (the ground truth to compare with)")
        data = open_evaluation_dataset(dataset)
        return data, load_results(predictions, data), Path(predictions)
    if not checkpoint:
        raise UserError("pass --checkpoint CKPT or --predictions RESULTS.json --dataset NAME")
    model, data = checkpoint_and_dataset(checkpoint, dataset, device, tta, refine)
    subset = data if limit is None else torch.utils.data.Subset(data, range(min(limit, len(data))))
    augmented = isinstance(model, TestTimeAugmentation)
    if augmented:
        print(model.tta.describe())
    start = time.perf_counter()
    result = predict(model, subset)
    seconds = time.perf_counter() - start
    print(f"inference: {len(subset)} images in {seconds:.1f} s ({len(subset) / max(seconds, 1e-9):.1f} images/s, "
          f"{seconds / max(1, len(subset)):.3f} s/image)")
    source = Path(checkpoint)
    tag = ".".join(t for t, on in (("tta", augmented), ("refined", refine)) if on)
    saved = output_path(source, data.name, f"{tag}.predictions.json" if tag else "predictions.json")
    if limit is None:
        print(f"wrote {save_results(saved, data, result)}")
    return data, result, saved if tag else source
