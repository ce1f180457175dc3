"""Convert a detectron2 model-zoo R50/R101-FPN Faster/Mask R-CNN checkpoint into our detector checkpoint.

    python tools/convert_detectron2.py model_final_280758.pkl output/r50_fpn_3x.pth [--no-mask]
    python tools/eval_coco.py --checkpoint output/r50_fpn_3x.pth

The weights convert exactly; the model around them is torchvision's, which
differs from detectron2's in the ways listed in detection/convert_detectron2.py
(RoIAlign alignment, anchor rounding, the p6 stride, resizing, mask pasting).
"""
from detection import convert_detectron2
from detection.cli import command

main = command(convert_detectron2.main)

if __name__ == "__main__":
    main()
