#!/usr/bin/env python
"""Merge several detectors' prediction files into one by per-class NMS and box voting.

The program is detection.cli.ensemble (also `python -m detection.cli.ensemble`); --help lists its options.
"""
from detection.cli.ensemble import main

if __name__ == "__main__":
    main()
