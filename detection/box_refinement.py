"""Iterative box refinement at test time, the paper's Appendix B:

    "In Faster R-CNN, the final output is a regressed box that is different from its proposal box. So for
    inference, we pool a new feature from the regressed box and obtain a new classification score and a new
    regressed box. We combine these 300 new predictions with the original 300 predictions. Non-maximum
    suppression (NMS) is applied on the union set of predicted boxes using an IoU threshold of 0.3, followed
    by box voting."

:class:`BoxRefinementRoIHeads` is torchvision's ``RoIHeads`` with that post-processing: the regressed box of
each proposal's best non-background class is pooled again (the same RoI pooling, head and predictor), both
sets of per-class predictions are pooled, and each class is merged by NMS at ``refine_iou`` then box voting
(:func:`detection.tta.merge_detections`). Training is unchanged; masks (Mask R-CNN) are predicted for the
merged boxes, as for plain ones. ``model.box_refinement: true`` builds it (detection/detector.py).
"""
import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import boxes as box_ops

from .tta import merge_detections

REFINE_IOU = 0.3  # the paper's NMS threshold on the union of original and refined predictions


class BoxRefinementRoIHeads(RoIHeads):
    refine_iou = REFINE_IOU

    def forward(self, features, proposals, image_shapes, targets=None):
        # postprocess_detections needs the features to pool the regressed boxes again
        self._refine_features = features
        try:
            return super().forward(features, proposals, image_shapes, targets)
        finally:
            self._refine_features = None

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        counts = [len(p) for p in proposals]
        boxes = self.box_coder.decode(box_regression, proposals)  # (N, C + 1, 4)
        scores = F.softmax(class_logits, -1)
        # the second pass: each proposal's regressed box for its best object class, pooled and scored again
        best = scores[:, 1:].argmax(1) + 1
        regressed = boxes[torch.arange(len(best), device=best.device), best]
        regressed = [box_ops.clip_boxes_to_image(b, s) for b, s in zip(regressed.split(counts), image_shapes)]
        features = self.box_head(self.box_roi_pool(self._refine_features, regressed, image_shapes))
        logits2, regression2 = self.box_predictor(features)
        boxes2 = self.box_coder.decode(regression2, regressed)
        scores2 = F.softmax(logits2, -1)
        out = ([], [], [])
        for parts in zip(boxes.split(counts), scores.split(counts), boxes2.split(counts), scores2.split(counts),
                         image_shapes):
            for result, value in zip(out, self._merge_image(*parts)):
                result.append(value)
        return out

    def _merge_image(self, boxes, scores, boxes2, scores2, image_shape):
        """The union of both passes' per-class predictions, without background, merged per class."""
        boxes = box_ops.clip_boxes_to_image(torch.cat([boxes, boxes2]), image_shape)[:, 1:].reshape(-1, 4)
        scores = torch.cat([scores, scores2])[:, 1:]
        labels = torch.arange(1, scores.shape[1] + 1, device=scores.device).expand_as(scores).reshape(-1)
        scores = scores.reshape(-1)
        keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)  # as torchvision's post-processing
        return merge_detections(boxes[keep], scores[keep], labels[keep], "vote", self.refine_iou,
                                score_thresh=self.score_thresh, max_detections=self.detections_per_img)


def enable_box_refinement(detector):
    """Give ``detector``'s RoI heads the paper's test-time box refinement (in place; weights unchanged)."""
    detector.roi_heads.__class__ = BoxRefinementRoIHeads
    return detector
