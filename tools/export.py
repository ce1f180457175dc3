#!/usr/bin/env python
"""Export a trained detector to ONNX or TorchScript and print its measured parity with PyTorch.

The program is detection.cli.export (also `python -m detection.cli.export`); --help lists its options.
"""
from detection.cli.export import main

if __name__ == "__main__":
    main()
