"""Bad-input cases of test-time augmentation (see bad_input_table.py): the --tta flags of eval_voc/eval_coco
and the ``test.tta`` settings of a config file or a checkpoint, all refused before any data is read."""
from bad_input_table import Case

CHECKPOINT = ["--checkpoint", "model.pth"]  # never opened: the flags are checked first


def _flags(*argv):
    return lambda folder: CHECKPOINT + list(argv)


def _config_file(text):
    def setup(folder):
        (folder / "cfg.yaml").write_text(text)
        return ["--dataset", "shapes", "--device", "cpu", "--output", "run", "--config", "cfg.yaml"]
    return setup


def _checkpoint_with(tta):
    """A tiny random-weight detector whose training config holds ``test: {tta: ...}``."""
    def setup(folder):
        from detection import build_detector
        from detection.engine.checkpoint import save_checkpoint
        model = build_detector(backbone="resnet18", num_classes=2, pretrained="none", min_size=64, max_size=64)
        save_checkpoint(folder / "model.pth", model, ("cat", "dog"), (1, 2), iteration=1,
                        train_config={"data": {"train": "shapes"}, "test": {"tta": tta}})
        return CHECKPOINT + ["--tta"]
    return setup


CASES = [
    Case("test-time augmentation", "`--tta-scales 0`", "eval_voc", _flags("--tta-scales", "0"),
         "tta.scales=[0] (--tta-scales): 0 is not a size"),
    Case("test-time augmentation", "`--tta-scales 800.5`", "eval_voc", _flags("--tta-scales", "800.5"),
         "--tta-scales 800.5: each scale is a shorter side in pixels, an integer"),
    Case("test-time augmentation", "`--tta-merge mean`", "eval_coco", _flags("--tta-merge", "mean"),
         "tta.merge='mean' (--tta-merge): must be nms (per-class NMS) or vote (box voting, the paper's)"),
    Case("test-time augmentation", "`--tta-iou 0`", "eval_coco", _flags("--tta-iou", "0"),
         "tta.iou=0.0 (--tta-iou): must be in (0, 1]"),
    Case("test-time augmentation", "`--tta` with `--predictions` (saved predictions: no model to run)", "eval_coco",
         lambda folder: ["--tta", "--predictions", "results.json", "--dataset", "shapes_val"],
         "--tta runs a model: give --checkpoint CKPT"),
    Case("test-time augmentation", "config file with `test: {tta: {scales: []}}`", "train_det",
         _config_file("test: {tta: {scales: []}}\n"), "cfg.yaml: test.tta.scales=[] (--tta-scales): must be a "
         "non-empty list"),
    Case("test-time augmentation", "config file with `test: {tta: {merge: avg}}`", "train_det",
         _config_file("test: {tta: {merge: avg}}\n"), "cfg.yaml: test.tta.merge='avg' (--tta-merge): must be nms"),
    Case("test-time augmentation", "config file with `test: {tta: {scale: [800]}}` (a misspelt key)", "train_det",
         _config_file("test: {tta: {scale: [800]}}\n"), "Did you mean 'scales'?"),
    Case("test-time augmentation", "`--tta` on a checkpoint whose `test.tta` has `iou: 2`", "eval_voc",
         _checkpoint_with({"iou": 2}), "model.pth: test.tta.iou=2 (--tta-iou): must be in (0, 1]"),
]
