"""Head surgery: a trained detector's weights into a model for another class list.

Every tensor whose name and shape match is loaded. The class-dependent layers
(box classifier, box regressor, mask predictor) hold one row (four for the
regressor) per class, background first: a dataset class whose name matches a
source class (case-insensitive, VOC's names through :data:`ALIASES`) starts
from that class's rows, the background from the source's background, and the
other classes keep the fresh initialisation the model was built with. The
report says, tensor by tensor and class by class, what came from where.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch

from backbones.errors import UserError, check_choice

# class-dependent tensors (our names, without .weight/.bias) -> rows per class
CLASS_ROWS = {"roi_heads.box_predictor.cls_score": 1, "roi_heads.box_predictor.bbox_pred": 4,
              "roi_heads.mask_predictor.mask_fcn_logits": 1}
# dataset class names that name a COCO class differently: PASCAL VOC's (and a few common spellings)
ALIASES = {"aeroplane": "airplane", "motorbike": "motorcycle", "tvmonitor": "tv", "tv monitor": "tv",
           "diningtable": "dining table", "pottedplant": "potted plant", "sofa": "couch",
           "monitor": "tv", "television": "tv", "plane": "airplane", "bike": "bicycle", "people": "person",
           "pedestrian": "person", "table": "dining table"}
MODES = ("match", "reinit")


def canonical(name: str) -> str:
    """The name a class is matched by: lower case, ``_``/``-`` as spaces, VOC's spellings as COCO's."""
    key = " ".join(str(name).lower().replace("_", " ").replace("-", " ").split())
    return ALIASES.get(key, ALIASES.get(key.replace(" ", ""), key))


def check_class_names(names: Sequence[str], what: str):
    """A class list used for matching may not name a class twice (after :func:`canonical`)."""
    seen: Dict[str, str] = {}
    for name in names:
        key = canonical(name)
        if key in seen:
            raise UserError(f"{what}: {seen[key]!r} and {name!r} are one class twice (both match {key!r}); "
                            f"give each class one name")
        seen[key] = name


def match_classes(dataset_classes: Sequence[str], source_classes: Sequence[str], mode="match") -> List[Optional[int]]:
    """For each dataset class, the label (1-based) of the source class it starts from, or None (fresh)."""
    check_choice("--init-classes", mode, MODES)
    check_class_names(dataset_classes, "the dataset")
    if mode == "reinit":
        return [None] * len(dataset_classes)
    source = {}
    for label, name in enumerate(source_classes, 1):
        if canonical(name) != "n/a":  # placeholders such as torchvision's "N/A" match nothing
            source.setdefault(canonical(name), label)
    return [source.get(canonical(name)) for name in dataset_classes]


@dataclass
class SurgeryReport:
    loaded: List[str] = field(default_factory=list)
    partial: List[str] = field(default_factory=list)       # class-dependent: matched rows kept
    reinitialised: List[str] = field(default_factory=list)  # in the model, not (or not in this shape) in the source
    unused: List[str] = field(default_factory=list)         # in the source, not in the model
    classes: List[tuple] = field(default_factory=list)      # (dataset class, source class or None)

    @staticmethod
    def _names(names: List[str]) -> str:
        """The names, or for many, their modules with counts (``roi_heads.mask_head.* (24)``)."""
        if len(names) <= 6:
            return ", ".join(names) or "-"
        groups: Dict[str, int] = {}
        for name in names:
            prefix = ".".join(name.split(" ")[0].split(".")[:2]) + ".*"
            groups[prefix] = groups.get(prefix, 0) + 1
        return ", ".join(f"{prefix} ({n})" for prefix, n in groups.items())

    def lines(self, source_name: str) -> List[str]:
        started = [f"{c} <- {s}" for c, s in self.classes if s is not None]
        fresh = [c for c, s in self.classes if s is None]
        out = [f"initialised from {source_name}:",
               f"  loaded            {len(self.loaded)} tensors",
               f"  partially kept    {len(self.partial)}: {self._names(self.partial)}",
               f"  re-initialised    {len(self.reinitialised)}: {self._names(self.reinitialised)}",
               f"  unused            {len(self.unused)}: {self._names(self.unused)}",
               f"  classes from the source ({len(started)}): {', '.join(started) or '-'}",
               f"  classes starting fresh ({len(fresh)}): {', '.join(fresh) or '-'}"]
        return out


def _class_dependent(name: str):
    base = name.rsplit(".", 1)[0]
    return CLASS_ROWS.get(base)


def _rows(tensor, rows_per_class, label):
    return tensor[label * rows_per_class:(label + 1) * rows_per_class]


def transplant(model: torch.nn.Module, state_dict: dict, source_classes: Sequence[str],
               dataset_classes: Sequence[str], mode="match") -> SurgeryReport:
    """Load ``state_dict`` (a source detector's, our names) into ``model`` (built for ``dataset_classes``)."""
    matches = match_classes(dataset_classes, source_classes, mode)
    report = SurgeryReport(classes=[(c, source_classes[m - 1] if m else None)
                                    for c, m in zip(dataset_classes, matches)])
    own = model.state_dict()
    new = {}
    for name, target in own.items():
        value = state_dict.get(name)
        rows = _class_dependent(name)
        if value is None:
            report.reinitialised.append(name)
        elif rows is not None and value.shape[1:] == target.shape[1:] \
                and value.shape[0] == rows * (len(source_classes) + 1):
            merged = target.clone()
            pairs = [(0, 0)] + [(k, m) for k, m in enumerate(matches, 1) if m is not None]
            for ours, theirs in pairs:
                _rows(merged, rows, ours).copy_(_rows(value, rows, theirs))
            new[name] = merged
            (report.loaded if value.shape == target.shape and len(pairs) == len(matches) + 1
             and all(a == b for a, b in pairs) else report.partial).append(name)
        elif value.shape == target.shape:
            new[name] = value
            report.loaded.append(name)
        else:
            report.reinitialised.append(f"{name} (source {tuple(value.shape)}, model {tuple(target.shape)})")
    report.unused = [n for n in state_dict if n not in own]
    model.load_state_dict({**own, **new})
    return report
