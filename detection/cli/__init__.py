"""The command-line programs: argument parsing around one library call each.

Each module has ``main(argv=None)``; ``tools/<name>.py``, ``python -m
detection.cli.<name>`` and the console scripts of ``pyproject.toml`` run it.
A :class:`UserError` prints ``error: ...`` and exits with status 2, never a
traceback; Ctrl-C exits with 130.
"""
from backbones.errors import command

__all__ = ["add_source_arguments", "add_tta_arguments", "command", "tta_settings"]


def add_source_arguments(parser):
    """--checkpoint / --predictions / --dataset of the evaluation and drawing programs."""
    parser.add_argument("--checkpoint", help="a detector checkpoint (model_final.pth of a training run)")
    parser.add_argument("--predictions", help="COCO results JSON (e.g. predictions.json written by a previous "
                        "evaluation) to evaluate instead of running a checkpoint")
    parser.add_argument("--dataset", help="dataset name (default: the evaluation split of the training data)")
    parser.add_argument("--device", help="cpu or cuda for running a checkpoint (default: cuda when available)")


def add_tta_arguments(parser):
    """--tta and its settings (detection.tta), for the programs that run a checkpoint."""
    parser.add_argument("--tta", action="store_true", help="test-time augmentation: the checkpoint's test.tta "
                        "settings, else its test size x 0.8, 1, 1.2, each also flipped, merged by box voting; "
                        "outputs are named <ckpt>.<dataset>.tta.*")
    parser.add_argument("--tta-scales", nargs="+", metavar="N", help="shorter sides in pixels (implies --tta)")
    parser.add_argument("--tta-merge", metavar="nms|vote", help="merge per class by NMS or box voting (implies --tta)")
    parser.add_argument("--tta-iou", metavar="IOU", help="IoU of the merge, in (0, 1] (implies --tta)")
    parser.add_argument("--no-tta-flip", action="store_true", help="no flipped passes (implies --tta)")
    parser.add_argument("--box-refinement", action="store_true", help="the paper's test-time box refinement "
                        "(Appendix B: regressed boxes pooled and scored again, merged by NMS at 0.3 and box "
                        "voting), also for a checkpoint trained without it; outputs are named "
                        "<ckpt>.<dataset>.refined.*")


def tta_settings(args):
    """None without TTA flags; else True or the {key: value} the flags set over the checkpoint's test.tta
    (see detection.tta.checkpoint_tta), each value checked before anything is loaded."""
    from backbones.errors import UserError
    from detection.tta import check_tta_value

    settings = {}
    if args.tta_scales is not None:
        try:
            settings["scales"] = [int(s) for s in args.tta_scales]
        except ValueError:
            raise UserError(f"--tta-scales {' '.join(args.tta_scales)}: each scale is a shorter side in pixels, "
                            f"an integer, e.g. --tta-scales 640 800 960") from None
    if args.tta_merge is not None:
        settings["merge"] = args.tta_merge
    if args.tta_iou is not None:
        try:
            settings["iou"] = float(args.tta_iou)
        except ValueError:
            raise UserError(f"--tta-iou {args.tta_iou}: must be a number in (0, 1], e.g. 0.5") from None
    if args.no_tta_flip:
        settings["flip"] = False
    for key, value in settings.items():
        check_tta_value(key, value, "tta")
    if not (args.tta or settings):
        return None
    if not args.checkpoint:
        raise UserError("--tta runs a model: give --checkpoint CKPT (predictions saved with test-time "
                        "augmentation are <ckpt>.<dataset>.tta.predictions.json, for --predictions)")
    return settings or True
