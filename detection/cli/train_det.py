"""Train a Faster R-CNN / Mask R-CNN on a registry backbone.

    python tools/train_det.py --backbone resnet101 --dataset coco solver.schedule=1x
    python tools/train_det.py --config configs/shapes_demo.yaml --output output/demo
    torchrun --nproc_per_node 8 tools/train_det.py --config ... --output ...   # data-parallel
    python tools/train_det.py --output output/demo --resume                    # continue a run

Settings come from the defaults, then ``--config`` (or, with --resume, the
run's saved config.yaml), then these flags, then ``section.key=value``
overrides. Ctrl-C saves a checkpoint and prints the command that resumes.
"""
import argparse
import sys

from detection.cli import command
from detection.engine import distributed
from detection.run import build_run, resolve_run


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML file with model/solver/data/runtime sections")
    p.add_argument("--backbone", help="registry backbone, e.g. resnet50 (see backbones.names())")
    p.add_argument("--dataset", help="training dataset name, e.g. coco or shapes")
    p.add_argument("--neck", help="fpn or c4 (the paper's design)")
    p.add_argument("--mask", action="store_true", default=None, help="train Mask R-CNN")
    p.add_argument("--pretrained", help="backbone weights: a source of the backbone (torchvision, torchvision_v2, "
                   "msra, timm_a1_in1k, detectron2_...), none, a file (.pth/.pkl/.safetensors, layout "
                   "recognised), or SOURCE:FILE for a local copy of a source (default: torchvision; "
                   "none for the shapes dataset)")
    p.add_argument("--init", help="start from a trained detector: its architecture and weights, the class layers "
                   "fitted to this dataset's classes (a checkpoint of ours; a torchvision COCO model such as "
                   "maskrcnn_resnet50_fpn_v2, NAME:WEIGHTS or NAME:FILE; a detectron2 zoo entry such as "
                   "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x, or its .pkl)")
    p.add_argument("--init-classes", metavar="match|reinit",
                   help="with --init: start classes whose names match the source's from its rows (match, the "
                   "default) or initialise every class layer afresh (reinit)")
    p.add_argument("--max-iter", type=int, help="number of training iterations (solver.max_iter, >= 1)")
    p.add_argument("--output", default="output/train", help="folder for checkpoints and metrics")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start again in an output folder that holds a run")
    p.add_argument("--num-workers", type=int, help="data loading processes (data.num_workers; 0: the main "
                   "process)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value",
                   help="config overrides applied last, e.g. solver.base_lr=0.01 model.min_size=[640,800]")
    return p.parse_args(argv)


def flags(args) -> dict:
    """The settings the flags give ({section: {key: value}}; None: not given). Values pass unchanged (0 too):
    the config checks each setting's range, whichever way it was given."""
    return {"model": {"backbone": args.backbone, "neck": args.neck, "mask": args.mask, "pretrained": args.pretrained,
                      "init": args.init, "init_classes": args.init_classes},
            "data": {"train": args.dataset, "num_workers": args.num_workers},
            "solver": {"max_iter": args.max_iter}, "runtime": {"device": args.device}}


@command
def main(argv=None):
    args = parse_args(argv)
    run = resolve_run(args.config, flags(args), args.overrides, output=args.output, resume=args.resume,
                      overwrite=args.overwrite, log=print if distributed.is_main() else None)
    built = build_run(run)
    cfg = built.run.config
    if distributed.is_main():
        world = f" on {distributed.world_size()} processes" if distributed.world_size() > 1 else ""
        print(f"training {cfg.model.backbone}-{cfg.model.neck} {'Mask' if cfg.model.mask else 'Faster'} R-CNN "
              f"on {built.dataset.name} ({len(built.dataset)} images, {len(built.dataset.class_names)} classes), "
              f"pretrained={cfg.model.pretrained}, norm={cfg.model.norm}, {cfg.solver.max_iter} iterations"
              f"{world} -> {run.output}")
    result = built.train()
    main_process = distributed.is_main()
    distributed.shutdown()
    if result.stopped_by:
        sys.exit(143 if result.stopped_by == "SIGTERM" else 130)
    if main_process:
        best = f" (best {result.best['metric']} {result.best['value']:.1f} at {result.best['iteration']})" \
            if result.best else ""
        print(f"wrote {result.checkpoint}{best}")


if __name__ == "__main__":
    main()
