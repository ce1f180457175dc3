"""Bad-input cases of the settings (see bad_input_table.py): numbers outside a setting's valid range, given by a
flag, a ``section.key=value`` override or a config file, all refused before any data is generated or read."""
from bad_input_table import Case

TRAIN = ["--dataset", "shapes", "--device", "cpu", "--output", "run"]
# an ImageFolder name, not shapes: shapes starts from the shipped object-crop recipe, whose absolute path
# the message would name (the table must read the same on every machine)
PRETRAIN = ["--dataset", "images", "--device", "cpu", "--output", "w.pth"]


def _train(*argv):
    return lambda d: TRAIN + list(argv)


def _config_file(text, base_argv):
    """A setup writing ``text`` as the user's cfg.yaml and passing it with --config."""
    def setup(folder):
        (folder / "cfg.yaml").write_text(text)
        return base_argv + ["--config", "cfg.yaml"]
    return setup


CASES = [
    Case("settings", "`--max-iter 0`", "train_det", _train("--max-iter", "0"), "solver.max_iter=0: must be >= 1"),
    Case("settings", "`--max-iter -5`", "train_det", _train("--max-iter", "-5"), "solver.max_iter=-5: must be >= 1"),
    Case("settings", "`--num-workers -1`", "train_det", _train("--num-workers", "-1"),
         "data.num_workers=-1: must be >= 0"),
    Case("settings", "`solver.base_lr=-1`", "train_det", _train("solver.base_lr=-1"), "solver.base_lr=-1: must be > 0"),
    Case("settings", "`solver.ims_per_batch=0`", "train_det", _train("solver.ims_per_batch=0"),
         "solver.ims_per_batch=0: must be >= 1"),
    Case("settings", "`solver.checkpoint_period=0`", "train_det", _train("solver.checkpoint_period=0"),
         "solver.checkpoint_period=0: must be >= 1"),
    Case("settings", "`solver.log_period=0`", "train_det", _train("solver.log_period=0"),
         "solver.log_period=0: must be >= 1"),
    Case("settings", "`solver.eval_period=-1`", "train_det", _train("solver.eval_period=-1"),
         "solver.eval_period=-1: must be >= 0 (0: never)"),
    Case("settings", "`model.min_size=[640,0]`", "train_det", _train("model.min_size=[640,0]"),
         "model.min_size=[640, 0]: each must be >= 1"),
    Case("settings", "config file with `model: {box_score_thresh: 1.5}`", "train_det",
         _config_file("model: {box_score_thresh: 1.5}\n", TRAIN),
         "cfg.yaml: model.box_score_thresh=1.5: must be in [0, 1]"),
    Case("settings", "config file with `solver: {steps: [80000, 60000]}`", "train_det",
         _config_file("solver: {steps: [80000, 60000]}\n", TRAIN),
         "cfg.yaml: solver.steps=[80000, 60000]: must be in increasing order"),
    Case("settings", "pretraining `--epochs 0`", "pretrain_cls", lambda d: PRETRAIN + ["--epochs", "0"],
         "solver.epochs=0: must be >= 1"),
    Case("settings", "pretraining config file with `solver: {batch_size: 0}`", "pretrain_cls",
         _config_file("solver: {batch_size: 0}\n", PRETRAIN),
         "cfg.yaml: solver.batch_size=0: must be >= 1"),
    Case("settings", "pretraining `eval.period=-1`", "pretrain_cls", lambda d: PRETRAIN + ["eval.period=-1"],
         "eval.period=-1: must be >= 0 (0: only the final evaluation)"),
    Case("settings", "`--num-images 0`", "visualize", lambda d: ["--checkpoint", "model.pth", "--num-images", "0"],
         "--num-images 0: must be >= 1"),
    Case("settings", "`--num-images -1`", "visualize", lambda d: ["--checkpoint", "model.pth", "--num-images", "-1"],
         "--num-images -1: must be >= 1"),
    Case("settings", "`--score-threshold 1.5`", "visualize",
         lambda d: ["--checkpoint", "model.pth", "--score-threshold", "1.5"],
         "--score-threshold 1.5: must be in [0, 1]"),
    Case("settings", "`--size 0`", "analyze_backbones", lambda d: ["--size", "0"], "--size 0: must be >= 32"),
    Case("settings", "`check_dataset --vis -1`", "check_dataset", lambda d: ["d.yaml", "--vis", "-1"],
         "--vis -1: must be >= 0"),
]
