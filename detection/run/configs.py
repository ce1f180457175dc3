"""The configs shipped with the package (``configs/`` of the repository), found from anywhere.

In a checkout or an editable install they are the repository's ``configs/``;
a wheel carries the same files as package data under ``detection/configs/``.
A run names one by its repository path (``configs/shapes_demo.yaml``), which
works from any working directory.
"""
from pathlib import Path
from typing import Optional

from backbones.errors import UserError

_PACKAGE = Path(__file__).resolve().parents[1]


def config_root() -> Path:
    """The folder holding the shipped configs (``base/``, ``coco/``, ``paper/``, ``pretrain/``, ...)."""
    for root in (_PACKAGE / "configs", _PACKAGE.parent / "configs"):  # wheel, then checkout
        if root.is_dir():
            return root
    raise UserError(f"the shipped configs are missing (looked in {_PACKAGE / 'configs'} and "
                    f"{_PACKAGE.parent / 'configs'}); reinstall the package")


def shipped_config(relative: str) -> Path:
    """A shipped config by its path under ``configs/``, e.g. ``pretrain/shapes_crops.yaml``."""
    return config_root() / relative


def find_config(path) -> Optional[Path]:
    """``path`` as given when it exists, else the shipped config of that name (``configs/...`` or
    a path under ``configs/``); a name found nowhere is left for the reader to report."""
    if path is None:
        return None
    given = Path(path).expanduser()
    if given.is_file() or given.is_absolute():
        return given
    parts = given.parts[1:] if given.parts[:1] == ("configs",) else given.parts
    shipped = config_root().joinpath(*parts) if parts else None
    return shipped if shipped is not None and shipped.is_file() else given
