#!/usr/bin/env python
"""Install detectron2 0.6's Python code into this virtual environment for the tests (CI and ``make install``).

    .venv/bin/python tools/fetch_detectron2.py              # idempotent; make install runs it
    .venv/bin/python tools/fetch_detectron2.py --sdist pb1-detectron2-0.6.tar.gz   # offline, from a local copy

The program is detectron2_plugin.install (also `python -m detectron2_plugin.install`); --help lists its options.
"""
from detectron2_plugin.install import main

if __name__ == "__main__":
    main()
