"""Faster/Mask R-CNN detectors on the ResNet backbones, with data, evaluation and training."""
from .detector import DetectorConfig, build_detector

__all__ = ["DetectorConfig", "build_detector"]
