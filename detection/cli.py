"""Shared plumbing for the command-line tools in ``tools/``: user errors print, never trace."""
import sys

from backbones.errors import UserError


def run(main):
    """Call ``main()``; a :class:`UserError` prints ``error: ...`` and exits with status 2."""
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as err:
        print(f"interrupted: {err}" if str(err) else "interrupted", file=sys.stderr)
        sys.exit(130)
