"""The backbone registry: ``@register`` a builder, ``build(name)`` it, ``names()`` lists them.

A builder is any callable returning a :class:`backbones.base.Backbone`; its
keyword arguments are the options users may pass to :func:`build`. Weight
sources are declared at registration, next to the builder.
"""
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

from .errors import UnknownNameError, UserError, check_choice
from .norm import NORMS
from .pretrained import IMAGENET_MEAN, IMAGENET_STD, PretrainedWeights, load_into, read_checkpoint_file


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


def resolve_pretrained(name: str, pretrained) -> Union[None, PretrainedWeights, Path]:
    """Turn the user's ``pretrained`` value into a weight source.

    ``None``/``False``/``"none"``: random init. ``True``: the entry's first
    source. A source name (``"torchvision"``): that source. Anything else is
    taken as a path to a local file.
    """
    entry = get_entry(name)
    if not is_pretrained(pretrained):
        return None
    if pretrained is True:
        if not entry.pretrained:
            raise UserError(f"backbone {name!r} has no published pretrained weights; "
                            f"pass a local file or 'none'")
        return next(iter(entry.pretrained.values()))
    if pretrained in entry.pretrained:
        return entry.pretrained[pretrained]
    path = Path(pretrained)
    if path.suffix or path.exists():
        return path
    raise UnknownNameError(f"pretrained source for {name}", pretrained,
                           list(entry.pretrained) + ["none", "<path to a .pth file>"])


def build(name: str, pretrained=None, norm: Optional[str] = None, freeze_at: int = 0, **options):
    """Build a registered backbone.

    Args:
        name: a name from :func:`names`.
        pretrained: see :func:`resolve_pretrained`.
        norm: ``frozen_bn``, ``bn`` or ``gn``; defaults to ``frozen_bn`` with
            pretrained weights (fine-tuning) and ``bn`` without.
        freeze_at: freeze the first N stages (stem counts as stage 1).
        options: builder options, e.g. ``shortcut="A"`` or ``out_features``.

    The returned backbone carries ``pixel_mean``/``pixel_std`` (RGB, [0, 1]
    scale) of its weights, for the detector's input normalisation.
    """
    entry = get_entry(name)
    valid = entry.options()
    for key in options:
        check_choice(f"option for backbone {name}", key, [v for v in valid if v != "norm"])
    source = resolve_pretrained(name, pretrained)
    norm = norm or ("frozen_bn" if source is not None else "bn")
    check_choice("norm", norm, NORMS)
    model = entry.builder(norm=norm, **options)
    if isinstance(source, PretrainedWeights):
        load_into(model, source.state_dict(), f"{source.source} ({source.url})")
    elif source is not None:
        load_into(model, read_checkpoint_file(source), str(source))
    model.pixel_mean = source.mean if isinstance(source, PretrainedWeights) else IMAGENET_MEAN
    model.pixel_std = source.std if isinstance(source, PretrainedWeights) else IMAGENET_STD
    if freeze_at:
        model.freeze(freeze_at)
    return model
