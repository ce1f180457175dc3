#!/usr/bin/env python
"""Train a Faster R-CNN / Mask R-CNN on a registry backbone.

The program is detection.cli.train_det (also `python -m detection.cli.train_det`); --help lists its options.
"""
from detection.cli.train_det import main

if __name__ == "__main__":
    main()
