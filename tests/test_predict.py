"""Predictor and tools/predict.py: the same numbers as the dataset evaluation path, every input kind, the files
written, unreadable files skipped, and predictions -> pseudo-labels -> check_dataset -> training."""
import csv
import importlib
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from pycocotools import mask as mask_utils

from backbones.errors import UserError
from detection.detector import build_detector
from detection.engine.checkpoint import save_checkpoint
from detection.engine.inference import predict
from detection.predict import Predictor

DATA = Path(__file__).parent / "data"
# real photographs (COCO val2017, see tests/data/README.md), small copies: fast on CPU
PHOTOS = [DATA / n for n in ("coco_000000128372_320x214.jpg", "coco_000000343934_160x120.jpg",
                             "coco_000000343934_320x240.jpg")]
CLASSES = ["circle", "square", "triangle", "star", "hexagon"]
SMALL = dict(backbone="resnet18", num_classes=5, min_size=128, max_size=160, rpn_pre_nms_top_n_test=100,
             rpn_post_nms_top_n_test=50, box_representation_size=64, mask_head_layers=(32,), box_detections_per_img=20)


def _checkpoint(path, mask=True, seed=0):
    torch.manual_seed(seed)
    model = build_detector(mask=mask, **SMALL).eval()
    save_checkpoint(path, model, CLASSES, [1, 2, 3, 4, 5], 0, train_config={"data": {"train": "shapes"}})
    return path


@pytest.fixture(scope="module")
def mask_checkpoint(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("ckpt") / "model_final.pth")


@pytest.fixture(scope="module")
def box_checkpoint(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("ckpt") / "model_final.pth", mask=False)


def _tool(name, *args, monkeypatch=None):
    importlib.import_module(f"detection.cli.{name}").main([str(a) for a in args])


def test_predictor_gives_the_dataset_evaluation_paths_numbers(small_shapes, mask_checkpoint):
    from detection.run.data import evaluation_dataset
    dataset = evaluation_dataset("shapes_val", CLASSES, "test")
    predictor = Predictor(mask_checkpoint, device="cpu", batch_size=4)
    reference = predict(predictor.model, dataset, progress=False)
    files = [dataset.record(i).file_name for i in dataset.image_ids]
    results = list(predictor.predict(files))
    assert [r["file_name"] for r in results] == [Path(f).name for f in files]
    assert sum(len(r["boxes"]) for r in results) > 20  # random weights, but detections to compare
    for image_id, result in zip(dataset.image_ids, results):
        expected = reference[image_id]
        np.testing.assert_allclose(result["boxes"], expected["boxes"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(result["scores"], expected["scores"], atol=1e-5, rtol=0)
        assert result["labels"].tolist() == expected["labels"].tolist()
        assert result["rles"] == expected["rles"]
        assert result["class_names"] == [CLASSES[k - 1] for k in expected["labels"]]
        assert (result["height"], result["width"]) == (192, 192)


def test_in_memory_images_in_every_form_give_the_same_detections(mask_checkpoint):
    predictor = Predictor(mask_checkpoint, device="cpu", masks="bitmap")
    path = PHOTOS[0]
    bgr = cv2.imread(str(path))
    rgb = bgr[:, :, ::-1].copy()
    from_file = next(predictor.predict(path))
    forms = [predictor(bgr, color="bgr"), predictor(rgb, color="rgb"), predictor(Image.open(path)),
             predictor(torch.from_numpy(rgb).permute(2, 0, 1)),
             predictor(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)]
    assert len(from_file["boxes"])
    for result in forms:
        np.testing.assert_allclose(result["boxes"], from_file["boxes"], atol=1e-4)
        assert result["labels"].tolist() == from_file["labels"].tolist()
        assert result["masks"].shape == (len(from_file["boxes"]), *rgb.shape[:2]) and result["masks"].dtype == bool
    # bitmaps are the RLEs decoded
    rle_result = Predictor(mask_checkpoint, device="cpu")(rgb, color="rgb")
    decoded = mask_utils.decode(rle_result["rles"]).transpose(2, 0, 1).astype(bool)
    assert np.array_equal(decoded, forms[1]["masks"])
    # the BGR array read as RGB is another image: the channel order matters, so it must be stated
    assert not np.allclose(predictor(bgr, color="rgb")["scores"][:5], from_file["scores"][:5])
    with pytest.raises(UserError, match="color='bgr'"):
        predictor(bgr)
    batch = predictor.predict_images([bgr, rgb[:100]], color="bgr")
    assert len(batch) == 2 and batch[1]["height"] == 100


def test_options_threshold_classes_and_maximum(mask_checkpoint):
    image = cv2.imread(str(PHOTOS[0]))
    every = Predictor(mask_checkpoint, device="cpu", score_threshold=0.0, max_detections=50)(image, color="bgr")
    assert len(every["boxes"]) == 50  # more than the model's own 20: set inside the RoI heads, not filtered after
    high = Predictor(mask_checkpoint, device="cpu", score_threshold=0.2)(image, color="bgr")
    assert len(high["scores"]) and (high["scores"] >= 0.2).all()
    kept = every["scores"] >= 0.2
    np.testing.assert_allclose(high["boxes"], every["boxes"][kept][:20], atol=1e-5)
    squares = Predictor(mask_checkpoint, device="cpu", score_threshold=0.0, classes=["square"])(image, color="bgr")
    assert set(squares["class_names"]) == {"square"} and len(squares["rles"]) == len(squares["boxes"])
    with pytest.raises(UserError, match="unknown class 'cat'"):
        Predictor(mask_checkpoint, device="cpu", classes=["cat"])
    with pytest.raises(UserError, match=r"score_threshold must be a score in \[0, 1\], got 1.5"):
        Predictor(mask_checkpoint, device="cpu", score_threshold=1.5)
    bf16 = Predictor(mask_checkpoint, device="cpu", precision="bf16")(image, color="bgr")
    assert bf16["boxes"].dtype == np.float32 and len(bf16["boxes"])


def _video(path, images, fps=5):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, images[0].shape[1::-1])
    for image in images:
        writer.write(image)
    writer.release()
    return path


def test_predict_tool_on_a_folder_and_a_video_writes_every_output(mask_checkpoint, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in PHOTOS:
        shutil.copy(path, photos / path.name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (photos / "notes.txt").write_text("not an image, and not looked at")
    names = sorted(p.name for p in PHOTOS)
    frames = [cv2.resize(cv2.imread(str(p)), (160, 120)) for p in PHOTOS]
    video = _video(tmp_path / "clip.mp4", frames)
    run = tmp_path / "run"  # a training run's folder: what is written in it is listed in its manifest
    run.mkdir()
    (run / "run_files.txt").write_text("config.yaml\n")
    out = run / "predicted"
    _tool("predict", mask_checkpoint, photos, video, "--output", out, "--csv", "--draw", "--draw-threshold", 0.1)
    captured = capsys.readouterr()
    assert "warning: skipped broken.jpg: image" in captured.err and "broken.jpg is truncated" in captured.err
    assert f"predicted {len(names) + 3} images" in captured.out and "skipped 1 unreadable file: broken.jpg" in \
        captured.out
    images = json.loads((out / "images.json").read_text())
    assert [i["file_name"] for i in images["images"]] == names + ["clip.mp4#0", "clip.mp4#1", "clip.mp4#2"]
    assert [i.get("frame") for i in images["images"][-3:]] == [0, 1, 2]
    assert images["categories"] == [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]
    results = json.loads((out / "predictions.json").read_text())
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(lines) == len(images["images"]) and sum(len(line["detections"]) for line in lines) == len(results)
    assert len(rows) == len(results) and results
    first = lines[0]["detections"][0]
    x1, y1, x2, y2 = first["box"]
    match = results[0]
    assert match["file_name"] == names[0] and match["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=2e-3)
    assert match["category_id"] == first["label"] and "segmentation" in match
    # pycocotools reads the results against the images list
    from pycocotools.coco import COCO
    gt = COCO()
    gt.dataset = {**images, "annotations": []}
    gt.createIndex()
    assert len(gt.loadRes(results).anns) == len(results)
    drawn = sorted(p.relative_to(out / "drawn").as_posix() for p in (out / "drawn").rglob("*"))
    assert drawn == sorted([Path(n).with_suffix(".jpg").as_posix() for n in names] + ["clip.mp4"])
    capture = cv2.VideoCapture(str(out / "drawn" / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and capture.read()[1].shape == (120, 160, 3)
    assert not list(out.rglob("*.tmp*"))
    from detection.engine.run_folder import written_files
    listed = set(written_files(run))
    assert {f"predicted/{n}" for n in ("predictions.json", "images.json", "predictions.jsonl", "predictions.csv",
                                       "drawn/clip.mp4")} <= listed
    assert sorted(p.relative_to(run).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(listed - {"config.yaml"})


def test_pseudo_labels_round_trip_through_check_dataset_and_training(small_shapes, mask_checkpoint, tmp_path,
                                                                     monkeypatch, capsys):
    images = sorted((small_shapes / "shapes" / "JPEGImages").glob("*.jpg"))[:6]
    out = tmp_path / "out"
    for fmt in ("coco", "voc"):
        _tool("predict", mask_checkpoint, *images, "--output", out / fmt, "--pseudo-labels", fmt,
              "--pseudo-threshold", 0.1, "--max-detections", 4)
        dataset = out / fmt / "pseudo_labels" / "dataset.yaml"
        assert f"pseudo-labels: {dataset}" in capsys.readouterr().out
        _tool("check_dataset", dataset)  # exits 1 on any problem
        assert "6 images" in capsys.readouterr().out
    predictions = json.loads((out / "coco" / "predictions.json").read_text())
    labels = json.loads((out / "coco" / "pseudo_labels" / "annotations.json").read_text())
    kept = [r for r in predictions if r["score"] >= 0.1]
    assert len(labels["annotations"]) == len(kept) > 0
    assert all(len(a["segmentation"][0]) >= 6 for a in labels["annotations"])
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {min_size: 96, max_size: 128, rpn_post_nms_top_n_test: 30, box_representation_size: 32,"
                      " mask_head_layers: [16]}\nsolver: {ims_per_batch: 2, base_lr: 0.001, warmup_iters: 1}\n"
                      "data: {num_workers: 0}\n")
    monkeypatch.setattr(sys, "argv", ["tools/train_det.py"])
    _tool("train_det", "--backbone", "resnet18", "--dataset", out / "coco" / "pseudo_labels" / "dataset.yaml",
          "--config", config, "--max-iter", 2, "--mask", "--pretrained", "none", "--output", tmp_path / "run")
    assert (tmp_path / "run" / "model_final.pth").is_file()
    voc = yaml.safe_load((out / "voc" / "pseudo_labels" / "dataset.yaml").read_text())
    assert voc == {"format": "voc", "root": ".", "split": "pseudo", "classes": CLASSES, "image_ext": ".jpg"}
    from detection.data.catalog import load_dataset_file
    coco_data = load_dataset_file(out / "coco" / "pseudo_labels" / "dataset.yaml")
    voc_data = load_dataset_file(out / "voc" / "pseudo_labels" / "dataset.yaml")
    for a, b in zip(coco_data.records, voc_data.records):  # the same objects, VOC rounding to whole pixels
        assert a.labels.tolist() == b.labels.tolist()
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.51)


def test_predict_tools_results_are_scored_against_a_dataset_by_file_name(small_shapes, box_checkpoint, tmp_path,
                                                                         capsys):
    from detection.evaluation.results_file import load_results
    from detection.run.data import evaluation_dataset
    dataset = evaluation_dataset("shapes_val", CLASSES, "test")
    out = tmp_path / "out"
    _tool("predict", box_checkpoint, small_shapes / "shapes" / "JPEGImages" / "val_*.jpg", "--output", out)
    loaded = load_results(out / "predictions.json", dataset)  # image_id there is predict's own index
    reference = predict(Predictor(box_checkpoint, device="cpu").model, dataset, progress=False)
    assert set(loaded) == set(reference) == set(dataset.image_ids)
    for image_id, expected in reference.items():
        np.testing.assert_allclose(loaded[image_id]["boxes"], expected["boxes"], atol=2e-3, rtol=0)
        np.testing.assert_allclose(loaded[image_id]["scores"], expected["scores"], atol=1e-5, rtol=0)
        assert loaded[image_id]["labels"].tolist() == expected["labels"].tolist()
    _tool("eval_coco", "--predictions", out / "predictions.json", "--dataset", "shapes_val")
    assert "bbox" in capsys.readouterr().out
    results = json.loads((out / "predictions.json").read_text())
    (out / "same.json").write_text(json.dumps([{**r, "image_id": 1} for r in results]))  # ids another dataset's
    again = load_results(out / "same.json", dataset)
    assert all(np.array_equal(again[i]["boxes"], loaded[i]["boxes"]) for i in dataset.image_ids)
    results[0]["file_name"] = "elsewhere/val_00000.jpg"
    (out / "other.json").write_text(json.dumps(results))
    with pytest.raises(UserError, match="file_name 'elsewhere/val_00000.jpg' names no image of shapes_val"):
        load_results(out / "other.json", dataset)


def test_test_time_augmentation_in_the_predictor_and_the_tool(box_checkpoint, tmp_path, capsys):
    from detection.tta import TestTimeAugmentation, TTAConfig
    image = cv2.imread(str(PHOTOS[1]))
    settings = {"scales": [112, 128], "flip": True, "merge": "vote"}
    predictor = Predictor(box_checkpoint, device="cpu", tta=settings)
    result = predictor(image, color="bgr")
    tensor = torch.from_numpy(image[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        direct = TestTimeAugmentation(predictor.model, TTAConfig.from_dict(settings))([tensor])[0]
    np.testing.assert_allclose(result["boxes"], direct["boxes"].numpy(), atol=1e-5)
    plain = Predictor(box_checkpoint, device="cpu")(image, color="bgr")
    assert len(result["boxes"]) and not np.array_equal(result["scores"], plain["scores"])
    predictor.set_tta(None)
    np.testing.assert_allclose(predictor(image, color="bgr")["boxes"], plain["boxes"], atol=1e-6)
    _tool("predict", box_checkpoint, PHOTOS[1], "--output", tmp_path / "out", "--tta-scales", 112, 128)
    assert "test-time augmentation: shorter side 112, 128 x (as is, flipped), merged per class by box voting" in \
        capsys.readouterr().out
    saved = json.loads((tmp_path / "out" / "predictions.jsonl").read_text())
    np.testing.assert_allclose([d["box"] for d in saved["detections"]], result["boxes"], atol=2e-3)
