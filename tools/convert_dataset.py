#!/usr/bin/env python
"""Convert a dataset to COCO JSON, a PASCAL VOC tree or the Ultralytics YOLO layout, read by the training readers.

The program is detection.cli.convert_dataset (also `python -m detection.cli.convert_dataset`); --help lists its options.
"""
from detection.cli.convert_dataset import main

if __name__ == "__main__":
    main()
