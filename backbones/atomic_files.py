"""Files written whole or not at all, and a write that fails says why in one line.

A file is written to ``<name>.tmp`` beside it and renamed over the old one, so
a crash, a full disk or Ctrl-C never leaves a half-written file under the real
name and never loses the previous version. When the write fails, the partial
``.tmp`` is removed and :class:`WriteError` names the file, the free space
and the size the write needed (a full disk is the usual cause), instead of a
chain of tracebacks from whatever tried to write next.
"""
import os
import shutil
from pathlib import Path
from typing import Callable, Optional

import torch

from .errors import UserError


class WriteError(UserError):
    pass


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def free_space(folder) -> Optional[int]:
    """Bytes free for this user on the disk holding ``folder`` (None when it cannot be told)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def write_failure(path, err: BaseException, needed: Optional[int] = None) -> WriteError:
    """The one-line error of a failed write of ``path``."""
    path = Path(path)
    text = str(err).strip()
    reason = getattr(err, "strerror", None) or (text.splitlines()[0] if text else type(err).__name__)
    free = free_space(path.parent)
    space = [f"{_size(free)} free on its disk" if free is not None else None,
             f"about {_size(needed)} needed" if needed else None]
    space = ", ".join(s for s in space if s)
    kept = f"; the previous {path.name} is kept" if path.exists() else ""
    return WriteError(f"could not write {path}: {reason}" + (f" ({space})" if space else "") + kept +
                      "; free some space or write elsewhere, then run again")


def write_atomically(path, write: Callable[[Path], None], needed: Optional[int] = None) -> Path:
    """``write(tmp)`` then rename ``tmp`` to ``path``. ``needed``: the expected size, for the message."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, (KeyboardInterrupt, SystemExit, UserError)):
            raise
        raise write_failure(path, err, needed) from err
    return path


def write_text(path, text: str, encoding="utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    data = text.encode(encoding)
    return write_atomically(path, lambda tmp: tmp.write_bytes(data), len(data))


def save_torch(obj, path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (a checkpoint, a state dict)."""
    return write_atomically(path, lambda tmp: torch.save(obj, tmp), needed=tensor_bytes(obj))


def tensor_bytes(value) -> int:
    """The bytes of the tensors in ``value``: about what ``torch.save`` writes."""
    if torch.is_tensor(value):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0
