"""Valid ranges of numeric settings, declared once per config section and checked when a config is read.

A config module declares ``RANGES = {section: {key: Range}}`` beside its
dataclasses, and the config is checked against it together with the types, so
a value is checked the same way whether it came from a YAML file, a
``section.key=value`` override or a flag that sets it. The message names the
setting, the value and what it may be::

    solver.ims_per_batch=0: must be >= 1

Both ``detection.config`` and ``pretraining.config`` use it (pretraining may
import from ``backbones`` only, hence this module here); programs check their
own flags with :func:`check_flag`.
"""
import math
from dataclasses import dataclass
from typing import Mapping, Optional

from .errors import UserError


@dataclass(frozen=True)
class Range:
    """An interval of numbers (a bound of None: unbounded); a list setting's items must each lie in it.

    ``None`` (an unset value, where the type allows one) is always in range: it means "decided later".
    """
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False        # ``low`` itself excluded
    high_open: bool = False
    increasing: bool = False      # a list's items in increasing (non-decreasing) order, e.g. schedule steps
    note: str = ""                # what a special value means, shown after the range, e.g. "0: never"

    def holds(self, x) -> bool:
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return self.high is None or (x < self.high if self.high_open else x <= self.high)

    def __str__(self):
        if self.low is not None and self.high is not None:
            text = (f"in {'(' if self.low_open else '['}{_number(self.low)}, "
                    f"{_number(self.high)}{')' if self.high_open else ']'}")
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {_number(self.low)}"
        else:
            text = f"{'<' if self.high_open else '<='} {_number(self.high)}"
        return f"{text} ({self.note})" if self.note else text

    def problem(self, value) -> Optional[str]:
        """What is wrong with ``value`` ("must be >= 1"), or None when it is in range."""
        if value is None:
            return None
        many = isinstance(value, (list, tuple))
        items = list(value) if many else [value]
        each = "each " if many else ""
        if not all(math.isfinite(x) for x in items):
            return f"{each}must be a finite number"
        if not all(self.holds(x) for x in items):
            return f"{each}must be {self}"
        if self.increasing and items != sorted(items):
            return "must be in increasing order"
        return None


def at_least(low, note="") -> Range:
    return Range(low, note=note)


def above(low, note="") -> Range:
    return Range(low, low_open=True, note=note)


def between(low, high, low_open=False, high_open=False, note="") -> Range:
    return Range(low, high, low_open, high_open, note=note)


def _number(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def shown(value) -> str:
    """A value as the user would write it on the command line: ``[0, 10]``, ``-1``, ``0.5``."""
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(shown(v) for v in value)}]"
    return _number(value)


def check_settings(section: str, values: Mapping, ranges: Mapping[str, Range], where: str,
                   given: Optional[Mapping] = None):
    """Raise a :class:`UserError` for the first of ``values`` (a section's keys and values) outside its range,
    e.g. ``config.yaml: solver.ims_per_batch=0: must be >= 1``. ``where``: the config's name; ``given``:
    the {section: {key: value}} the command line set, whose values are named as coming from there."""
    from_command_line = (given or {}).get(section) or {}
    for key, valid in ranges.items():
        problem = valid.problem(values.get(key))
        if problem:
            place = "command line" if key in from_command_line else where
            raise UserError(f"{place}: {section}.{key}={shown(values[key])}: {problem}")


def check_flag(flag: str, value, valid: Range):
    """A program's numeric flag in range, else a :class:`UserError` naming it: ``--num-images 0: must be >= 1``."""
    problem = valid.problem(value)
    if problem:
        raise UserError(f"{flag} {shown(value)}: {problem}")
    return value
