"""What a training run writes into its output folder, and the rules for reusing one.

A folder holding a run is only reused on purpose: ``--resume`` continues it
(with the config saved there), ``--overwrite`` removes the run's own files
(and nothing else) to start again.
"""
from pathlib import Path

import yaml

from backbones.errors import UserError

CONFIG_FILE = "config.yaml"
# everything a run and its evaluations write; --overwrite removes these and nothing else
RUN_FILES = (CONFIG_FILE, "metrics.jsonl", "last_checkpoint", "last_checkpoint.tmp", "training_curves.png",
             "events.out.tfevents.*", "model_*.pth", "model_*.pth.tmp", "model_*.*.json", "model_*.*.png")


def holds_run(output: Path) -> bool:
    return any(any(output.glob(pattern)) for pattern in RUN_FILES)


def check_output_folder(output: Path, resume: bool, overwrite: bool):
    """``--resume`` on a folder without a run starts one (so a preemptible job can always pass it)."""
    if resume and overwrite:
        raise UserError("pass --resume (continue the run) or --overwrite (start again), not both")
    if holds_run(output) and not (resume or overwrite):
        raise UserError(f"{output} already holds a run; pass --resume to continue it, --overwrite to start "
                        f"again, or another --output")


def remove_previous_run(output: Path):
    for pattern in RUN_FILES:
        for path in output.glob(pattern):
            path.unlink()


def write_config(output: Path, config: dict) -> Path:
    """The fully resolved config; ``--config`` accepts it as it is."""
    path = output / CONFIG_FILE
    path.write_text("# resolved config of this run: every default filled in\n" +
                    yaml.safe_dump(config, sort_keys=False))
    return path


def config_differences(saved: dict, now: dict, sections=("model", "data")) -> list:
    """``section.key: saved -> now`` for every setting of ``sections`` that ``now`` sets differently.

    Unset values (None, resolved when the model is built) and the class count
    (taken from the data) are not compared.
    """
    return [f"{section}.{key}: {saved[section].get(key)!r} -> {value!r}"
            for section in sections for key, value in now[section].items()
            if value is not None and key != "num_classes" and saved.get(section, {}).get(key) != value]
