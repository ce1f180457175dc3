"""Errors for user mistakes (unknown names, bad options, missing files).

Command-line programs (:func:`command`) catch :class:`UserError` and print its
message without a traceback, so every message must name the bad input and say
how to fix it.
"""
import difflib
import functools
import sys


class UserError(Exception):
    """A mistake in what the user asked for; the message says what to do."""


class UnknownNameError(UserError, KeyError):
    """An unknown registry entry, dataset, neck or option value."""

    def __init__(self, kind, name, choices):
        self.kind, self.name, self.choices = kind, name, sorted(choices)
        close = difflib.get_close_matches(str(name), self.choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Valid choices: {', '.join(self.choices)}")

    def __str__(self):  # KeyError would otherwise print the repr of the message
        return self.args[0]


def check_choice(kind, value, choices):
    """Return ``value`` if it is one of ``choices``, else raise UnknownNameError."""
    if value not in choices:
        raise UnknownNameError(kind, value, choices)
    return value


def command(main):
    """Wrap a program's ``main(argv=None)``: a :class:`UserError` prints ``error: ...`` and exits with
    status 2, never a traceback; Ctrl-C prints ``interrupted`` and exits with 130."""
    @functools.wraps(main)
    def wrapped(argv=None):
        try:
            return main(argv)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as err:
            print(f"interrupted: {err}" if str(err) else "interrupted", file=sys.stderr)
            sys.exit(130)
    return wrapped
