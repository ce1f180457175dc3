#!/usr/bin/env python
"""Predict with a trained detector on image files, folders, glob patterns and videos.

The program is detection.cli.predict (also `python -m detection.cli.predict`); --help lists its options.
"""
from detection.cli.predict import main

if __name__ == "__main__":
    main()
