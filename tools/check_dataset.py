#!/usr/bin/env python
"""Check a dataset without training: counts, sizes, and every problem the loader fixed.

The program is detection.cli.check_dataset (also `python -m detection.cli.check_dataset`); --help lists its options.
"""
from detection.cli.check_dataset import main

if __name__ == "__main__":
    main()
