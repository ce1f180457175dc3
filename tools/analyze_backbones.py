#!/usr/bin/env python
"""Parameters and multiply-adds of every registry backbone beside the paper's figures.

The program is detection.cli.analyze_backbones (also `python -m detection.cli.analyze_backbones`); --help lists its options.
"""
from detection.cli.analyze_backbones import main

if __name__ == "__main__":
    main()
