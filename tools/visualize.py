#!/usr/bin/env python
"""Save a PNG of predictions (boxes, masks, class names, scores) on evaluation images.

The program is detection.cli.visualize (also `python -m detection.cli.visualize`); --help lists its options.
"""
from detection.cli.visualize import main

if __name__ == "__main__":
    main()
