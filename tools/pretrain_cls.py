#!/usr/bin/env python
"""Pretrain a registry backbone for image classification; the weights load with --pretrained PATH.

The program is detection.cli.pretrain_cls (also `python -m detection.cli.pretrain_cls`); --help lists its options.
"""
from detection.cli.pretrain_cls import main

if __name__ == "__main__":
    main()
