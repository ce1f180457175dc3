#!/usr/bin/env python
"""Train (or evaluate) with detectron2's own DefaultTrainer on a registry backbone.

The program is detectron2_plugin.train (also `python -m detectron2_plugin.train`); --help lists its options.
"""
from detectron2_plugin.train import main

if __name__ == "__main__":
    main()
