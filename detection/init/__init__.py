"""Starting a detector from a trained one (``--init``): torchvision's COCO models, the detectron2 zoo,
or a checkpoint of ours, with the class-dependent layers fitted to a new class list."""
from .source import InitSource

__all__ = ["InitSource"]
