"""Random weights for detectron2's models in the parity tests: every tensor drawn, so a mix-up shows."""
import torch


def randomise_detectron2(model):
    """Norm scales and variances in [0.2, 0.6], biases and means ~N(0, 0.1), a peaked class distribution
    (detections pass the 0.05 score threshold) and mask logits with shapes, not all on or off."""
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name.endswith(("norm.weight", "running_var")):
                value.uniform_(0.2, 0.6)
            elif name.endswith(("bias", "running_mean")):
                value.normal_(0, 0.1)
        model.roi_heads.box_predictor.cls_score.weight.normal_(0, 0.05)
        if getattr(model.roi_heads, "mask_on", False):
            model.roi_heads.mask_head.predictor.weight.normal_(0, 0.05)
    return model
