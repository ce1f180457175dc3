#!/usr/bin/env bash
# The GPU suite (bench/gpu_suite.py): R50-FPN Faster and Mask R-CNN, ours vs torchvision's builder vs
# detectron2, training and inference in fp32 / AMP fp16 / bf16, channels_last on and off, peak memory; one
# JSON file. Meant to finish in under 8 minutes on one GPU (a 7-minute budget for starting configurations).
#
#   bench/gpu_suite.sh [--output output/gpu_suite.json] [--batch 16] [--budget-s 420]
#   bench/gpu_suite.sh --device cpu --smoke --output /tmp/suite.json     # checks that it runs, anywhere
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
exec "$PYTHON" bench/gpu_suite.py "$@"
