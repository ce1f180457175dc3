#!/usr/bin/env python
"""PASCAL VOC mAP (VOC devkit rules) of a trained detector, saved predictions, or devkit results files.

The program is detection.cli.eval_voc (also `python -m detection.cli.eval_voc`); --help lists its options.
"""
from detection.cli.eval_voc import main

if __name__ == "__main__":
    main()
