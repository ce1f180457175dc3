"""Bad-input cases of the run folder (see bad_input_table.py): where a run writes, and what it resumes."""
from bad_input_table import Case

CASES = [
    Case("run folder", "`--resume` and `--overwrite` together", "train_det",
         lambda d: ["--dataset", "shapes", "--output", "run", "--resume", "--overwrite"],
         "not both"),
]
