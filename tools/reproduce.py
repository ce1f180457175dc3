#!/usr/bin/env python
"""Run a suite of the paper's transfer experiments and write reproduction/<suite>/report.md with plots.

The program is detection.cli.reproduce (also `python -m detection.cli.reproduce`); --help lists its options.
"""
from detection.cli.reproduce import main

if __name__ == "__main__":
    main()
