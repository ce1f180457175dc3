#!/usr/bin/env python
"""Training and inference speed against detectron2 0.6's GeneralizedRCNN, on work shown to be equal.

Rows: R50-FPN Faster, R50-FPN Mask and R50-C4 Faster R-CNN. detectron2's model
is built from its model-zoo config (CPU or CUDA, FrozenBN, FREEZE_AT 2), given
seeded random weights that make a peaked, non-degenerate output
(tests/detectron2_random.py), and converted to ours with the project's
converter (``detection.convert_detectron2``, ``compat="detectron2"``): both
sides hold the same weights and train the same parameters.

Two settings per row:

- ``equal``: ours configured with detectron2's numbers (RPN pre/post-NMS top-k
  per level/per image, RPN and RoI batch sizes, test-time thresholds) and
  detectron2's box losses set to torchvision's smooth-L1 beta 1/9 (our only
  loss that differs in form; its cost is nil), so each side keeps the same
  proposals, samples the same anchors and RoIs (the same RNG calls in the same
  order, same seed per round) and reports the same losses. Printed per image:
  RPN proposals kept, RoIs into the box head (training: the sampled ones;
  inference: the proposals), RoIs into the mask head; checked equal on every
  timed iteration, and the first-step losses and the detections compared.
- ``default``: each library with its own defaults (detectron2's zoo config as
  is, L1 box losses; ours as the converter builds it: torchvision's top-k
  2000/2000 in training); counts printed, not required equal.

Inputs: ``--batch`` random 8-bit images of ``--size`` (``--c4-size`` for C4,
whose res5 runs per RoI), a few boxes with elliptical masks per image, fed as
each library's data loader feeds it (detectron2: BGR uint8, Instances with
BitMasks; ours: RGB [0, 1], targets marked already resized). Training step:
forward with targets, summed losses, backward, SGD step (detectron2 inside an
EventStorage, as its trainer). Inference: eval() under no_grad(). Models are
interleaved iteration by iteration (alternating which goes first, same seed
per round) and the median reported with the range.

    python bench/peer_speed.py [--rows fpn_faster fpn_mask c4_faster] [--settings equal default]
                               [--size 512] [--c4-size 384] [--batch 2] [--iters 3] [--warmup 1]
                               [--device cpu|cuda] [--roi-batch N] [--c4-roi-batch N] [--c4-proposals-test N]
                               [--profile DIR]
"""
import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import warnings
from pathlib import Path

import torch
from torchvision.ops import box_iou

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))   # train_speed's timing loop
sys.path.insert(0, str(ROOT / "tests"))                      # the parity tests' random detectron2 weights
from train_speed import interleaved, timed  # noqa: E402
from detectron2_random import randomise_detectron2  # noqa: E402

from detection.convert_detectron2 import convert_detectron2_detector  # noqa: E402
from detection.detector import build_detector  # noqa: E402

ZOO = {"fpn_faster": "COCO-Detection/faster_rcnn_R_50_FPN_3x",
       "fpn_mask": "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x",
       "c4_faster": "COCO-Detection/faster_rcnn_R_50_C4_3x"}
BOXES_PER_IMAGE = 4
CLASSES = 80
SMOOTH_L1_BETA = 1.0 / 9  # torchvision's RPN and box-head loss (fixed in its code)
# our loss names -> detectron2's
LOSS_NAMES = {"loss_objectness": "loss_rpn_cls", "loss_rpn_box_reg": "loss_rpn_loc",
              "loss_classifier": "loss_cls", "loss_box_reg": "loss_box_reg", "loss_mask": "loss_mask"}


# --- models -------------------------------------------------------------------------------------

def detectron2_cfg(row, setting, device, roi_batch=None, post_nms_test=None):
    """detectron2's zoo config for ``row``; ``equal``: its box losses made torchvision's (smooth L1, 1/9)."""
    import detectron2
    from detectron2.config import get_cfg
    cfg = get_cfg()
    cfg.merge_from_file(str(Path(detectron2.__file__).parent / "model_zoo/configs" / f"{ZOO[row]}.yaml"))
    cfg.MODEL.DEVICE, cfg.MODEL.WEIGHTS = str(device), ""
    if setting == "equal":
        cfg.MODEL.RPN.SMOOTH_L1_BETA = SMOOTH_L1_BETA
        cfg.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA = SMOOTH_L1_BETA
    if roi_batch:
        cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = roi_batch
    if post_nms_test:
        cfg.MODEL.RPN.POST_NMS_TOPK_TEST = post_nms_test
    return cfg


def our_options(cfg, setting, size, max_size=None):
    """Our DetectorConfig fields: the input size; ``equal``: detectron2's proposal and RoI numbers too."""
    options = dict(min_size=size, max_size=max_size or size)
    if setting == "equal":
        rpn, heads, test = cfg.MODEL.RPN, cfg.MODEL.ROI_HEADS, cfg.MODEL.ROI_HEADS
        options.update(rpn_pre_nms_top_n_train=rpn.PRE_NMS_TOPK_TRAIN, rpn_pre_nms_top_n_test=rpn.PRE_NMS_TOPK_TEST,
                       rpn_post_nms_top_n_train=rpn.POST_NMS_TOPK_TRAIN,
                       rpn_post_nms_top_n_test=rpn.POST_NMS_TOPK_TEST,
                       rpn_batch_size_per_image=rpn.BATCH_SIZE_PER_IMAGE,
                       box_batch_size_per_image=heads.BATCH_SIZE_PER_IMAGE, box_score_thresh=test.SCORE_THRESH_TEST,
                       box_nms_thresh=test.NMS_THRESH_TEST, box_detections_per_img=cfg.TEST.DETECTIONS_PER_IMAGE)
        assert (rpn.NMS_THRESH, rpn.POSITIVE_FRACTION, heads.POSITIVE_FRACTION, heads.IOU_THRESHOLDS) == (
            0.7, 0.5, 0.25, [0.5]), "torchvision's fixed RPN NMS, sampling fractions and RoI IoU threshold"
    return options


def build_pair(row, setting, size, device, roi_batch=None, post_nms_test=None, seed=0, max_size=None):
    """(detectron2's GeneralizedRCNN, ours) with the same weights, both in train mode; ours resizes to
    ``size`` (shorter side) and ``max_size`` (longer side; default ``size``), which inputs of those sizes keep."""
    with warnings.catch_warnings():  # detectron2 0.6 uses torch.jit.script, deprecated in torch 2.x
        warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=FutureWarning)
        from detectron2.modeling import build_model
    cfg = detectron2_cfg(row, setting, device, roi_batch, post_nms_test)
    torch.manual_seed(seed)
    d2 = randomise_detectron2(build_model(cfg).eval())
    config, state = convert_detectron2_detector({k: v.cpu() for k, v in d2.state_dict().items()})
    ours = build_detector(dataclasses.replace(config, **our_options(cfg, setting, size, max_size)))
    ours.load_state_dict(state)  # strict: every tensor converted
    ours.to(device)
    trainable = [sum(p.numel() for p in m.parameters() if p.requires_grad) for m in (d2, ours)]
    # ours has background rows detectron2 lacks (zero, never read: no gradient reaches them)
    box = ours.roi_heads.box_predictor.bbox_pred
    background = 4 * (box.in_features + 1)
    if ours.roi_heads.has_mask():
        background += ours.roi_heads.mask_predictor.mask_fcn_logits.in_channels + 1
    assert trainable[0] + background == trainable[1], (
        f"trainable parameters: detectron2 {trainable[0]}, ours {trainable[1]} ({background} for the background)")
    return d2.train(), ours.train(), cfg


# --- inputs -------------------------------------------------------------------------------------

def synthetic_batch(batch, size, device, seed=0, shapes=None):
    """8-bit images (so reading them as 8-bit, as compat mode does, changes nothing), boxes, ellipse masks.
    Images are ``size`` x ``size``, or of the (height, width) ``shapes`` in turn."""
    g = torch.Generator().manual_seed(seed)
    images, boxes, labels, masks = [], [], [], []
    shapes = shapes or [(size, size)]
    for i in range(batch):
        h, w = shapes[i % len(shapes)]
        ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        extent = torch.tensor([w, h], dtype=torch.float32)
        images.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        xy = torch.rand(BOXES_PER_IMAGE, 2, generator=g) * extent * 0.6
        wh = extent * (0.1 + 0.3 * torch.rand(BOXES_PER_IMAGE, 2, generator=g))
        b = torch.cat([xy, torch.minimum(xy + wh, extent)], dim=1)
        centre, half = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]) / 2
        m = (((xs - centre[:, 0, None, None]) / half[:, 0, None, None]) ** 2
             + ((ys - centre[:, 1, None, None]) / half[:, 1, None, None]) ** 2) <= 1
        boxes.append(b)
        labels.append(torch.randint(1, CLASSES + 1, (BOXES_PER_IMAGE,), generator=g))  # ours: 0 is background
        masks.append(m)
    ours_in = [(im.float() / 255).to(device) for im in images]
    ours_targets = [{"boxes": b.to(device), "labels": lab.to(device), "masks": m.to(torch.uint8).to(device),
                     "resized": True} for b, lab, m in zip(boxes, labels, masks)]
    from detectron2.structures import BitMasks, Boxes, Instances
    d2_train, d2_test = [], []
    for im, b, lab, m in zip(images, boxes, labels, masks):
        bgr = im.flip(0).contiguous()
        h, w = im.shape[1:]
        inst = Instances((h, w), gt_boxes=Boxes(b), gt_classes=lab - 1, gt_masks=BitMasks(m))
        d2_train.append({"image": bgr.to(device), "instances": inst.to(device), "height": h, "width": w})
        d2_test.append({"image": bgr.to(device), "height": h, "width": w})
    return ours_in, ours_targets, d2_train, d2_test


# --- counting the work --------------------------------------------------------------------------

class WorkCounter:
    """Per image: RPN proposals kept, RoIs into the box head, RoIs into the mask head (forward hooks)."""

    KEYS = ("proposals", "box_rois", "mask_rois")

    def __init__(self):
        self.records = []

    def start(self):
        self.records.append({k: [] for k in self.KEYS})

    def hook(self, key, from_output=False, arg=1):
        def record(module, args, output=None):
            boxes = output[0] if from_output else args[arg]
            if self.records:
                self.records[-1][key].append([len(b) for b in boxes])
        return record

    def attach_ours(self, model):
        model.rpn.register_forward_hook(self.hook("proposals", from_output=True))
        model.roi_heads.box_roi_pool.register_forward_pre_hook(self.hook("box_rois"))
        if model.roi_heads.has_mask():
            model.roi_heads.mask_roi_pool.register_forward_pre_hook(self.hook("mask_rois"))

    def attach_detectron2(self, model):
        model.proposal_generator.register_forward_hook(self.hook("proposals", from_output=True))
        heads = model.roi_heads
        box_pooler = getattr(heads, "box_pooler", None) or heads.pooler  # C4: Res5ROIHeads.pooler
        box_pooler.register_forward_pre_hook(self.hook("box_rois"))
        mask_pooler = getattr(heads, "mask_pooler", None)
        if mask_pooler is not None:
            mask_pooler.register_forward_pre_hook(self.hook("mask_rois"))

    def summary(self, record):
        """{key: per-image counts} of one step (calls within a step summed per image)."""
        return {k: [sum(c) for c in zip(*v)] if v else [] for k, v in record.items()}


# --- steps --------------------------------------------------------------------------------------

def train_step(model, optimizer, inputs, counter, storage=None):
    counter.start()
    with storage or contextlib.nullcontext():
        losses = model(*inputs)
    loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {k: v.item() for k, v in losses.items()}


@torch.no_grad()
def infer_step(model, inputs, counter):
    counter.start()
    return model(*inputs)


def detections_matched(d2_out, ours_out):
    """Share of detectron2's detections with a counterpart of ours (class, box IoU >= 0.99, score +-1e-3)."""
    total = matched = 0
    for expected, found in zip(d2_out, ours_out):
        inst = expected["instances"].to("cpu")
        boxes, scores, labels = inst.pred_boxes.tensor, inst.scores, inst.pred_classes + 1
        f = {k: v.cpu() for k, v in found.items()}
        ok = ((box_iou(boxes, f["boxes"]) >= 0.99) & (labels[:, None] == f["labels"][None])
              & ((scores[:, None] - f["scores"][None]).abs() <= 1e-3))
        total += len(boxes)
        matched += int(ok.any(1).sum())
    return matched, total


def check_counts(name, d2_counter, ours_counter, skip):
    """Counts of every step after ``skip`` (warm-up) on both sides; raise when they differ."""
    d2 = [d2_counter.summary(r) for r in d2_counter.records[skip:]]
    ours = [ours_counter.summary(r) for r in ours_counter.records[skip:]]
    if d2 != ours:
        raise AssertionError(f"{name}: unequal work\n  detectron2 {d2}\n  ours       {ours}")
    return ours[0]


def run_row(row, setting, args, device):
    size = args.c4_size if row.startswith("c4") else args.size
    roi_batch = args.c4_roi_batch if row.startswith("c4") else args.roi_batch
    post_nms_test = args.c4_proposals_test if row.startswith("c4") else args.proposals_test
    d2, ours, cfg = build_pair(row, setting, size, device, roi_batch, post_nms_test)
    # inference runs on the weights both started with: training steps move the two sides' weights by slightly
    # different gradients (float rounding), enough to change which detections pass the score threshold
    start = {name: {k: v.clone() for k, v in m.state_dict().items()}
             for name, m in (("detectron2", d2), ("ours", ours))}
    ours_in, ours_targets, d2_train, d2_test = synthetic_batch(args.batch, size, device)
    counters = {"detectron2": WorkCounter(), "ours": WorkCounter()}
    counters["detectron2"].attach_detectron2(d2)
    counters["ours"].attach_ours(ours)
    from detectron2.utils.events import EventStorage
    storage = EventStorage()
    opt = {name: torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=args.lr, momentum=0.9)
           for name, m in (("detectron2", d2), ("ours", ours))}
    steps = {"detectron2": lambda: train_step(d2, opt["detectron2"], (d2_train,), counters["detectron2"], storage),
             "ours": lambda: train_step(ours, opt["ours"], (ours_in, ours_targets), counters["ours"])}
    train, losses = interleaved(steps, device, args.warmup, args.iters)
    # the first step only: after it the weights have moved by each side's gradients (equal in ``equal``)
    first = {"detectron2": losses["detectron2"][0], "ours": losses["ours"][0]}
    train_counts = {n: c.summary(c.records[0]) for n, c in counters.items()}
    if setting == "equal":
        check_counts(f"{row} training", counters["detectron2"], counters["ours"], 0)
    for c in counters.values():
        c.records.clear()

    d2.load_state_dict(start["detectron2"]), ours.load_state_dict(start["ours"])
    d2.eval(), ours.eval()
    steps = {"detectron2": lambda: infer_step(d2, (d2_test,), counters["detectron2"]),
             "ours": lambda: infer_step(ours, (ours_in,), counters["ours"])}
    infer, outputs = interleaved(steps, device, args.warmup, args.iters)
    infer_counts = {n: c.summary(c.records[0]) for n, c in counters.items()}
    if setting == "equal":
        check_counts(f"{row} inference", counters["detectron2"], counters["ours"], 0)
    matched = detections_matched(outputs["detectron2"][0], outputs["ours"][0])
    if args.profile:
        profile_row(row, setting, args, steps_for_profile(d2, ours, opt, d2_train, d2_test, ours_in, ours_targets,
                                                            counters, storage), device)
    return dict(size=size, train=train, infer=infer, first=first, train_counts=train_counts,
                infer_counts=infer_counts, matched=matched)


def steps_for_profile(d2, ours, opt, d2_train, d2_test, ours_in, ours_targets, counters, storage):
    def train(name):
        d2.train(), ours.train()
        if name == "detectron2":
            return train_step(d2, opt[name], (d2_train,), counters[name], storage)
        return train_step(ours, opt[name], (ours_in, ours_targets), counters[name])

    def infer(name):
        d2.eval(), ours.eval()
        return infer_step(d2, (d2_test,), counters[name]) if name == "detectron2" else infer_step(
            ours, (ours_in,), counters[name])
    return {"train": train, "infer": infer}


def profile_row(row, setting, args, steps, device):
    """torch.profiler key_averages of one step per side and mode, written to --profile DIR."""
    from torch.profiler import ProfilerActivity, profile
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for mode in ("train", "infer"):
        for name in ("detectron2", "ours"):
            torch.manual_seed(0)
            with profile(activities=activities) as prof:
                steps[mode](name)
            table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile_rows)
            (out / f"{row}_{setting}_{mode}_{name}.txt").write_text(table)
            print(f"profile {row} {setting} {mode} {name} -> {out / f'{row}_{setting}_{mode}_{name}.txt'}")


# --- report -------------------------------------------------------------------------------------

def fmt_counts(counts):
    return " ".join(f"{k.replace('_rois', '')}={'/'.join(map(str, v))}" for k, v in counts.items() if v)


def report(row, setting, result, batch):
    out = []
    for mode in ("train", "infer"):
        runs = result[mode]
        speed = {n: batch / statistics.median(s) for n, s in runs.items()}
        ratio = speed["ours"] / speed["detectron2"]
        per_round = sorted(d / o for d, o in zip(runs["detectron2"], runs["ours"]))  # same-round ratios
        counts = result[f"{mode}_counts"]
        out.append(f"{row:<10} {setting:<7} {mode:<5} {speed['ours']:7.3f} {speed['detectron2']:7.3f} "
                   f"{ratio:6.3f}  {per_round[0]:.3f}-{per_round[-1]:.3f}   "
                   f"ours[{fmt_counts(counts['ours'])}] d2[{fmt_counts(counts['detectron2'])}]")
    return out, result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", default=list(ZOO), choices=list(ZOO))
    p.add_argument("--settings", nargs="+", default=["equal", "default"], choices=["equal", "default"])
    p.add_argument("--size", type=int, default=512, help="FPN rows: square input side (min = max size)")
    p.add_argument("--c4-size", type=int, default=384, help="C4 row: square input side")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--roi-batch", type=int, default=None,
                   help="FPN rows: RoIs sampled per training image, both sides (default: the zoo's 512)")
    p.add_argument("--proposals-test", type=int, default=None,
                   help="FPN rows: post-NMS proposals per test image, both sides (default: the zoo's 1000)")
    p.add_argument("--c4-roi-batch", type=int, default=None, help="C4 row: as --roi-batch")
    p.add_argument("--c4-proposals-test", type=int, default=None, help="C4 row: as --proposals-test")
    p.add_argument("--profile", metavar="DIR", help="also write torch.profiler tables of one step per side")
    p.add_argument("--profile-rows", type=int, default=25)
    args = p.parse_args(argv)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    device = torch.device(args.device)
    import detectron2
    print(f"device={args.device} threads={torch.get_num_threads()} batch={args.batch} size={args.size} "
          f"(C4 {args.c4_size}) boxes/image={BOXES_PER_IMAGE} warmup={args.warmup} iters={args.iters} "
          f"torch={torch.__version__} detectron2={detectron2.__version__}")
    lines, results = [], {}
    for row in args.rows:
        for setting in args.settings:
            result = run_row(row, setting, args, device)
            rows, results[(row, setting)] = report(row, setting, result, args.batch)
            lines += rows
            first = result["first"]
            print(f"{row} {setting}: first-step losses " + "  ".join(
                f"{k} {v:.6f}/{first['detectron2'].get(LOSS_NAMES[k], float('nan')):.6f}"
                for k, v in first["ours"].items()) + " (ours/detectron2)")
            print(f"{row} {setting}: detections matched {result['matched'][0]}/{result['matched'][1]}")
            print(lines[-2]), print(lines[-1])
    print(f"\n{'row':<10} {'setting':<7} {'mode':<5} {'ours':>7} {'d2':>7} {'ratio':>6}  {'per-round':<11}   "
          f"counts per image (img/s; ratio = ours/detectron2 of medians, target >= 1.0)")
    print("\n".join(lines))
    return results


if __name__ == "__main__":
    main()
