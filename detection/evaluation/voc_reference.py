"""A straightforward, one-detection-at-a-time implementation of the VOC devkit rules.

This is py-faster-rcnn's ``voc_eval`` logic, loops and all. It exists to check
the vectorised :mod:`detection.evaluation.voc` (tests compare the two to
1e-9) and as the baseline of ``bench/eval_speed.py``; use ``evaluate_voc``
for real work. Inputs are those of ``evaluate_voc``.
"""
import math

import numpy as np


def ref_voc_ap(rec, prec, use_07_metric):
    """py-faster-rcnn's voc_ap, loops and all."""
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def ref_eval_class(dets, gts, label, ovthresh, use_07_metric, inclusive):
    """Devkit rules for one class; returns (ap, npos). Ties: ground_truths order."""
    class_recs, npos = {}, 0
    for image_id, gt in gts.items():
        keep = np.asarray(gt["labels"]) == label
        difficult = np.asarray(gt.get("difficult", np.zeros(len(keep), bool)), bool)[keep]
        class_recs[image_id] = {
            "bbox": np.asarray(gt["boxes"], float).reshape(-1, 4)[keep],
            "difficult": difficult,
            "det": [False] * int(keep.sum()),
        }
        npos += int((~difficult).sum())

    image_ids, confidence, boxes = [], [], []
    for image_id in gts:  # tie order: ground_truths order, then detection order
        if image_id not in dets:
            continue
        d = dets[image_id]
        for box, score, lab in zip(np.asarray(d["boxes"], float).reshape(-1, 4), d["scores"], d["labels"]):
            if lab == label:
                image_ids.append(image_id)
                confidence.append(float(score))
                boxes.append(box)
    order = sorted(range(len(confidence)), key=lambda k: -confidence[k])  # stable

    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for d, k in enumerate(order):
        R, bb = class_recs[image_ids[k]], boxes[k]
        ovmax, BBGT = -np.inf, R["bbox"]
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
            ih = np.maximum(iymax - iymin + 1.0, 0.0)
            inters = iw * ih
            uni = (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0) + (BBGT[:, 2] - BBGT[:, 0] + 1.0) * (
                BBGT[:, 3] - BBGT[:, 1] + 1.0
            ) - inters
            overlaps = inters / uni
            ovmax, jmax = np.max(overlaps), np.argmax(overlaps)
        if (ovmax >= ovthresh) if inclusive else (ovmax > ovthresh):
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = True
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    if npos == 0:
        return float("nan"), 0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return ref_voc_ap(rec, prec, use_07_metric), npos


def ref_evaluate(dets, gts, class_names, ovthresh, metric, inclusive):
    aps = {
        name: ref_eval_class(dets, gts, label, ovthresh, metric == "11point", inclusive)[0]
        for label, name in enumerate(class_names, start=1)
    }
    valid = [ap for ap in aps.values() if not math.isnan(ap)]
    return aps, (float(np.mean(valid)) if valid else float("nan"))
