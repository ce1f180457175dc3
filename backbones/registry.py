"""The backbone registry: ``@register`` a builder, ``build(name)`` it, ``names()`` lists them.

A builder is any callable returning a :class:`backbones.base.Backbone`; its
keyword arguments are the options users may pass to :func:`build`. Weight
sources are declared at registration, next to the builder.
"""
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .errors import UnknownNameError, UserError, check_choice
from .norm import NORMS
from .pretrained import IMAGENET_MEAN, IMAGENET_STD, PretrainedWeights, load_into, local_file


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable
    pretrained: dict = field(default_factory=dict)  # source name -> PretrainedWeights

    def options(self) -> list:
        params = inspect.signature(self.builder).parameters.values()
        return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


_REGISTRY: dict = {}


def register(name: str, pretrained: Optional[dict] = None):
    """Decorator: register ``builder`` under ``name`` with its weight sources."""
    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is registered twice")
        _REGISTRY[name] = Entry(name, builder, dict(pretrained or {}))
        return builder
    return decorator


def names() -> list:
    """All registered backbone names, sorted."""
    return sorted(_REGISTRY)


def get_entry(name: str) -> Entry:
    return _REGISTRY[check_choice("backbone", name, _REGISTRY)]


def is_pretrained(value) -> bool:
    """Whether a ``pretrained`` value asks for weights (``None``, ``False`` and ``"none"`` do not)."""
    return value not in (None, False, "none")


def resolve_pretrained(name: str, pretrained) -> Optional[PretrainedWeights]:
    """Turn the user's ``pretrained`` value into a weight source.

    ``None``/``False``/``"none"``: random init. ``True``: the entry's first
    source. A source name (``"torchvision"``, ``"msra"``): that source.
    ``"SOURCE:PATH"``: a local copy of that source's weights (or any file
    following its conventions). A :class:`PretrainedWeights`: itself. Anything
    else is a path to a local file (.pth, .pkl, .safetensors) whose name
    layout, torchvision/timm, detectron2 or Caffe2, is told from its names.
    """
    entry = get_entry(name)
    if isinstance(pretrained, PretrainedWeights):
        return pretrained
    if not is_pretrained(pretrained):
        return None
    if pretrained is True:
        if not entry.pretrained:
            raise UserError(f"backbone {name!r} has no published pretrained weights; "
                            f"pass a local file or 'none'")
        return next(iter(entry.pretrained.values()))
    if pretrained in entry.pretrained:
        return entry.pretrained[pretrained]
    source, colon, path = str(pretrained).partition(":")
    if colon and source in entry.pretrained:
        return entry.pretrained[source].with_file(path)
    path = Path(pretrained)
    if path.suffix or path.exists():
        return local_file(path)
    raise UnknownNameError(f"pretrained source for {name}", pretrained,
                           list(entry.pretrained) + ["none", "<path to a .pth/.pkl/.safetensors file>",
                                                     "<source>:<path>"])


def _options_for(name: str, needed: dict, origin: str, options: dict, guessed=False) -> dict:
    """The user's options plus those the weights need; a contradiction is an error.

    Guessed conventions (a local file nobody described) give way to the user's options.
    """
    merged = dict(options)
    for key, value in needed.items():
        if key not in get_entry(name).options() and guessed:
            continue  # e.g. stride_in_1x1 guessed for a VGG: there is no such choice to make
        if key not in get_entry(name).options():
            raise UserError(f"weights from {origin} need option {key}={value!r}, "
                            f"which backbone {name} does not have")
        if key in options and options[key] != value and not guessed:
            raise UserError(f"weights from {origin} were trained with {key}={value!r}; "
                            f"drop {key}={options[key]!r} or use other weights")
        merged.setdefault(key, value)
    return merged


def build(name: str, pretrained=None, norm: Optional[str] = None, freeze_at: int = 0, **options):
    """Build a registered backbone.

    Args:
        name: a name from :func:`names`.
        pretrained: see :func:`resolve_pretrained`.
        norm: ``frozen_bn``, ``bn`` or ``gn``; defaults to ``frozen_bn`` with
            pretrained weights (fine-tuning) and ``bn`` without (a classifier's
            large batches). Detectors decide their own, GroupNorm from scratch
            for their small batches (``DetectorConfig.with_defaults``).
        freeze_at: freeze the first N stages (stem counts as stage 1).
        options: builder options, e.g. ``shortcut="A"`` or ``out_features``.
            Options the weights need (MSRA's ``stride_in_1x1=True``) are added.

    The returned backbone carries ``pixel_mean``/``pixel_std`` (RGB, [0, 1]
    scale) of its weights, for the detector's input normalisation, and
    ``weights_options``, the builder options its weights required (to be given
    again when the same architecture is rebuilt without the weights).
    """
    entry = get_entry(name)
    valid = entry.options()
    for key in options:
        check_choice(f"option for backbone {name}", key, [v for v in valid if v != "norm"])
    norm = norm or ("frozen_bn" if is_pretrained(pretrained) else "bn")
    check_choice("norm", norm, NORMS)
    source = resolve_pretrained(name, pretrained)
    if source is not None and source.input_space != "auto":  # declared: check before downloading
        _options_for(name, source.options, source.source, options)
    weights = source.load() if source is not None else None
    if weights is not None:
        options = _options_for(name, weights.options, weights.origin, options, weights.guessed)
    model = entry.builder(norm=norm, **options)
    if weights is not None:
        load_into(model, weights.state_dict, weights.origin)
    model.pixel_mean = weights.mean if weights is not None else IMAGENET_MEAN
    model.pixel_std = weights.std if weights is not None else IMAGENET_STD
    needed = weights.options if weights is not None else {}
    model.weights_options = {k: options[k] for k in needed if k in options}  # as built
    if freeze_at:
        model.freeze(freeze_at)
    return model
