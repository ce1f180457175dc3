"""Parameters and multiply-adds of every registry backbone beside the paper's figures.

    python tools/analyze_backbones.py
    python tools/analyze_backbones.py --names resnet50 vgg16 --json

Counts the whole ImageNet classification network (stem to the 1000-way fc)
on one 224x224x3 image, as the paper's Table 1 does; "GMACs" are 10^9
multiply-adds, which is what the paper calls FLOPs. Rows more than 5% from
the paper's figure are flagged. Models are built on the meta device (shapes
only), so this runs in seconds without a GPU or downloads.

Bottleneck layout: the paper's ResNet-50/101/152 were MSRA's Caffe models,
which put each bottleneck's stride on its first 1x1 conv; torchvision (and
the Facebook models) put it on the 3x3 conv, which then runs at the higher
resolution and costs more (ResNet-50: ~4.1 instead of ~3.9 GMACs). For
backbones whose builder has the ``stride_in_1x1`` option, the compared number
is the paper's layout (``stride_in_1x1=True``) and the torchvision-layout
number (the registry default) is shown beside it when it differs. Other
options are the registry defaults (shortcut B for ResNets).

Plain nets are compared with the 18/34-layer figures: the paper says they are
the Table 1 architectures and gives the 34-layer plain net's 3.6 GFLOPs
(Sec. 3.3). Parameters "w/o classifier" leave out the class-count dependent
layer (ResNet's fc, VGG's fc8). ``--json`` adds the per-stage output shapes.
"""
import argparse
import json

import backbones
from backbones.complexity import PAPER_GMACS, build_shapes_only, count_parameters, multiply_adds, stage_shapes
from backbones.ranges import at_least, check_flag
from detection.cli import command

TOLERANCE = 0.05  # the "Table 1 is reproduced within 5%"
PAPER_SIZE = 224  # the paper's figures are for 224x224 crops
MIN_SIZE = 32     # the smallest input every registry backbone takes (VGG-16's 5 max-pools)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--names", nargs="+", help="backbones to measure (default: every registered one)")
    p.add_argument("--size", type=int, default=PAPER_SIZE, help=f"input height and width (default 224, at least "
                   f"{MIN_SIZE})")
    p.add_argument("--json", action="store_true", help="print a JSON list of rows instead of the table")
    args = p.parse_args(argv)
    check_flag("--size", args.size, at_least(MIN_SIZE, "VGG-16 halves its input 5 times"))
    return args


def analyse(name: str, size: int = PAPER_SIZE) -> dict:
    """One row: counts for ``name`` and how they compare with the paper."""
    paper_layout = {"stride_in_1x1": True} if "stride_in_1x1" in backbones.get_entry(name).options() else {}
    model = build_shapes_only(name, **paper_layout)
    macs = multiply_adds(model, size)
    default_macs = multiply_adds(build_shapes_only(name), size) if paper_layout else macs
    paper, source = PAPER_GMACS.get(name, (None, None))
    compared = paper is not None and size == PAPER_SIZE
    difference = (macs / 1e9 - paper) / paper if compared else None
    return {
        "name": name,
        "options": paper_layout,
        "params": count_parameters(model),
        "params_without_classifier": count_parameters(model, include_classifier=False),
        "gmacs": round(macs / 1e9, 3),
        # only where the layout matters (bottleneck blocks); None otherwise
        "gmacs_torchvision_layout": round(default_macs / 1e9, 3) if default_macs != macs else None,
        "paper_gmacs": paper,
        "paper_source": source,
        "difference_percent": round(100 * difference, 1) if compared else None,
        "within_tolerance": abs(difference) <= TOLERANCE if compared else None,
        "size": size,
        "stage_shapes": {k: list(v) for k, v in stage_shapes(model, size).items()},
    }


def _text(value, fmt):
    return "—" if value is None else format(value, fmt)


def print_table(rows, size):
    header = ("name", "params (M)", "w/o classifier (M)", "GMACs", "torchvision layout", "paper", "diff", "flag")
    lines = [header] + [(
        r["name"], f"{r['params'] / 1e6:.2f}", f"{r['params_without_classifier'] / 1e6:.2f}",
        f"{r['gmacs']:.2f}", _text(r["gmacs_torchvision_layout"], ".2f"), _text(r["paper_gmacs"], ".1f"),
        _text(r["difference_percent"], "+.1f") + ("%" if r["difference_percent"] is not None else ""),
        {True: "ok", False: f"OFF by >{TOLERANCE:.0%}", None: "—"}[r["within_tolerance"]],
    ) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:  # name left-aligned, numbers right-aligned
        print("  ".join(c.ljust(w) if i in (0, len(header) - 1) else c.rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths))).rstrip())
    compared = [r for r in rows if r["within_tolerance"] is not None]
    if size != PAPER_SIZE:
        print(f"The paper's figures are for {PAPER_SIZE}x{PAPER_SIZE}; nothing compared at {size}x{size}.")
        return
    off = [r["name"] for r in compared if not r["within_tolerance"]]
    print(f"{len(compared) - len(off)} of {len(compared)} backbones with a paper figure are within "
          f"{TOLERANCE:.0%} of it" + (f"; off: {', '.join(off)}" if off else "") + ".")


@command
def main(argv=None):
    args = parse_args(argv)
    names = args.names or backbones.names()
    for name in names:  # unknown names fail before any measuring
        backbones.get_entry(name)
    rows = [analyse(name, args.size) for name in names]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows, args.size)


if __name__ == "__main__":
    main()
