"""Training configs: YAML sections validated before anything runs."""
from pathlib import Path

import pytest

from backbones.errors import UnknownNameError, UserError
from detection.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _write(tmp_path, text):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_sections_and_overrides(tmp_path):
    path = _write(tmp_path, "model:\n  backbone: resnet34\n  min_size: [160, 192]\nsolver:\n  base_lr: 0.01\n")
    cfg = load_config(path, {"solver": {"max_iter": 7}, "data": {"train": "shapes"}})
    assert (cfg.model.backbone, cfg.model.min_size, cfg.model.neck) == ("resnet34", (160, 192), "fpn")
    assert (cfg.solver.base_lr, cfg.solver.max_iter, cfg.data.train) == (0.01, 7, "shapes")


def test_the_demo_config_is_valid():
    cfg = load_config("configs/shapes_demo.yaml")
    assert (cfg.model.backbone, cfg.model.neck, cfg.model.mask, cfg.data.train) == ("resnet18", "fpn", True, "shapes")


@pytest.mark.parametrize("text, error, message", [
    ("solver:\n  base_rl: 0.1\n", UnknownNameError, r"unknown key in .*\[solver\] 'base_rl'. Did you mean 'base_lr'"),
    ("modle:\n  backbone: resnet18\n", UnknownNameError, r"unknown section .* 'modle'. Did you mean 'model'"),
    ("solver:\n  max_iter: lots\n", UserError, r"\[solver\]: max_iter must be int, got 'lots'"),
    ("model:\n  mask: 1\n", UserError, r"\[model\]: mask must be bool"),
    ("solver:\n  steps: 5\n", UserError, r"steps must be a list"),
    ("model: [1, 2\n", UserError, r"cfg.yaml is not valid YAML \(line 2, column 1\): expected .,. or .\]."),
    ("- 1\n- 2\n", UserError, r"must hold a mapping"),
    ("model: [1, 2]\n", UserError, r"\[model\] must be a mapping"),
    ("solver:\n  steps: [10, ten]\n", UserError, r"steps element must be int, got 'ten'"),
    ("model:\n  aspect_ratios: [0.5, x]\n", UserError, r"aspect_ratios element must be float"),
])
def test_bad_configs_name_the_key_and_file(tmp_path, text, error, message):
    with pytest.raises(error, match=message):
        load_config(_write(tmp_path, text))


def test_empty_sections_take_the_defaults(tmp_path):
    cfg = load_config(_write(tmp_path, "model:\nsolver:\n"), {"solver": {"max_iter": 3}})
    assert cfg.model.backbone == "resnet50" and cfg.solver.max_iter == 3


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError, match="config file .*nope.yaml does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_base_files_merge_under_the_child(tmp_path):
    (tmp_path / "base.yaml").write_text("model: {backbone: resnet50, mask: true}\nsolver: {base_lr: 0.02, max_iter: 100}\n")
    (tmp_path / "mid.yaml").write_text("_base_: base.yaml\nsolver: {max_iter: 50}\n")
    child = _write(tmp_path, "_base_: [mid.yaml]\nmodel: {backbone: resnet101}\n")
    cfg = load_config(child)
    assert (cfg.model.backbone, cfg.model.mask, cfg.solver.base_lr, cfg.solver.max_iter) == ("resnet101", True, 0.02, 50)


def test_bad_bases(tmp_path):
    with pytest.raises(UserError, match=r"_base_ file .*missing.yaml does not exist"):
        load_config(_write(tmp_path, "_base_: missing.yaml\n"))
    (tmp_path / "a.yaml").write_text("_base_: cfg.yaml\n")
    with pytest.raises(UserError, match="inherits from itself through _base_"):
        load_config(_write(tmp_path, "_base_: a.yaml\n"))


def test_command_line_overrides():
    from detection.config import parse_overrides
    overrides = parse_overrides(["solver.base_lr=0.01", "model.min_size=[640, 800]", "model.mask=true"])
    assert overrides == {"solver": {"base_lr": 0.01}, "model": {"min_size": [640, 800], "mask": True}}
    cfg = load_config(None, overrides)
    assert (cfg.solver.base_lr, cfg.model.min_size, cfg.model.mask) == (0.01, (640, 800), True)
    with pytest.raises(UserError, match="must look like section.key=value"):
        parse_overrides(["base_lr=0.1"])
    with pytest.raises(UnknownNameError, match=r"unknown key in config \[solver\] 'lr'"):
        load_config(None, parse_overrides(["solver.lr=0.1"]))


def _is_pretraining_config(path):
    """configs/pretrain/ and files inheriting from it hold pretraining settings (tools/pretrain_cls.py)."""
    return path.parent.name == "pretrain" or "../pretrain/" in path.read_text()


# configs/detectron2/ holds detectron2 configs (tests/test_detectron2_plugin.py builds those)
@pytest.mark.parametrize("name", sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.yaml")
                                        if p.parent.name != "detectron2"))
def test_every_shipped_config_is_valid(name):
    if _is_pretraining_config(CONFIGS / name):
        from detection.run.pretrain import load_pretrain_config
        load_pretrain_config(CONFIGS / name)
        return
    cfg = load_config(CONFIGS / name)
    cfg.model.validate()


def test_shipped_configs_inherit_and_take_their_schedule():
    r101 = load_config(CONFIGS / "coco/faster_rcnn_R101_FPN_3x.yaml")
    assert (r101.model.backbone, r101.solver.schedule, r101.solver.max_iter) == ("resnet101", "3x", 270000)
    assert (tuple(r101.solver.steps), r101.solver.weight_decay_norm, r101.data.test) == (
        (210000, 250000), 0.0, "coco_2017_val")  # from the schedule, the base and the 1x parent
    mask = load_config(CONFIGS / "coco/mask_rcnn_R50_FPN_1x.yaml")
    assert mask.model.mask and mask.solver.max_iter == 90000 and mask.solver.reference_batch_size == 16


def test_unknown_override_section():
    with pytest.raises(UnknownNameError, match="unknown override section 'slover'. Did you mean 'solver'"):
        load_config(overrides={"slover": {"base_lr": 0.1}})
