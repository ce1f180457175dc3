#!/usr/bin/env python
"""Convert a detectron2 model-zoo R50/R101-FPN Faster/Mask R-CNN checkpoint into our detector checkpoint.

The program is detection.cli.convert_detectron2 (also `python -m detection.cli.convert_detectron2`); --help lists its options.
"""
from detection.cli.convert_detectron2 import main

if __name__ == "__main__":
    main()
