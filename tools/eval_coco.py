#!/usr/bin/env python
"""COCO mAP@[.5,.95] (pycocotools) of a trained detector or of saved predictions, boxes and masks.

The program is detection.cli.eval_coco (also `python -m detection.cli.eval_coco`); --help lists its options.
"""
from detection.cli.eval_coco import main

if __name__ == "__main__":
    main()
