"""--init: a trained detector as the starting point, its class layers fitted to a new class list."""
import dataclasses
import importlib
import json
import sys
from pathlib import Path

import cv2
import pytest
import torch
import yaml

from backbones.errors import UserError
from detection import build_detector
from detection.convert_detectron2 import COCO_CLASSES
from detection.engine.checkpoint import save_checkpoint
from detection.init.architecture import with_source_architecture
from detection.init.sources import resolve_init
from detection.init.surgery import canonical, match_classes, transplant

PHOTO = Path(__file__).resolve().parent / "data" / "coco_000000343934_160x120.jpg"
SHAPES = ("circle", "square", "triangle", "star", "hexagon")


def test_voc_names_find_their_coco_classes_case_insensitively():
    voc = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
           "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
    matched = match_classes(voc, COCO_CLASSES)
    assert all(m is not None for m in matched), [v for v, m in zip(voc, matched) if m is None]
    assert [COCO_CLASSES[m - 1] for m in matched][:3] == ["airplane", "bicycle", "bird"]
    assert COCO_CLASSES[matched[voc.index("tvmonitor")] - 1] == "tv"
    assert match_classes(["Person", "traffic_light", "Dog"], COCO_CLASSES) == [1, 10, 17]
    assert match_classes(["person", "unicorn"], COCO_CLASSES) == [1, None]
    assert match_classes(["person"], COCO_CLASSES, "reinit") == [None]
    assert match_classes(["N/A"], ("person", "N/A")) == [None]  # torchvision's placeholders match nothing
    assert canonical("Potted_Plant") == "potted plant"


def test_a_class_list_naming_a_class_twice_is_refused():
    message = "the dataset: 'tvmonitor' and 'TV' are one class twice \\(both match 'tv'\\)"
    with pytest.raises(UserError, match=message):
        match_classes(["tvmonitor", "person", "TV"], COCO_CLASSES)


def _source_checkpoint(path, neck="fpn", mask=True):
    """A trained-looking detector of ours on the five shapes classes (random weights, seeded)."""
    torch.manual_seed(0)
    model = build_detector(backbone="resnet18", neck=neck, mask=mask, num_classes=len(SHAPES), min_size=160,
                           max_size=160, fpn_channels=32, box_representation_size=64, box_score_thresh=0.0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "predictor" in name:
                p.normal_(0, 0.5)  # every class row distinct, so a wrong row shows
    save_checkpoint(path, model, SHAPES, range(1, 6), iteration=7)
    return model


def _class_outputs(model, image):
    """Class logits, box deltas and mask logits of the same proposals (every layer before them is the same)."""
    model.eval()
    with torch.no_grad():
        images, _ = model.transform([image])
        features = model.backbone(images.tensors)
        proposals, _ = model.rpn(images, features)
        heads = model.roi_heads
        boxes = [proposals[0][:20]]
        x = heads.box_head(heads.box_roi_pool(features, boxes, images.image_sizes))
        logits, deltas = heads.box_predictor(x)
        masks = heads.mask_predictor(heads.mask_head(heads.mask_roi_pool(features, boxes, images.image_sizes)))
    return logits, deltas.reshape(len(deltas), -1, 4), masks


@pytest.mark.parametrize("neck", ["fpn", "c4"])
def test_right_after_init_the_kept_classes_give_the_sources_outputs(tmp_path, neck):
    source_model = _source_checkpoint(tmp_path / "source.pth", neck)
    source = resolve_init(tmp_path / "source.pth")
    assert source.class_names == SHAPES and source.config.neck == neck
    classes = ("Square", "dog", "circle")
    config, notes = with_source_architecture(dataclasses.replace(source.config, num_classes=3, backbone="resnet50"),
                                             source, explicit={"backbone"})
    assert config.backbone == "resnet18" and "model.backbone 'resnet50' -> 'resnet18'" in notes[1]
    torch.manual_seed(1)
    model = build_detector(dataclasses.replace(config, num_classes=3), load_pretrained=False)
    report = transplant(model, source.state_dict, source.class_names, classes)
    assert report.classes == [("Square", "square"), ("dog", None), ("circle", "circle")]
    assert sorted(report.partial) == sorted(f"roi_heads.{n}.{p}" for n in (
        "box_predictor.cls_score", "box_predictor.bbox_pred", "mask_predictor.mask_fcn_logits")
        for p in ("weight", "bias"))
    assert report.reinitialised == [] and report.unused == []

    image = torch.from_numpy(cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)).permute(2, 0, 1) / 255
    ours, theirs = _class_outputs(model, image), _class_outputs(source_model, image)
    kept, same = [0, 1, 3], [0, 2, 1]  # background, Square <- square, circle <- circle
    for a, b in zip(ours, theirs):
        assert torch.equal(a[:, kept], b[:, same])
    assert not torch.allclose(ours[0][:, 2], theirs[0][:, 3])  # dog starts fresh, not from any shape


def test_reinit_ignores_name_matches(tmp_path):
    _source_checkpoint(tmp_path / "source.pth", mask=False)
    source = resolve_init(tmp_path / "source.pth")
    model = build_detector(dataclasses.replace(source.config, num_classes=2), load_pretrained=False)
    fresh = model.roi_heads.box_predictor.cls_score.weight.detach().clone()
    report = transplant(model, source.state_dict, source.class_names, ("circle", "square"), "reinit")
    assert report.classes == [("circle", None), ("square", None)]
    assert torch.equal(model.roi_heads.box_predictor.cls_score.weight[1:], fresh[1:])
    assert torch.equal(model.roi_heads.box_predictor.cls_score.weight[0],
                       source.state_dict["roi_heads.box_predictor.cls_score.weight"][0])


def _tool(name, *args, monkeypatch):
    argv = [str(a) for a in args]
    monkeypatch.setattr(sys, "argv", [f"tools/{name}.py", *argv])
    importlib.import_module(f"detection.cli.{name}").main(argv)


@pytest.mark.slow
def test_fine_tune_from_an_init_on_data_whose_classes_overlap_the_sources(small_shapes, tmp_path, monkeypatch,
                                                                           capsys):
    _source_checkpoint(tmp_path / "source.pth")
    # the user's data: shapes with its own names, two of which the source knows
    gt = json.loads((small_shapes / "shapes" / "instances_train.json").read_text())
    names = {"circle": "Circle", "square": "box", "triangle": "TRIANGLE", "star": "comet", "hexagon": "nut"}
    for c in gt["categories"]:
        c["name"] = names[c["name"]]
    (tmp_path / "mine.json").write_text(json.dumps(gt))
    data = tmp_path / "mine.yaml"
    data.write_text(f"format: coco\nimages: {small_shapes}/shapes/JPEGImages\nannotations: mine.json\n")
    out = tmp_path / "run"
    _tool("train_det", "--init", tmp_path / "source.pth", "--dataset", data, "--max-iter", 2, "--output", out,
          "solver.ims_per_batch=2", "solver.base_lr=0.001", "solver.warmup_iters=1", "model.min_size=128",
          "model.max_size=128", "data.num_workers=0", "solver.eval_period=0", monkeypatch=monkeypatch)
    printed = capsys.readouterr().out
    assert "architecture and input normalisation from checkpoint" in printed
    report = (out / "init_report.txt").read_text()
    assert "classes from the source (2): Circle <- circle, TRIANGLE <- triangle" in report
    assert "classes starting fresh (3): box, comet, nut" in report
    saved = yaml.safe_load((out / "config.yaml").read_text())["model"]
    assert saved["init"] == str(tmp_path / "source.pth") and saved["backbone"] == "resnet18"
    assert saved["fpn_channels"] == 32 and saved["min_size"] == 128  # the source's head, the user's sizes
    assert torch.load(out / "model_final.pth", weights_only=True)["class_names"] == \
        ["Circle", "box", "TRIANGLE", "comet", "nut"]
    _tool("train_det", "--output", out, "--resume", "solver.max_iter=3", monkeypatch=monkeypatch)
    assert "architecture and input normalisation" not in capsys.readouterr().out  # weights from the checkpoint


def test_a_file_that_is_not_a_detector_is_described(tmp_path):
    import backbones
    from pretraining.trainer import save_backbone
    save_backbone(backbones.build("resnet18", num_classes=3), tmp_path / "classifier.pth")
    net = backbones.build("resnet18")
    torch.save({k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}, tmp_path / "backbone.pth")
    with pytest.raises(UserError, match="an image classifier .*pass it as --pretrained"):
        resolve_init(tmp_path / "classifier.pth")
    with pytest.raises(UserError, match="backbone weights only; pass them as --pretrained"):
        resolve_init(tmp_path / "backbone.pth")


def test_a_mask_source_on_data_without_masks_trains_boxes_only(tmp_path):
    _source_checkpoint(tmp_path / "source.pth", mask=True)
    source = resolve_init(tmp_path / "source.pth")
    config, notes = with_source_architecture(dataclasses.replace(source.config, mask=False), source,
                                             data_has_masks=False)
    assert not config.mask and "boxes only (the data has no instance masks)" in notes[1]
    config, _ = with_source_architecture(dataclasses.replace(source.config, mask=False), source)
    assert config.mask  # data with masks: the source's Mask R-CNN
    model = build_detector(dataclasses.replace(config, mask=False, num_classes=2), load_pretrained=False)
    report = transplant(model, source.state_dict, source.class_names, ("circle", "square"))
    assert report.unused and all(n.startswith(("roi_heads.mask_head", "roi_heads.mask_predictor"))
                                 for n in report.unused)
    assert "roi_heads.mask_head.* (" in "\n".join(report.lines("src"))
