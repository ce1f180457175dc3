"""Training configs: YAML sections validated before anything runs."""
import dataclasses
import typing
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


# --- valid ranges: checked with the types, whether a value comes from a file, a flag or an override --------

@pytest.mark.parametrize("override, message", [
    ("solver.base_lr=-1", "command line: solver.base_lr=-1: must be > 0"),
    ("solver.ims_per_batch=0", "command line: solver.ims_per_batch=0: must be >= 1"),
    ("solver.checkpoint_period=0", "solver.checkpoint_period=0: must be >= 1"),
    ("solver.log_period=0", "solver.log_period=0: must be >= 1"),
    ("solver.max_iter=0", "solver.max_iter=0: must be >= 1"),
    ("solver.max_iter=-5", "solver.max_iter=-5: must be >= 1"),
    ("solver.momentum=1", "solver.momentum=1: must be in [0, 1)"),
    ("solver.weight_decay=-0.1", "solver.weight_decay=-0.1: must be >= 0"),
    ("solver.weight_decay_norm=-1", "solver.weight_decay_norm=-1: must be >= 0"),
    ("solver.gamma=0", "solver.gamma=0: must be in (0, 1]"),
    ("solver.gamma=10", "solver.gamma=10: must be in (0, 1]"),
    ("solver.warmup_iters=-1", "solver.warmup_iters=-1: must be >= 0 (0: no warmup)"),
    ("solver.warmup_factor=0", "solver.warmup_factor=0: must be in (0, 1]"),
    ("solver.eval_period=-1", "solver.eval_period=-1: must be >= 0 (0: never)"),
    ("solver.keep_last=-1", "solver.keep_last=-1: must be >= 0 (0: keep all)"),
    ("solver.clip_grad_norm=0", "solver.clip_grad_norm=0: must be > 0 (null: no clipping)"),
    ("solver.reference_batch_size=0", "solver.reference_batch_size=0: must be >= 1"),
    ("solver.seed=-1", "solver.seed=-1: must be >= 0"),
    ("solver.steps=[0,10]", "solver.steps=[0, 10]: each must be >= 1"),
    ("solver.steps=[80,60]", "solver.steps=[80, 60]: must be in increasing order"),
    ("solver.base_lr=.inf", "solver.base_lr=inf: must be a finite number"),
    ("model.min_size=0", "model.min_size=0: must be >= 1"),
    ("model.min_size=[640,-800]", "model.min_size=[640, -800]: each must be >= 1"),
    ("model.max_size=0", "model.max_size=0: must be >= 1"),
    ("model.box_score_thresh=1.5", "model.box_score_thresh=1.5: must be in [0, 1]"),
    ("model.box_nms_thresh=0", "model.box_nms_thresh=0: must be in (0, 1]"),
    ("model.box_detections_per_img=0", "model.box_detections_per_img=0: must be >= 1"),
    ("model.rpn_post_nms_top_n_test=0", "model.rpn_post_nms_top_n_test=0: must be >= 1"),
    ("model.freeze_at=-1", "model.freeze_at=-1: must be >= 0"),
    ("model.aspect_ratios=[0.5,0]", "model.aspect_ratios=[0.5, 0]: each must be > 0"),
    ("model.pixel_std=[1,0,1]", "model.pixel_std=[1, 0, 1]: each must be > 0"),
    ("model.num_classes=0", "model.num_classes=0: must be >= 1"),
    ("data.num_workers=-1", "data.num_workers=-1: must be >= 0 (0: load in the main process)"),
    ("data.hflip_prob=2", "data.hflip_prob=2: must be in [0, 1]"),
    ("data.color_jitter=-0.5", "data.color_jitter=-0.5: must be >= 0 (0: off)"),
])
def test_out_of_range_settings_name_the_setting_the_value_and_the_range(override, message):
    from detection.config import parse_overrides
    with pytest.raises(UserError) as err:
        load_config(None, parse_overrides([override]))
    assert message in str(err.value)


def test_an_out_of_range_value_in_a_file_names_the_file(tmp_path):
    path = _write(tmp_path, "solver:\n  ims_per_batch: 0\n")
    with pytest.raises(UserError, match=r"cfg.yaml: solver.ims_per_batch=0: must be >= 1"):
        load_config(path)


def test_a_schedule_does_not_hide_an_out_of_range_value():
    with pytest.raises(UserError, match=r"solver.max_iter=0: must be >= 1"):
        load_config(None, {"solver": {"schedule": "1x", "max_iter": 0}})


def test_range_boundaries_and_unset_values_are_accepted():
    cfg = load_config(None, {
        "solver": {"eval_period": 0, "keep_last": 0, "warmup_iters": 0, "gamma": 1, "warmup_factor": 1,
                   "momentum": 0, "weight_decay": 0, "max_iter": 1, "ims_per_batch": 1, "clip_grad_norm": None,
                   "reference_batch_size": None, "steps": [], "seed": 0},
        "model": {"box_score_thresh": 0, "box_nms_thresh": 1, "freeze_at": None, "anchor_sizes": None,
                  "min_size": [1, 2], "pixel_std": None},
        "data": {"num_workers": 0, "hflip_prob": 1, "color_jitter": 0}})
    assert (cfg.solver.eval_period, cfg.model.freeze_at, cfg.data.hflip_prob) == (0, None, 1)


def _numeric(hint) -> bool:
    """int or float, also inside Optional[...], Sequence[...] and Union[int, Sequence[int]]."""
    return hint in (int, float) or any(_numeric(arg) for arg in typing.get_args(hint))


def test_every_numeric_setting_declares_its_range():
    """A new numeric field needs a range in RANGES (or a reason below to have none)."""
    from detection.config import RANGES, SECTIONS
    any_value = {("model", "pixel_mean")}  # a mean may be any number
    for name, cls in SECTIONS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(RANGES.get(name, {})) <= fields, f"RANGES[{name!r}] names keys {cls.__name__} lacks"
        for key, hint in typing.get_type_hints(cls).items():
            if key in fields and _numeric(hint) and (name, key) not in any_value:
                assert key in RANGES.get(name, {}), f"{name}.{key} has no range in detection.config.RANGES"
