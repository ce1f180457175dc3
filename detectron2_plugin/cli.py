"""Shared plumbing of the plugin's command-line programs (``train``, ``export``): user errors print, never trace.

Each program module has ``main(argv=None)``; ``tools/<name>_detectron2.py`` and
``python -m detectron2_plugin.<name>`` run it. A :class:`UserError` prints
``error: ...`` and exits with status 2; Ctrl-C exits with 130. The programs
import without detectron2 and say how to install it when it is missing.
"""
import functools
import warnings

from backbones.errors import UserError
from backbones.errors import command as plain_command

MISSING_DETECTRON2 = ("detectron2_plugin needs detectron2, which publishes no wheels: install it from its "
                      "repository, pip install 'git+https://github.com/facebookresearch/detectron2.git' "
                      "(tools/fetch_detectron2.py installs its Python code for the tests)")


def command(main):
    """``backbones.errors.command`` (user errors print one line, exit 2), quiet about a deprecation of detectron2's."""
    program = plain_command(main)

    @functools.wraps(main)
    def wrapped(argv=None):
        # detectron2 0.6 scripts a few functions with torch.jit.script, which torch 2.x deprecates: not ours to act on
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
        return program(argv)
    return wrapped


def missing_detectron2(err: ImportError) -> UserError:
    """The error to print when detectron2 (or one of its dependencies) does not import."""
    if (err.name or "").partition(".")[0] == "detectron2":
        return UserError(MISSING_DETECTRON2)
    return UserError(str(err))
