"""What every layout shares: a ResNet parameter described independently of naming.

A :class:`Slot` says which tensor it is (the stem's conv weight, the second
norm's running mean in block 3 of conv4_x, ...). A :class:`Naming` is one
layout's table of name templates, one per kind of slot, and reads names both
ways, so each layout module is a table rather than two hand-written parsers.
"""
import re
from dataclasses import dataclass
from typing import Optional

from ..errors import UserError

# BatchNorm's eps in torchvision's FrozenBatchNorm2d and nn.BatchNorm2d (and detectron2's FrozenBN)
BN_EPS = 1e-5

KINDS = ("stem_conv", "stem_norm", "conv", "norm", "shortcut_conv", "shortcut_norm", "fc")
NORM_PARAMS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


class ConversionError(UserError):
    """Names that have no counterpart in the target layout."""


@dataclass(frozen=True)
class Slot:
    kind: str       # one of KINDS
    param: str      # our parameter name: weight, bias, running_mean, ...
    stage: int = 0  # 2..5: the paper's conv2_x..conv5_x (0 for the stem and fc)
    block: int = 0  # block index within the stage
    index: int = 0  # conv/norm number within the block's residual branch, 1..3


_FIELDS = {"stage": r"\d+", "layer": r"\d+", "block": r"\d+", "index": r"\d", "letter": "[abc]",
           "param": r"[a-z_]+"}


def _pattern(template):
    """``"res{stage}.{block}.conv{index}.{param}"`` -> a regex with one named group per field."""
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>{_FIELDS[p]})"
                              for i, p in enumerate(parts)))


class Naming:
    """One layout's names.

    ``templates``: kind -> template, or a tuple of templates where the first is
    written and all are read (aliases). Fields: ``stage``; ``layer`` (= stage - 1,
    torchvision's numbering); ``block``; ``index``; ``letter`` (a, b, c = index 1,
    2, 3, Caffe2's numbering); ``param``. ``params``: kind -> {our param: theirs}
    for layouts that spell parameters differently.
    """

    def __init__(self, templates: dict, params: Optional[dict] = None):
        self.templates = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in templates.items()}
        self.params = params or {}
        self._readers = [(kind, _pattern(t)) for kind, ts in self.templates.items() for t in ts]

    def name(self, slot: Slot) -> Optional[str]:
        spelling = self.params.get(slot.kind)
        param = slot.param if spelling is None else spelling.get(slot.param)
        if slot.kind not in self.templates or param is None:
            return None
        return self.templates[slot.kind][0].format(
            stage=slot.stage, layer=slot.stage - 1, block=slot.block, index=slot.index,
            letter="abc"[slot.index - 1] if slot.index else "", param=param)

    def slot(self, name: str) -> Optional[Slot]:
        for kind, pattern in self._readers:
            match = pattern.fullmatch(name)
            if match is None:
                continue
            fields = match.groupdict()
            param = fields["param"]
            if kind in self.params:  # this layout spells parameters its own way
                theirs = {v: k for k, v in self.params[kind].items()}
                if param not in theirs:
                    continue
                param = theirs[param]
            stage = int(fields["stage"]) if "stage" in fields else int(fields.get("layer", -1)) + 1
            index = "abc".index(fields["letter"]) + 1 if "letter" in fields else int(fields.get("index", 0))
            return Slot(kind, param, stage, int(fields.get("block", 0)), index)
        return None


# Our names are torchvision's.
OURS = Naming({
    "stem_conv": "conv1.{param}",
    "stem_norm": "bn1.{param}",
    "conv": "layer{layer}.{block}.conv{index}.{param}",
    "norm": "layer{layer}.{block}.bn{index}.{param}",
    "shortcut_conv": "layer{layer}.{block}.downsample.0.{param}",
    "shortcut_norm": "layer{layer}.{block}.downsample.1.{param}",
    "fc": "fc.{param}",
})


def rename(state_dict: dict, source: Naming, target: Naming, layout: str, direction: str) -> dict:
    """Rename every key from ``source`` to ``target`` naming; name all that do not map."""
    out, failed = {}, []
    for name, value in state_dict.items():
        slot = source.slot(name)
        new = target.name(slot) if slot is not None else None
        if new is None:
            failed.append(name)
        else:
            out[new] = value
    if failed:
        raise ConversionError(
            f"{len(failed)} names cannot be converted {direction} {layout} names: "
            f"{failed[:5]}{'...' if len(failed) > 5 else ''}. Only the ResNet layout (stem conv1/bn1, "
            f"4 stages of conv/norm blocks with optional projection shortcuts, fc) is convertible")
    return out
