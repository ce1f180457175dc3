"""The command-line programs: argument parsing around one library call each.

Each module has ``main(argv=None)``; ``tools/<name>.py``, ``python -m
detection.cli.<name>`` and the console scripts of ``pyproject.toml`` run it.
A :class:`UserError` prints ``error: ...`` and exits with status 2, never a
traceback; Ctrl-C exits with 130.
"""
from backbones.errors import command

__all__ = ["add_source_arguments", "command"]


def add_source_arguments(parser):
    """--checkpoint / --predictions / --dataset of the evaluation and drawing programs."""
    parser.add_argument("--checkpoint", help="a detector checkpoint (model_final.pth of a training run)")
    parser.add_argument("--predictions", help="COCO results JSON (e.g. predictions.json written by a previous "
                        "evaluation) to evaluate instead of running a checkpoint")
    parser.add_argument("--dataset", help="dataset name (default: the evaluation split of the training data)")
    parser.add_argument("--device", help="cpu or cuda for running a checkpoint (default: cuda when available)")
