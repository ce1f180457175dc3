"""What a backbone reports about each feature map it produces (detectron2's ShapeSpec)."""
from dataclasses import dataclass


@dataclass(frozen=True)
class ShapeSpec:
    channels: int
    stride: int
