"""Classification pretraining (object crops, ImageFolder with the paper's recipe), and loading its weights."""
import dataclasses
import json
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

import backbones
from backbones.errors import UserError
from detection.cli import pretrain_cls
from detection.config import parse_overrides
from detection.data.catalog import load_dataset
from detection.data.dataset import DetectionDataset
from detection.data.object_crops import ObjectCrops
from detection.run.pretrain import CROPS_CONFIG, PAPER_CONFIG, PretrainRun, load_pretrain_config, pretrain
from pretraining.config import PretrainConfig
from pretraining.data import (IMAGENET_PCA_EIGVAL, IMAGENET_PCA_EIGVEC, ImageFolderSet, PCALighting,
                              ScaleAugmentation, UnreadableImageError, eval_transform, pca_lighting, train_transform)
from pretraining.run import run_paths
from pretraining.trainer import accuracy, evaluate, predict_scores, save_backbone, train_classifier


def run_pretraining(cfg, output, resume=False, overwrite=False, **options):
    """A pretraining run of a loaded config, through the run layer."""
    return pretrain(PretrainRun.from_config(cfg, output, resume, overwrite), **options)


def _crops(split, **kw):
    return ObjectCrops(DetectionDataset(load_dataset(f"shapes_{split}")), **kw)


def test_one_sample_per_object(small_shapes):
    crops = _crops("train", size=64, context=0.0)
    source = crops.source
    assert len(crops) == sum(len(source.annotations(i)["boxes"]) for i in source.image_ids)
    image, label = crops[0]
    assert image.shape == (3, 64, 64) and label == crops.items[0][2] - 1


class _OneImage:
    """A detection source (what ObjectCrops reads) of one image and its boxes."""
    class_names, image_ids = ["thing"], [7]

    def __init__(self, image, boxes):
        self.image, self.boxes = image, np.array(boxes, dtype=np.float32)

    def annotations(self, image_id):
        return {"boxes": self.boxes, "labels": np.ones(len(self.boxes), dtype=np.int64)}

    def read_image(self, image_id):
        return self.image


def _context_square_resized(image, box, context, size):
    """Independent reference: the square of side max(w, h) * (1 + 2 context) centred on the box (continuous
    coordinates: pixel i spans [i, i + 1]), cut from the image with its edges replicated past the border and
    resized by cv2.resize. The cut keeps a margin of m pixels (m * size / side whole) so that near the edges
    cv2.resize interpolates from the image, not from a replicated edge of the cut; the margin is then dropped."""
    import math

    import cv2
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * (1 + 2 * context)
    x0, y0 = (x1 + x2 - side) / 2, (y1 + y2 - side) / 2
    assert side == int(side) and x0 == int(x0) and y0 == int(y0)  # cut in whole pixels
    side, x0, y0 = int(side), int(x0), int(y0)
    m = side // math.gcd(side, size)
    k = m * size // side  # the margin after resizing
    pad = side + m
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    cut = padded[pad + y0 - m:pad + y0 + side + m, pad + x0 - m:pad + x0 + side + m]
    resized = cv2.resize(cut, (size + 2 * k, size + 2 * k), interpolation=cv2.INTER_LINEAR)
    return resized[k:k + size, k:k + size]


def test_a_crop_is_the_context_square_of_its_box_resized():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (200, 210, 3), dtype=np.uint8)  # noise: any misplaced sample shows
    boxes = [[40, 50, 104, 98],    # square of side 96 at (24, 26): shrunk to 64 (scale 2/3)
             [120, 130, 136, 146],  # side 24: enlarged (scale 8/3)
             [0, 150, 48, 198]]     # side 72 at (-12, 138): past the left and bottom edges (replicated)
    crops = ObjectCrops(_OneImage(image, boxes), size=64)
    assert len(crops) == 3 and crops.context == 0.25  # the default margin of context, on every side
    for k, box in enumerate(boxes):
        crop, label = crops[k]
        assert crop.shape == (3, 64, 64) and label == 0
        expected = _context_square_resized(image, box, crops.context, 64)
        # both interpolate bilinearly in fixed point (sample positions here are whole 1/16 px): 1 grey level
        np.testing.assert_allclose(crop.permute(1, 2, 0).numpy() * 255, expected, rtol=0, atol=1.0001, err_msg=box)


def test_training_lowers_the_loss_and_weights_load_into_the_registry(small_shapes, tmp_path):
    torch.manual_seed(0)
    crops = _crops("train", size=32)
    model = backbones.build("resnet18", num_classes=5)
    losses = train_classifier(model, crops, epochs=3, batch_size=8, base_lr=1e-3, optimizer="adamw",
                              progress=False)
    assert losses[-1] < losses[0]
    path = save_backbone(model, tmp_path / "r18.pth")
    loaded = backbones.build("resnet18", pretrained=str(path))  # 1000-way fc: the 5-way one is dropped
    assert torch.equal(loaded.layer4[1].conv2.weight, model.layer4[1].conv2.weight)
    assert torch.equal(loaded.bn1.running_mean, model.bn1.running_mean)
    assert loaded.fc.out_features == 1000


def test_accuracy_counts_correct_predictions():
    class Fixed(torch.nn.Module):  # predicts classes 0, 1, 2, 2 for the four images in order
        def classify(self, x):
            return torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 2])[:len(x)], 3).float()
    data = list(zip(torch.zeros(4, 3, 2, 2), [0, 1, 1, 2]))
    assert accuracy(Fixed(), data) == 0.75


# --- the paper's recipe: config, ImageFolder data, augmentation, 10-crop, resume ------------------------

ROOT = Path(__file__).resolve().parents[1]
COLOURS = [(230, 40, 40), (40, 210, 60), (50, 80, 240)]


def _draw(rng, label):
    """A coloured shape per class (disc, square, triangle) on a dark background, 40-80 px."""
    w, h = (int(v) for v in rng.integers(40, 81, size=2))
    image = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 50, size=3)))
    draw, s = ImageDraw.Draw(image), min(w, h)
    x0, y0 = int(rng.integers(0, w - s // 2 + 1)), int(rng.integers(0, h - s // 2 + 1))
    box = (x0, y0, x0 + s // 2, y0 + s // 2)
    if label == 0:
        draw.ellipse(box, fill=COLOURS[0])
    elif label == 1:
        draw.rectangle(box, fill=COLOURS[1])
    else:
        draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=COLOURS[2])
    return image


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """root/{train,val}/{disc,square,triangle}/*.jpg: 3 classes x 6 images per split."""
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for label, name in enumerate(("disc", "square", "triangle")):
            (root / split / name).mkdir(parents=True)
            for i in range(6):
                _draw(rng, label).save(root / split / name / f"{i}.jpg", quality=95)
    return root


def _tiny(root, **sections):
    """The paper's recipe shrunk to the tiny ImageFolder: 32 px crops of images scaled to [36, 48]."""
    overrides = {"model": {"backbone": "resnet18"},
                 "solver": {"batch_size": 6, "epochs": 2, "base_lr": 0.01},
                 "data": {"dataset": str(root), "num_workers": 0, "crop_size": 32, "scale_min": 36,
                          "scale_max": 48},
                 "eval": {"resize": 36, "batch_size": 9},
                 "runtime": {"device": "cpu"}}
    for section, values in sections.items():
        overrides[section] = {**overrides.get(section, {}), **values}
    return load_pretrain_config(None, overrides)


QUIET = dict(progress=False, log=lambda *a: None)


def test_config_files_are_the_paper_recipe_and_the_demo_recipe():
    paper = load_pretrain_config(PAPER_CONFIG)
    assert paper == PretrainConfig()  # the YAML spells out the dataclass defaults
    s, d = paper.solver, paper.data
    assert (s.optimizer, s.momentum, s.weight_decay, s.batch_size, s.base_lr) == ("sgd", 0.9, 1e-4, 256, 0.1)
    assert (s.schedule, s.gamma, s.epochs) == ("plateau", 0.1, 120)
    assert (d.scale_min, d.scale_max, d.crop_size, d.hflip, d.pca_lighting_std) == (256, 480, 224, True, 0.1)
    assert (paper.eval.resize, paper.eval_crop_size, paper.eval.final) == (256, 224, "10crop")
    crops = load_pretrain_config(CROPS_CONFIG)
    assert (crops.model.backbone, crops.data.dataset, crops.data.crop_size) == ("resnet18", "shapes", 64)
    assert (crops.solver.optimizer, crops.solver.base_lr, crops.solver.batch_size, crops.solver.epochs,
            crops.solver.schedule, crops.solver.warmup_fraction) == ("adamw", 0.001, 32, 8, "cosine", 0.05)
    # the Makefile's demo uses that file
    assert "--config configs/pretrain/shapes_crops.yaml" in (ROOT / "Makefile").read_text()
    # the shapes suite's: the demo recipe, shorter, on smaller crops, validated every epoch (the Fig. 4
    # curves); nothing else differs
    study = load_pretrain_config(ROOT / "configs/reproduce/shapes_study_pretrain.yaml")
    assert (study.solver.epochs, study.data.crop_size, study.eval.period) == (4, 48, 1)
    assert study.model == crops.model
    assert dataclasses.replace(study.solver, epochs=8) == crops.solver
    assert dataclasses.replace(study.data, crop_size=64) == crops.data and study.eval == crops.eval


def test_config_errors_name_the_key_and_the_closest_valid_one(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("solver: {base_lrr: 0.1}\n")
    with pytest.raises(UserError, match="base_lrr.*Did you mean 'base_lr'"):
        load_pretrain_config(bad)
    bad.write_text("sovler: {base_lr: 0.1}\n")
    with pytest.raises(UserError, match="Did you mean 'solver'"):
        load_pretrain_config(bad)
    bad.write_text("solver: {epochs: ten}\n")
    with pytest.raises(UserError, match="epochs must be int"):
        load_pretrain_config(bad)
    with pytest.raises(UserError, match="batch_size must be int"):
        load_pretrain_config(None, parse_overrides(["solver.batch_size=1.5"]))
    with pytest.raises(UserError, match="data.crop_size .* must not exceed data.scale_min"):
        load_pretrain_config(None, {"data": {"crop_size": 300}})
    with pytest.raises(UserError, match="Did you mean 'cosine'"):
        load_pretrain_config(None, {"solver": {"schedule": "cosin"}})
    # _base_ inheritance and overrides on top
    child = tmp_path / "child.yaml"
    child.write_text(f"_base_: {PAPER_CONFIG}\nsolver: {{epochs: 90}}\n")
    cfg = load_pretrain_config(child, parse_overrides(["data.dataset=/data/in1k", "solver.base_lr=0.2"]))
    assert (cfg.solver.epochs, cfg.solver.base_lr, cfg.solver.batch_size, cfg.data.dataset) == (90, 0.2, 256,
                                                                                                "/data/in1k")



@pytest.mark.parametrize("override, message", [
    ("solver.epochs=0", "command line: solver.epochs=0: must be >= 1"),
    ("solver.batch_size=-2", "solver.batch_size=-2: must be >= 1"),
    ("solver.base_lr=0", "solver.base_lr=0: must be > 0"),
    ("solver.momentum=1.5", "solver.momentum=1.5: must be in [0, 1)"),
    ("solver.weight_decay=-1", "solver.weight_decay=-1: must be >= 0"),
    ("solver.gamma=1", "solver.gamma=1: must be in (0, 1)"),
    ("solver.plateau_patience=-1", "solver.plateau_patience=-1: must be >= 0"),
    ("solver.plateau_threshold=-0.1", "solver.plateau_threshold=-0.1: must be >= 0"),
    ("solver.min_lr=-1", "solver.min_lr=-1: must be >= 0"),
    ("solver.steps=[60,30]", "solver.steps=[60, 30]: must be in increasing order"),
    ("solver.steps=[0]", "solver.steps=[0]: each must be >= 1"),
    ("solver.warmup_fraction=1", "solver.warmup_fraction=1: must be in [0, 1)"),
    ("solver.seed=-3", "solver.seed=-3: must be >= 0"),
    ("data.num_workers=-1", "data.num_workers=-1: must be >= 0"),
    ("data.crop_size=0", "data.crop_size=0: must be >= 1"),
    ("data.scale_min=0", "data.scale_min=0: must be >= 1"),
    ("data.pca_lighting_std=-0.1", "data.pca_lighting_std=-0.1: must be >= 0 (0: off)"),
    ("data.context=-1", "data.context=-1: must be >= 0"),
    ("eval.resize=0", "eval.resize=0: must be >= 1"),
    ("eval.crop_size=0", "eval.crop_size=0: must be >= 1"),
    ("eval.period=-1", "eval.period=-1: must be >= 0 (0: only the final evaluation)"),
    ("eval.batch_size=0", "eval.batch_size=0: must be >= 1"),
])
def test_out_of_range_settings_name_the_setting_the_value_and_the_range(override, message):
    with pytest.raises(UserError) as err:
        load_pretrain_config(None, parse_overrides([override]))
    assert message in str(err.value)


def test_every_numeric_pretraining_setting_declares_its_range():
    """A new numeric field needs a range in pretraining.config.RANGES."""
    from pretraining.config import RANGES, SECTIONS

    def numeric(hint):  # int or float, also inside Optional[...] and Sequence[...]
        return hint in (int, float) or any(numeric(arg) for arg in typing.get_args(hint))
    for name, cls in SECTIONS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(RANGES.get(name, {})) <= fields, f"RANGES[{name!r}] names keys {cls.__name__} lacks"
        for key, hint in typing.get_type_hints(cls).items():
            if numeric(hint):
                assert key in RANGES.get(name, {}), f"{name}.{key} has no range in pretraining.config.RANGES"


def test_scale_augmentation_resizes_the_shorter_side_into_the_range_then_crops():
    image = torch.rand(3, 30, 45)
    sides = set()
    for seed in range(40):
        torch.manual_seed(seed)
        out = ScaleAugmentation(40, 48)(image)
        assert 40 <= min(out.shape[1:]) <= 48 and abs(out.shape[2] - 1.5 * out.shape[1]) <= 1  # aspect kept
        sides.add(out.shape[1])
    assert len(sides) > 4  # the side is drawn, not fixed
    torch.manual_seed(3)
    first = train_transform(32, 40, 48, pca_lighting_std=0.1)(Image.new("RGB", (45, 30), (90, 20, 200)))
    torch.manual_seed(3)
    again = train_transform(32, 40, 48, pca_lighting_std=0.1)(Image.new("RGB", (45, 30), (90, 20, 200)))
    assert first.shape == (3, 32, 32) and first.dtype == torch.float32 and torch.equal(first, again)


def test_pca_lighting_matches_a_hand_computed_shift():
    image = torch.rand(3, 5, 4)
    alpha = [0.1, -0.2, 0.05]
    shift = [sum(IMAGENET_PCA_EIGVEC[i][j] * alpha[j] * IMAGENET_PCA_EIGVAL[j] for j in range(3)) for i in range(3)]
    out = pca_lighting(image, torch.tensor(alpha))
    for c in range(3):
        assert torch.allclose(out[c], image[c] + shift[c], atol=1e-7)
    # the transform draws alpha ~ N(0, std)
    torch.manual_seed(0)
    drawn = PCALighting(0.1)(image)
    torch.manual_seed(0)
    assert torch.allclose(drawn, pca_lighting(image, torch.randn(3) * 0.1))
    assert torch.equal(PCALighting(0.0)(image), image)


class _Tiny(torch.nn.Module):
    pixel_mean, pixel_std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3)

    def classify(self, x):
        return 5 * self.conv(x).mean((2, 3))


def test_ten_crop_evaluation_averages_the_softmax_of_the_ten_crops():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, size=(40, 52, 3), dtype=np.uint8))
    model, c = _Tiny(), 24
    scores = predict_scores(model, [(eval_transform(36, c, "10crop")(image), 2)])
    # by hand: shorter side to 36, four corners and the centre of the image and of its mirror image
    x = F.resize(v2.ToImage()(image), 36, antialias=True).float() / 255
    h, w = x.shape[1:]
    top, left = int(round((h - c) / 2)), int(round((w - c) / 2))
    crops = []
    for im in (x, x.flip(-1)):
        crops += [im[:, :c, :c], im[:, :c, w - c:], im[:, h - c:, :c], im[:, h - c:, w - c:],
                  im[:, top:top + c, left:left + c]]
    mean, std = torch.tensor(_Tiny.pixel_mean).view(3, 1, 1), torch.tensor(_Tiny.pixel_std).view(3, 1, 1)
    with torch.no_grad():
        probs = [model.classify(((crop - mean) / std)[None]).softmax(1)[0] for crop in crops]
    expected = torch.stack(probs).mean(0)
    assert scores.shape == (1, 6) and torch.allclose(scores[0], expected, atol=1e-6)
    result = evaluate(model, [(eval_transform(36, c, "10crop")(image), int(expected.argmax()))])
    assert result["top1"] == 1.0 and result["top5"] == 1.0


def test_image_folder_errors_name_the_folder_and_the_fix(image_folder, tmp_path):
    t = eval_transform(36, 32)
    with pytest.raises(UserError, match="does not exist.*train/<class name>"):
        ImageFolderSet(tmp_path / "nowhere", "train", t)
    (tmp_path / "tree" / "train" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match=r"tree/val does not exist"):
        ImageFolderSet(tmp_path / "tree", "val", t)
    with pytest.raises(UserError, match=r"class folder .*tree/train/a holds no images"):
        ImageFolderSet(tmp_path / "tree", "train", t)
    with pytest.raises(UserError, match="differ from those of the training split .missing star; not in "
                                        "training: triangle"):
        ImageFolderSet(image_folder, "val", t, classes=["disc", "square", "star"])
    with pytest.raises(UserError, match="neither an ImageFolder directory .* nor a detection dataset"):
        run_pretraining(_tiny("no_such_dataset_folder"), tmp_path / "out.pth", **QUIET)


def test_a_corrupt_image_is_named_with_the_fix(image_folder, tmp_path):
    import shutil
    root = tmp_path / "tree"
    shutil.copytree(image_folder, root)
    (root / "train" / "square" / "3.jpg").write_bytes(b"not a jpeg at all")
    data = ImageFolderSet(root, "train", eval_transform(36, 32))
    bad = [i for i, (path, _) in enumerate(data.samples) if path.endswith("square/3.jpg")][0]
    with pytest.raises(UserError, match=r"cannot read image .*square/3.jpg .*replace it with a valid copy"):
        data[bad]
    # from a loader worker: the same message, without the worker's traceback
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(data, [bad]), num_workers=1)
    with pytest.raises(UnreadableImageError) as err:
        next(iter(loader))
    assert str(err.value).startswith("cannot read image") and "Traceback" not in str(err.value)


@pytest.mark.parametrize("schedule", ["plateau", "step", "cosine"])
def test_resume_from_an_epoch_checkpoint_reaches_the_uninterrupted_weights(image_folder, tmp_path, schedule):
    # plateau: patience 0 and an unreachable threshold lower the lr after every validated epoch but the first
    cfg = _tiny(image_folder, solver={"epochs": 3, "schedule": schedule, "plateau_patience": 0,
                                      "plateau_threshold": 1.0, "steps": [2], "warmup_fraction": 0.2},
                eval={"final": "center"})
    full = run_pretraining(cfg, tmp_path / "full.pth", **QUIET)

    class Stop(Exception):
        pass

    def stop_after_two(records):
        if len(records) == 2:
            raise Stop
    with pytest.raises(Stop):
        run_pretraining(cfg, tmp_path / "part.pth", on_epoch_end=stop_after_two, **QUIET)
    with pytest.raises(UserError, match="unfinished run \\(epoch 2 of 3\\); pass --resume"):
        run_pretraining(cfg, tmp_path / "part.pth", **QUIET)
    resumed = run_pretraining(cfg, tmp_path / "part.pth", resume=True, **QUIET)
    a = torch.load(tmp_path / "full.pth", weights_only=True)
    b = torch.load(tmp_path / "part.pth", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=key)
    assert [r["lr"] for r in resumed["epochs"]] == pytest.approx([r["lr"] for r in full["epochs"]])
    assert [r["loss"] for r in resumed["epochs"]] == pytest.approx([r["loss"] for r in full["epochs"]], abs=1e-6)
    if schedule in ("plateau", "step"):  # lowered by gamma before the third epoch
        assert full["epochs"][2]["lr"] == pytest.approx(0.1 * full["epochs"][1]["lr"])


def test_the_tool_trains_on_an_image_folder_and_writes_weights_the_registry_loads(image_folder, tmp_path,
                                                                                  monkeypatch, capsys):
    out = tmp_path / "r18.pth"
    pretrain_cls.main([
        "--config", str(PAPER_CONFIG), "--backbone", "resnet18", "--dataset", str(image_folder),
        "--epochs", "2", "--batch-size", "6", "--lr", "0.01", "--crop-size", "32", "--workers", "0",
        "--device", "cpu", "--output", str(out),
        "data.scale_min=36", "data.scale_max=48", "eval.resize=36", "eval.batch_size=9"])
    printed = capsys.readouterr().out
    assert "epoch 2/2" in printed and "10-crop" in printed and "top-5" not in printed  # 3 classes: no top-5
    metrics = json.loads(run_paths(out)["metrics"].read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert all({"loss", "top1", "lr"} <= set(e) for e in metrics["epochs"])
    assert metrics["final"]["eval"] == "10crop" and 0 <= metrics["final"]["top1"] <= 1
    assert metrics["final"]["samples"] == 18 and "top5" not in metrics["final"]
    assert run_paths(out)["checkpoint"].is_file()
    state = torch.load(out, weights_only=True)
    same = backbones.build("resnet18", pretrained=str(out), num_classes=3)  # 3 classes: the classifier loads
    assert torch.equal(same.fc.weight, state["fc.weight"]) and torch.equal(same.layer3[0].conv1.weight,
                                                                           state["layer3.0.conv1.weight"])
    other = backbones.build("resnet18", pretrained=str(out))  # 1000 classes: the 3-way classifier is dropped
    assert other.fc.out_features == 1000 and torch.equal(other.bn1.running_var, state["bn1.running_var"])


def test_object_crops_run_resumes_exactly_and_keeps_the_crop_recipe(small_shapes, tmp_path):
    overrides = {"solver": {"epochs": 2, "batch_size": 16}, "data": {"crop_size": 32}}
    cfg = load_pretrain_config(CROPS_CONFIG, overrides)
    full = run_pretraining(cfg, tmp_path / "full.pth", **QUIET)
    assert full["final"]["eval"] == "center" and "top5" in full["final"]  # shapes: 5 classes

    class Stop(Exception):
        pass

    def stop(records):
        raise Stop
    with pytest.raises(Stop):
        run_pretraining(cfg, tmp_path / "part.pth", on_epoch_end=stop, **QUIET)
    run_pretraining(cfg, tmp_path / "part.pth", resume=True, **QUIET)
    a = torch.load(tmp_path / "full.pth", weights_only=True)
    b = torch.load(tmp_path / "part.pth", weights_only=True)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=key)
    with pytest.raises(UserError, match="eval.final=10crop needs an ImageFolder"):
        run_pretraining(load_pretrain_config(CROPS_CONFIG, {**overrides, "eval": {"final": "10crop"}}),
                        tmp_path / "x.pth", **QUIET)
