"""Bad-input cases of the run folder (see bad_input_table.py): where a run writes, and what it resumes."""
from bad_input_table import Case


def _file(name, text="mine"):
    def setup(folder):
        (folder / name).write_text(text)
        return []
    return setup


def _with(setup, argv):
    return lambda folder: setup(folder) + argv


def _old_run(folder):
    """A run folder written before runs kept a manifest of their files."""
    (folder / "run").mkdir()
    (folder / "run" / "metrics.jsonl").write_text('{"iteration": 1}\n')
    return []


CASES = [
    Case("run folder", "`--resume` and `--overwrite` together", "train_det",
         lambda d: ["--dataset", "shapes", "--output", "run", "--resume", "--overwrite"],
         "not both"),
    Case("run folder", "`--output` names an existing file", "train_det",
         _with(_file("run"), ["--dataset", "shapes", "--output", "run"]), "is a file, not a folder"),
    Case("run folder", "`--output` inside a path that is a file", "train_det",
         _with(_file("notes.txt"), ["--dataset", "shapes", "--output", "notes.txt/run"]),
         "so the folder cannot be created"),
    Case("run folder", "`--output` holds a run, neither `--resume` nor `--overwrite`", "train_det",
         _with(_old_run, ["--dataset", "shapes", "--output", "run"]), "already holds a run"),
    Case("run folder", "`--overwrite` on a run folder without a manifest (written before manifests)", "train_det",
         _with(_old_run, ["--dataset", "shapes", "--output", "run", "--overwrite", "--max-iter", "1",
                          "--device", "cpu"]),
         "without a record of which files it wrote"),
    Case("run folder", "`pretrain_cls --output` names a folder", "pretrain_cls",
         lambda d: (d / "weights").mkdir() or ["--dataset", "shapes", "--output", "weights"],
         "is a folder; name the weights file"),
    Case("run folder", "`reproduce --runs` names a file", "reproduce",
         _with(_file("runs"), ["--suite", "shapes", "--runs", "runs"]), "is a file, not a folder"),
]
