"""Building a resolved :class:`~detection.run.resolve.Run`: its model, data and trainer."""
import dataclasses
import shlex
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional

import torch

from backbones.atomic_files import write_text
from backbones.errors import UserError

from ..data.dataset import DetectionDataset
from ..detector import build_detector
from ..engine import distributed
from ..engine.run_folder import files_read_from, record, remove_previous_run, write_config
from ..engine.run_lock import LOCK_FILE, RunLock
from ..engine.trainer import TrainResult, train
from ..init.surgery import transplant
from .data import evaluation_dataset, training_dataset, training_repeat_factors
from .resolve import Run

INIT_REPORT = "init_report.txt"


@dataclass
class BuiltRun:
    """A run ready to train. ``run.config.model`` now holds what the weights decided (normalisation,
    ``stride_in_1x1``): that is the config recorded in the run folder and in checkpoints."""
    run: Run
    model: torch.nn.Module
    dataset: DetectionDataset
    eval_dataset: Optional[DetectionDataset]
    device: str
    init_report: Optional[list] = None   # what --init loaded, kept and re-initialised (saved as INIT_REPORT)

    def train(self, progress=True, resume_command=None) -> TrainResult:
        """Train in ``run.output``, holding its lock; continues the run when ``run.resume``.

        Everything is checked first (the folder, the lock, a resumed checkpoint against the model); only
        then are the previous run's files removed (``run.overwrite``) and config.yaml written.
        """
        run, output = self.run, self.run.output
        if output is None:
            raise UserError("this run has no output folder for its checkpoints: resolve it with "
                            "resolve_run(..., output=FOLDER)")
        with RunLock(output / LOCK_FILE, f"the run folder {output}") if distributed.is_main() else nullcontext():
            def start_writing():
                if distributed.is_main():
                    if run.overwrite:
                        remove_previous_run(output, keep=files_read_from(output, run.to_dict()))
                    write_config(output, run.to_dict())
                    if self.init_report is not None:
                        write_text(record(output / INIT_REPORT), "\n".join(self.init_report) + "\n")
                distributed.barrier()  # the folder is ready before any rank writes
            return train(self.model.to(self.device), self.dataset, run.config.solver, output,
                         runtime=run.config.runtime, num_workers=run.config.data.num_workers,
                         train_config=run.to_dict(), eval_dataset=self.eval_dataset, resume=run.resume,
                         progress=progress, resume_command=resume_command or resume_command_line(),
                         on_start=start_writing, repeat_factors=training_repeat_factors(run.config, self.dataset))


def build_run(run: Run) -> BuiltRun:
    """The model, training data, evaluation data and trainer of ``run``.

    The backbone weights are fetched unless the run resumes from a checkpoint, which provides them.
    """
    cfg = run.config
    device = distributed.init_from_env(cfg.runtime.device)
    dataset = training_dataset(cfg)
    eval_dataset = evaluation_dataset(cfg.data.test, dataset.class_names, f"the {cfg.data.train} model") \
        if cfg.solver.eval_period else None
    torch.manual_seed(cfg.solver.seed)  # the initial weights too
    model = build_detector(cfg.model, load_pretrained=not run.resuming)
    init_report = None
    if run.init_source is not None:
        source = run.init_source
        report = transplant(model, source.state_dict, source.class_names, run.class_names, cfg.model.init_classes)
        init_report = report.lines(source.description)
        if distributed.is_main():
            print("\n".join(init_report))
    run = dataclasses.replace(run, config=dataclasses.replace(cfg, model=model.config))
    return BuiltRun(run, model, dataset, eval_dataset, device, init_report)


def resume_command_line() -> str:
    """The command that continues this process's run (printed when a signal stops it)."""
    prefix = ["python"]
    if distributed.launched_by_torchrun():
        prefix = ["torchrun", f"--nproc_per_node={distributed.world_size()}"]
    argv = [a for a in sys.argv if a not in ("--resume", "--overwrite")]
    return " ".join(shlex.quote(a) for a in prefix + argv + ["--resume"])
