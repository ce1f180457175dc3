"""Convert a dataset to COCO JSON, a PASCAL VOC tree or the Ultralytics YOLO layout, read by the training readers.

    python tools/convert_dataset.py --from mydata.yaml --to yolo out/mydata_yolo
    python tools/convert_dataset.py --from shapes --to voc out/shapes_voc
    python tools/convert_dataset.py --from coco annotations.json --images photos/ --to voc out/voc
    python tools/convert_dataset.py --from voc VOCdevkit/VOC2007 --split trainval --to coco out/voc07_coco

--from takes a dataset YAML, a dataset name (datasets/README.md), or a
format and its main path (the YAML key it fills: coco annotations, voc and
yolo root, ...) with the format's other keys as --images, --split,
--classes or --set KEY=VALUE. A YAML with train:/val: sections and a pair
name (shapes, coco, voc) convert both splits. The output folder gets the
images (hard links, or copies across disks), the annotations, and
dataset.yaml, so `--dataset OUT/dataset.yaml` trains and evaluates on the
result. Boxes keep the target format's precision (VOC whole pixels, YOLO 6
decimals of the image size); masks go as held to COCO, as instance PNGs to
VOC, as one traced polygon per object to YOLO (which has no crowd or
difficult objects: those are left out and counted). --no-masks writes boxes
only. An output folder that is not empty is refused unless --overwrite.
"""
import argparse
from pathlib import Path

import yaml

from backbones.errors import UserError, check_choice
from detection.cli import command
from detection.data.catalog import PAIRS, is_dataset_file, load_dataset, load_dataset_file
from detection.data.conversion import WRITERS, convert
from detection.data.file_formats import FORMATS, read_spec
from detection.yaml_file import read_yaml_mapping


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="source", nargs="+", required=True, metavar="SOURCE",
                   help="a dataset .yaml or name, or FORMAT PATH (e.g. coco annotations.json, voc VOC2007)")
    p.add_argument("--to", nargs=2, required=True, metavar=("FORMAT", "DST"),
                   help=f"the output format ({', '.join(WRITERS)}) and folder")
    p.add_argument("--images", help="with --from FORMAT PATH: the format's images key (coco: the image folder)")
    p.add_argument("--split", help="with --from FORMAT PATH: the format's split (voc, yolo), and the output's "
                                   "split name (default: the source's split, else train)")
    p.add_argument("--classes", nargs="+", help="with --from FORMAT PATH: the class names")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="with --from FORMAT PATH: any other key of the format (e.g. image_ext=.png)")
    p.add_argument("--no-masks", action="store_true", help="write boxes only")
    p.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    return p.parse_args(argv)


def source_parts(args) -> list:
    """[(output split, DetectionData)] of --from: one split, or a training and an evaluation split."""
    if len(args.source) > 2:
        raise UserError(f"--from takes a dataset (.yaml or name) or FORMAT PATH, got {' '.join(args.source)}")
    if len(args.source) == 2:
        return [_named_split(args.split, _read_format(args, *args.source))]
    flags = [f for f, v in (("--images", args.images), ("--classes", args.classes), ("--set", args.set)) if v]
    if flags:
        raise UserError(f"{', '.join(flags)} go with --from FORMAT PATH; a dataset .yaml or name "
                        f"{args.source[0]} says its own keys")
    source = args.source[0]
    if is_dataset_file(source):
        spec = read_yaml_mapping(Path(source), "dataset file", "(format, annotations/images or root/split, ...)")
        sections = [section for section in ("train", "val") if section in spec]
        if not sections:
            return [_named_split(args.split, load_dataset_file(source, "train"))]
        parts = [(data.split or section, data) for section in sections
                 for data in [load_dataset_file(source, "train" if section == "train" else "test")]]
    elif source in PAIRS:
        parts = [(data.split or section, data) for section, role in (("train", "train"), ("val", "test"))
                 for data in [load_dataset(source, role)]]
    else:
        return [_named_split(args.split, load_dataset(source))]
    if args.split and len(parts) > 1:
        raise UserError(f"--split names one split; {source} has a training and an evaluation split, "
                        f"converted as {'/'.join(split for split, _ in parts)}")
    return [(args.split or split, data) for split, data in parts]


def _named_split(split, data) -> tuple:
    return split or data.split or "train", data


def _read_format(args, fmt, path):
    """The data of ``--from FORMAT PATH`` and the key flags, read as a dataset YAML of those keys would be."""
    check_choice("--from format", fmt, FORMATS)
    entry = FORMATS[fmt]
    spec = {"format": fmt, entry.required[0]: path}
    for key, value in (("images", args.images), ("split", args.split), ("classes", args.classes)):
        if value is not None and (key != "split" or "split" in entry.keys):  # else --split names the output
            spec[key] = value
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item}: expected KEY=VALUE, e.g. --set image_ext=.png")
        spec[key] = yaml.safe_load(value)
    return read_spec(spec, Path.cwd(), Path(path).stem, f"--from {fmt} {path}")


@command
def main(argv=None):
    args = parse_args(argv)
    fmt, dst = args.to
    check_choice("--to format", fmt, WRITERS)
    parts = source_parts(args)
    for split, data in parts:
        p = data.problems
        objects = sum(len(r.boxes) for r in data.records)
        masked = sum(s is not None for r in data.records for s in (r.segmentations or []))
        print(f"{data.name}: {len(data.records)} images, {objects} objects ({masked} with masks) -> split {split}")
        if p.clipped_boxes or p.dropped_boxes:
            print(f"  the reader clipped {p.clipped_boxes} boxes to their image and dropped {p.dropped_boxes} "
                  f"(python tools/check_dataset.py names them)")
        ignored = sum(int(r.ignore.sum()) for r in data.records)
        if fmt == "yolo" and ignored:
            print(f"  {ignored} crowd/difficult objects left out: YOLO labels have no ignore flag")
    written = convert(parts, fmt, Path(dst), with_masks=not args.no_masks, overwrite=args.overwrite)
    print(f"wrote {fmt} to {dst}; its dataset file: {written}")


if __name__ == "__main__":
    main()
