"""Export a registry backbone's weights as a detectron2 checkpoint, for MODEL.WEIGHTS.

    python -m detectron2_plugin.export --backbone resnet50 --pretrained torchvision --output r50.pkl
    python -m detectron2_plugin.export --backbone resnet101 --pretrained output/r101_cls.pth --design c4 \\
        --output r101_c4.pkl

(tools/export_detectron2.py runs the same program.) Names follow the plugin's
FPN backbone (backbone.bottom_up.res2.0.conv1.weight, ...; detectron2's own
ResNet FPN uses the same) or, with --design c4, its C4 trunk (backbone.*) and
per-RoI stage (roi_heads.res5.*). .pkl is detectron2's model-zoo format; .pth
works too. Prints the config values that go with the file. The functions
behind it are in :mod:`detectron2_plugin.exporter`.
"""
import argparse

import yaml

from backbones.errors import UserError

from .cli import command, missing_detectron2


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", required=True, help="registry backbone, e.g. resnet50 (see backbones.names())")
    p.add_argument("--pretrained", default="torchvision",
                   help="weights: a registry source (torchvision) or a file, e.g. from tools/pretrain_cls.py")
    p.add_argument("--output", required=True, help="checkpoint to write: .pkl (detectron2 model zoo format) or .pth")
    p.add_argument("--design", default="fpn", help="fpn (default) or c4: which detector's names to use")
    p.add_argument("--norm", default="frozen_bn", help="frozen_bn (default), bn or gn: as the weights were trained")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="backbone builder option, e.g. shortcut=A (repeatable)")
    return p.parse_args(argv)


def parse_options(pairs):
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--option takes KEY=VALUE, got {pair!r}")
        options[key] = yaml.safe_load(value)
    return options


@command
def main(argv=None):
    args = parse_args(argv)
    try:
        from .exporter import export_weights
    except ImportError as err:  # detectron2 (or one of its dependencies) is not installed
        raise missing_detectron2(err) from None
    settings = export_weights(args.backbone, args.output, pretrained=args.pretrained, design=args.design,
                              norm=args.norm, **parse_options(args.option))
    print(f"wrote {args.output}; config values that go with it (in the YAML file, or as KEY VALUE overrides "
          f"of tools/train_detectron2.py):")
    for key, value in settings.items():
        print(f"  {key} {value}")


if __name__ == "__main__":
    main()
