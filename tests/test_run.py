"""The run layer: resolve_run decides every default once into a frozen Run; build_run builds model, data, trainer."""
import dataclasses
from pathlib import Path

import pytest
import torch
import yaml
from torchvision.models.detection import fasterrcnn_resnet50_fpn

from backbones.errors import UserError
from detection.detector import DetectorTransform, build_detector
from detection.run import build_run, resolve_config, resolve_run
from detection.run.configs import config_root, find_config
from detection.run.evaluate import default_test_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.min_size=96", "model.max_size=96", "model.fpn_channels=32", "model.box_representation_size=32",
        "model.rpn_post_nms_top_n_train=100", "model.box_batch_size_per_image=32", "solver.ims_per_batch=2",
        "solver.warmup_iters=1", "solver.log_period=1", "solver.checkpoint_period=100", "data.num_workers=0",
        "model.mask=false"]


def test_a_shapes_run_resolves_every_default(small_shapes, tmp_path):
    run = resolve_run("configs/shapes_demo.yaml", overrides=["solver.max_iter=2"], output=tmp_path / "run")
    cfg = run.config
    # from scratch on the built-in data: no weights, GroupNorm, nothing frozen
    assert (cfg.model.pretrained, cfg.model.norm, cfg.model.freeze_at) == ("none", "gn", 0)
    assert (cfg.data.train, cfg.data.test, cfg.runtime.device) == ("shapes", "shapes_val", "cpu")
    assert cfg.model.num_classes == 5 and run.class_names == ("circle", "square", "triangle", "star", "hexagon")
    assert not run.resume and not run.resuming
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.config.model.norm = "bn"
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.config = cfg


def test_a_coco_run_fine_tunes_imagenet_weights():
    cfg = resolve_config(flags={"data": {"train": "coco"}})  # settings only: no data is read
    assert (cfg.model.pretrained, cfg.model.norm, cfg.model.freeze_at) == ("torchvision", "frozen_bn", 2)
    assert cfg.data.test == "coco_2017_val"
    explicit = resolve_config(flags={"data": {"train": "coco"}, "model": {"pretrained": "none", "norm": "bn"}})
    assert (explicit.model.pretrained, explicit.model.norm, explicit.model.freeze_at) == ("none", "bn", 0)
    assert resolve_config(flags={"data": {"train": "coco", "test": "coco_2014_minival"}}).data.test == \
        "coco_2014_minival"


def test_a_resolved_config_resolves_to_itself():
    cfg = resolve_config("configs/paper/faster_rcnn_R101_C4_coco.yaml", overrides=["solver.ims_per_batch=8"], log=None)
    again = resolve_config(saved=cfg.to_dict(), log=None)  # e.g. a checkpoint's config, read back
    assert again.to_dict() == cfg.to_dict()


def test_the_linear_scaling_rule_is_printed_once(capsys):
    resolve_config("configs/paper/faster_rcnn_R101_C4_coco.yaml", overrides=["solver.ims_per_batch=16"])
    assert capsys.readouterr().out.count("linear scaling rule: batch 16 vs reference 8") == 1


def test_build_run_records_what_the_weights_decide_and_trains(small_shapes, tmp_path):
    run = resolve_run("configs/shapes_demo.yaml", overrides=TINY + ["solver.max_iter=1"], output=tmp_path / "run")
    built = build_run(run)
    assert run.config.model.pixel_mean is None  # the weights decide it: the build fills it in
    assert built.run.config.model.pixel_mean == (0.485, 0.456, 0.406)
    assert built.run.config.model.stride_in_1x1 is False
    assert isinstance(built.model.transform, DetectorTransform) and built.dataset.resizes_images
    assert built.eval_dataset is None  # solver.eval_period 0
    result = built.train(progress=False)
    assert result.iteration == 1
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text()) == built.run.to_dict()


def test_a_run_without_an_output_folder_cannot_train(small_shapes):
    built = build_run(resolve_run("configs/shapes_demo.yaml", overrides=TINY + ["solver.max_iter=1"]))
    with pytest.raises(UserError, match=r"no output folder .* resolve_run\(\.\.\., output=FOLDER\)"):
        built.train(progress=False)


def test_pipeline_resized_training_images_are_not_resized_again():
    model = build_detector(backbone="resnet18", num_classes=2, min_size=64, max_size=64, fpn_channels=16).train()
    image = torch.rand(3, 96, 128)
    target = {"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "labels": torch.tensor([1])}
    batch, targets = model.transform([image], [{**target, "resized": True}])
    assert batch.image_sizes == [(96, 128)] and torch.equal(targets[0]["boxes"], target["boxes"])
    batch, targets = model.transform([image], [dict(target)])  # no mark: the model resizes (64 on the short side)
    assert batch.image_sizes == [(48, 64)] and torch.allclose(targets[0]["boxes"], target["boxes"] / 2)
    batch, _ = model.eval().transform([image])  # evaluation always resizes
    assert batch.image_sizes == [(48, 64)]


def test_the_trainer_refuses_a_model_that_would_resize_twice(small_shapes, tmp_path):
    run = resolve_run("configs/shapes_demo.yaml", overrides=TINY + ["solver.max_iter=1"], output=tmp_path / "run")
    built = build_run(run)
    built.model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=6)
    with pytest.raises(UserError, match="this model's transform would resize them again"):
        built.train(progress=False)


def test_shipped_configs_are_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_root() == ROOT / "configs"
    assert find_config("configs/shapes_demo.yaml") == ROOT / "configs" / "shapes_demo.yaml"
    assert find_config("pretrain/shapes_crops.yaml") == ROOT / "configs" / "pretrain" / "shapes_crops.yaml"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "shapes_demo.yaml").write_text("solver: {max_iter: 3}\n")  # the user's own wins
    assert find_config("configs/shapes_demo.yaml") == Path("configs/shapes_demo.yaml")
    assert resolve_config("configs/shapes_demo.yaml").solver.max_iter == 3
    with pytest.raises(UserError, match="nope.yaml"):
        resolve_config("configs/nope.yaml")


def test_a_checkpoint_is_evaluated_on_its_training_runs_test_split():
    assert default_test_dataset({"train_config": {"data": {"train": "coco"}}}) == "coco_2017_val"
    assert default_test_dataset({"train_config": {"data": {"train": "voc", "test": "voc_2007_test"}}}) == \
        "voc_2007_test"
    with pytest.raises(UserError, match="does not say which dataset it was trained on; pass --dataset"):
        default_test_dataset({"train_config": None})


def test_the_training_data_cache_tells_two_dataset_files_of_the_same_relative_name_apart(tmp_path, monkeypatch):
    """A relative dataset name names another file from another folder (and a rewritten file is read again)."""
    import json

    from detection.run.data import training_data

    def dataset(folder, names):
        folder.mkdir()
        categories = [{"id": k, "name": n} for k, n in enumerate(names, 1)]
        (folder / "gt.json").write_text(json.dumps({"images": [], "annotations": [], "categories": categories}))
        (folder / "d.yaml").write_text("format: coco\nannotations: gt.json\nimages: .\n")
    dataset(tmp_path / "a", ["cat", "dog"])
    dataset(tmp_path / "b", ["cat", "Cat"])
    monkeypatch.chdir(tmp_path / "a")
    assert training_data("d.yaml").class_names == ["cat", "dog"]
    monkeypatch.chdir(tmp_path / "b")
    assert training_data("d.yaml").class_names == ["cat", "Cat"]
