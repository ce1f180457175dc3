"""detectron2 config keys for registry backbones, and a loader that resolves model-zoo bases by name.

The plugin adds one node to detectron2's config::

    MODEL:
      BACKBONE: {NAME: build_transfer_fpn_backbone}  # or build_transfer_c4_backbone
      TRANSFER:
        NAME: resnet101          # any name in backbones.names()
        PRETRAINED: torchvision  # a registry weight source, "none", or a weight file
        OPTIONS: {}              # extra builder options, e.g. {shortcut: A}
      ROI_HEADS: {NAME: TransferC4ROIHeads}           # C4 only

and reads these existing keys: MODEL.BACKBONE.FREEZE_AT, MODEL.RESNETS.NORM,
MODEL.RESNETS.STRIDE_IN_1X1, MODEL.RESNETS.OUT_FEATURES (C4 trunk),
MODEL.FPN.* (FPN). Images are normalised as the chosen weights expect:
:func:`set_input_normalization` derives INPUT.FORMAT (RGB), MODEL.PIXEL_MEAN
and MODEL.PIXEL_STD from MODEL.TRANSFER.PRETRAINED, and :func:`load_config`
calls it; the builders refuse a config that contradicts declared weights.

A config file's ``_BASE_`` may name a file relative to it (detectron2's rule)
or a detectron2 model-zoo config by its zoo name, e.g.
``COCO-Detection/faster_rcnn_R_101_FPN_3x.yaml``.
"""
import difflib
import importlib.util
import os
from pathlib import Path

import yaml
from detectron2.config import CfgNode, get_cfg

from backbones.errors import UserError
from backbones.registry import get_entry, resolve_pretrained

BASE_KEY = "_BASE_"
OPTION_KEYS_FROM_CFG = {  # builder options the plugin fills from detectron2's own keys
    "norm": "MODEL.RESNETS.NORM", "stride_in_1x1": "MODEL.RESNETS.STRIDE_IN_1X1",
    "out_features": "MODEL.FPN.IN_FEATURES / MODEL.RESNETS.OUT_FEATURES",
}


def add_transfer_config(cfg: CfgNode) -> CfgNode:
    """Add the MODEL.TRANSFER node (see the module docstring) to a detectron2 config."""
    if "TRANSFER" in cfg.MODEL:
        return cfg
    was_frozen = cfg.is_frozen()
    cfg.defrost()
    cfg.MODEL.TRANSFER = CfgNode()
    cfg.MODEL.TRANSFER.NAME = "resnet50"
    # "none": random init (e.g. when MODEL.WEIGHTS holds a checkpoint made by tools/export_detectron2.py)
    cfg.MODEL.TRANSFER.PRETRAINED = "none"
    cfg.MODEL.TRANSFER.OPTIONS = CfgNode(new_allowed=True)
    if was_frozen:
        cfg.freeze()
    return cfg


def get_transfer_cfg() -> CfgNode:
    """detectron2's default config plus the MODEL.TRANSFER node."""
    return add_transfer_config(get_cfg())


def weights_normalization(name: str, pretrained):
    """(mean, std) the backbone's weights expect: RGB order, 0-1 units; None without weights.

    Loaded weights always take RGB input (the registry reverses the first conv
    of BGR weights such as MSRA's). A local file's conventions are told from
    its names, so the file is read here.
    """
    source = resolve_pretrained(name, _pretrained_value(pretrained))
    if source is None:
        return None
    if source.input_space == "auto":
        loaded = source.load(progress=False)
        return tuple(loaded.mean), tuple(loaded.std)
    return tuple(source.mean), tuple(source.std)


def set_input_normalization(cfg: CfgNode) -> CfgNode:
    """Set INPUT.FORMAT RGB and MODEL.PIXEL_MEAN/PIXEL_STD from the weights MODEL.TRANSFER chooses.

    detectron2 feeds the network 0-255 images in INPUT.FORMAT channel order and
    subtracts PIXEL_MEAN / divides by PIXEL_STD, both in 0-255 units and in that
    order; our weights declare RGB mean/std in 0-1 units (torchvision's
    convention), so this multiplies them by 255. MSRA's Caffe weights give
    detectron2's usual [123.675, 116.28, 103.53] / [1, 1, 1], in RGB order.

    With MODEL.TRANSFER.PRETRAINED none there are no weights to follow (random
    init, or MODEL.WEIGHTS from tools/export_detectron2.py, which prints the
    values to set): the config's own values are left as they are.
    """
    normalization = weights_normalization(cfg.MODEL.TRANSFER.NAME, cfg.MODEL.TRANSFER.PRETRAINED)
    if normalization is None:
        return cfg
    mean, std = normalization
    was_frozen = cfg.is_frozen()
    cfg.defrost()
    cfg.INPUT.FORMAT = "RGB"
    cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD = pixel_values(mean, std)
    if was_frozen:
        cfg.freeze()
    return cfg


def pixel_values(mean, std) -> tuple:
    """detectron2's PIXEL_MEAN, PIXEL_STD (0-255 units) for RGB 0-1 mean/std."""
    return [round(255.0 * m, 4) for m in mean], [round(255.0 * s, 4) for s in std]


def _pretrained_value(value):
    return "none" if value in (None, "", "none", "None", False) else value


# -- model-zoo bases ------------------------------------------------------------------------
def zoo_configs_dir() -> Path:
    """detectron2's bundled model-zoo configs (detectron2/model_zoo/configs)."""
    spec = importlib.util.find_spec("detectron2.model_zoo")
    folder = Path(list(spec.submodule_search_locations)[0]) / "configs"
    if not folder.is_dir():
        raise UserError(f"detectron2 at {folder.parents[1]} has no model-zoo configs ({folder}); "
                        f"install detectron2 with pip (it copies configs/ there) or run tools/fetch_detectron2.py")
    return folder


def zoo_config_file(name: str) -> str:
    """Path of a model-zoo config by its zoo name, e.g. ``COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml``.

    Uses detectron2.model_zoo.get_config_file where it imports; detectron2
    (0.6 and later) imports pkg_resources there, which setuptools 81 removed,
    so the same file is otherwise looked up directly in the package.
    """
    try:
        from detectron2.model_zoo import get_config_file
    except ImportError:  # ModuleNotFoundError: pkg_resources
        get_config_file = None
    if get_config_file is not None:
        try:
            return get_config_file(name)
        except RuntimeError:
            pass  # not in the zoo: the error below suggests a name
    folder = zoo_configs_dir()
    path = folder / name
    if path.is_file():
        return str(path)
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml"))
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UserError(f"{name!r} is neither a file nor a detectron2 model-zoo config.{hint} "
                    f"Zoo configs are named relative to {folder}")


def _resolve_base(base: str, config_dir: Path) -> str:
    base = os.path.expanduser(base)
    if base.startswith(("https://", "http://")) or os.path.isabs(base):
        return base
    local = config_dir / base
    return str(local) if local.is_file() else zoo_config_file(base)


def _merge_into(a: dict, b: dict):
    """Values of dict ``a`` override ``b`` (recursively), as detectron2's _BASE_ inheritance does."""
    for key, value in a.items():
        if isinstance(value, dict) and key in b:
            if not isinstance(b[key], dict):
                raise UserError(f"cannot inherit key {key!r} from a _BASE_ config: it is not a section there")
            _merge_into(value, b[key])
        else:
            b[key] = value


def read_config_file(path) -> dict:
    """The YAML file with its _BASE_ chain merged in; bases may be zoo names."""
    if str(path).startswith(("https://", "http://")):
        return CfgNode.load_yaml_with_base(str(path))
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a YAML mapping of config keys")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    resolved = _resolve_base(base, path.parent)
    merged = read_config_file(resolved)
    _merge_into(data, merged)
    return merged


def merge_config_file(cfg: CfgNode, path) -> CfgNode:
    """``cfg.merge_from_file(path)``, except that ``_BASE_`` may be a model-zoo name."""
    loaded = type(cfg)(read_config_file(path))
    version = loaded.get("VERSION", cfg.VERSION)
    if version != cfg.VERSION:
        raise UserError(f"{path} is a version-{version} detectron2 config; this loader reads version "
                        f"{cfg.VERSION} (upgrade it with detectron2.config.upgrade_config)")
    try:
        cfg.merge_from_other_cfg(loaded)
    except (KeyError, ValueError, AssertionError) as err:  # yacs: unknown key, wrong type
        raise UserError(f"{path}: {_message(err)}") from None
    return cfg


def _message(err) -> str:
    return str(err.args[0]) if err.args else type(err).__name__


def load_config(path, opts=()) -> CfgNode:
    """detectron2 config for ``path`` with the MODEL.TRANSFER keys; ``opts``: KEY VALUE overrides.

    INPUT.FORMAT and MODEL.PIXEL_MEAN/STD are then set from the chosen weights
    (:func:`set_input_normalization`), so they need not be in the file; with
    MODEL.TRANSFER.PRETRAINED none the file's (or the overrides') values stay.
    """
    cfg = get_transfer_cfg()
    merge_config_file(cfg, path)
    if opts:
        try:
            cfg.merge_from_list(list(opts))
        except (KeyError, ValueError, AssertionError) as err:
            raise UserError(f"config overrides {list(opts)}: {_message(err)}") from None
    get_entry(cfg.MODEL.TRANSFER.NAME)  # an unknown backbone fails here, with suggestions
    return set_input_normalization(cfg)
