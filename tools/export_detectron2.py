#!/usr/bin/env python
"""Export a registry backbone's weights as a detectron2 checkpoint, for MODEL.WEIGHTS.

The program is detectron2_plugin.export (also `python -m detectron2_plugin.export`); --help lists its options.
"""
from detectron2_plugin.export import main

if __name__ == "__main__":
    main()
