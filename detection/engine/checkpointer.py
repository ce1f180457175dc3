"""The checkpoints of one run folder: periodic ones (the last K kept), final, best, and which is newest.

Like detectron2, the folder holds a ``last_checkpoint`` file naming the newest
checkpoint, which ``--resume`` continues from.
"""
import re
from pathlib import Path

from backbones.atomic_files import write_text
from backbones.errors import UserError

from .run_folder import record

LAST = "last_checkpoint"
PERIODIC = re.compile(r"model_\d{7}\.pth")


def periodic_name(iteration: int) -> str:
    return f"model_{iteration:07d}.pth"


class Checkpointer:
    def __init__(self, output_dir, keep_last=3):
        self.output_dir, self.keep_last = Path(output_dir), keep_last

    def save(self, name, write) -> Path:
        """``write(path)`` the checkpoint ``name``, point ``last_checkpoint`` at it, drop old periodic ones.

        When the write fails, ``last_checkpoint`` still names the previous checkpoint, which is kept.
        """
        path = record(self.output_dir / name)
        write(path)
        if name != "model_best.pth":  # the best is a copy of the past, not where to resume from
            write_text(record(self.output_dir / LAST), name + "\n")
        if PERIODIC.fullmatch(name) and self.keep_last > 0:
            for old in sorted(p for p in self.output_dir.glob("model_*.pth") if PERIODIC.fullmatch(p.name))[
                    :-self.keep_last]:
                old.unlink()
        return path

    def last(self):
        """The checkpoint to resume from, or None when the run has not saved one yet."""
        pointer = self.output_dir / LAST
        if not pointer.is_file():
            return None
        path = self.output_dir / pointer.read_text().strip()
        if not path.is_file():
            raise UserError(f"{pointer} names {path.name}, which does not exist; point it at another "
                            f"checkpoint in {self.output_dir} or train again with --overwrite")
        return path
