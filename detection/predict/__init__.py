"""Prediction on a user's own images, folders and videos, and the files it writes.

:class:`Predictor` (predictor.py) applies a checkpoint; inputs.py turns paths
into images; outputs.py writes the prediction files; pseudo_labels.py writes
predictions as a dataset to correct and train on. ``tools/predict.py`` is the
program (:mod:`detection.cli.predict`).
"""
from .predictor import MASK_FORMATS, PRECISIONS, Predictor

__all__ = ["MASK_FORMATS", "PRECISIONS", "Predictor"]
