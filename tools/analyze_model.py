#!/usr/bin/env python
"""Parameters, GFLOPs, peak memory and latency per image of a whole detector (PyTorch and exported ONNX).

The program is detection.cli.analyze_model (also `python -m detection.cli.analyze_model`); --help lists its options.
"""
from detection.cli.analyze_model import main

if __name__ == "__main__":
    main()
