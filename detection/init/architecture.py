"""A run started from a trained detector takes that detector's architecture and input normalisation.

Whatever the config file says about the model's structure, the weights only
fit the structure they were trained in, so the source's wins and the run says
which settings it replaced. Settings of how to fine-tune are the user's when
the user sets them (on the command line or in the config file): the
normalisation layers and frozen stages (``norm``, ``freeze_at``; otherwise as
the source trained them), the image sizes, and the sampling of the RPN and
RoI heads. Flags that name another backbone or neck than the source's are a
contradiction and refused.
"""
import dataclasses
from typing import Iterable, List, Tuple

from backbones.errors import UserError

from ..detector import DetectorConfig
from .source import InitSource

# set by the user -> the user's; unset -> the source's (the rest always comes from the source)
TUNING_KEYS = ("norm", "freeze_at", "freeze_norm", "min_size", "max_size", "rpn_pre_nms_top_n_train",
               "rpn_post_nms_top_n_train", "rpn_batch_size_per_image", "box_batch_size_per_image")
# the run's own, never the source's
RUN_KEYS = ("num_classes", "pretrained", "init", "init_classes")


def with_source_architecture(model: DetectorConfig, source: InitSource, explicit: Iterable[str] = (),
                             flags: Iterable[str] = (),
                             data_has_masks: bool = True) -> Tuple[DetectorConfig, List[str]]:
    """``model`` with ``source``'s architecture; returns it and the lines saying what was replaced.

    ``explicit``: model keys the user set (config file, flags, overrides); ``flags``: those set by
    command-line flags, which may not contradict the source. A Mask R-CNN source on data without masks
    (or with ``model.mask=false`` set) trains as a Faster R-CNN: its mask head is left unused.
    """
    explicit, flags = set(explicit), set(flags)
    theirs = source.config
    for key in ("backbone", "neck", "mask"):
        if key in flags and getattr(model, key) != getattr(theirs, key):
            raise UserError(f"--init {source.name} is a {theirs.backbone}-{theirs.neck} "
                            f"{'Mask' if theirs.mask else 'Faster'} R-CNN, but the flags ask for model.{key}="
                            f"{getattr(model, key)!r}; drop that flag (the architecture comes with the weights) "
                            f"or choose another --init")
    if "pretrained" in flags and model.pretrained not in (None, "none"):
        raise UserError(f"--pretrained {model.pretrained} and --init {source.name} both give the backbone's "
                        f"weights; pass one (--init brings the whole detector's)")
    values, replaced = {}, []
    for f in dataclasses.fields(DetectorConfig):
        key = f.name
        if key in RUN_KEYS or (key in TUNING_KEYS and key in explicit):
            continue
        value = getattr(theirs, key)
        if value != getattr(model, key):
            if key in explicit:
                replaced.append(f"model.{key} {getattr(model, key)!r} -> {value!r}")
            values[key] = value
    # the weights come from the source: no backbone weights to fetch
    boxes_only = theirs.mask and (not data_has_masks or ("mask" in explicit and not model.mask))
    if boxes_only:
        values["mask"] = False
        replaced = [r for r in replaced if not r.startswith("model.mask ")]
    config = dataclasses.replace(model, **values, pretrained="none")
    notes = [f"--init {source.name}: architecture and input normalisation from {source.description}"]
    if boxes_only:
        notes.append("  boxes only (" + ("the data has no instance masks" if not data_has_masks else "model.mask=false")
                     + "): a Faster R-CNN; the source's mask head is left unused")
    if replaced:
        notes.append("  the config's model settings replaced by the source's: " + ", ".join(replaced))
    return config.validate(), notes
