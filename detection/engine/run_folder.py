"""What a training run writes into its output folder, and the rules for reusing one.

A folder holding a run is only reused on purpose: ``--resume`` continues it
(with the config saved there), ``--overwrite`` starts again. Every file the
toolkit writes into a run folder is recorded, before it is written, in the
folder's manifest (``run_files.txt``); ``--overwrite`` removes exactly those
files, never anything else a user keeps there and never a file the new run
reads (weights passed as ``--pretrained`` from the same folder, say).
"""
import os
from pathlib import Path
from typing import Iterable

import yaml

from backbones.atomic_files import write_text
from backbones.errors import UserError

CONFIG_FILE = "config.yaml"
MANIFEST = "run_files.txt"
# files only a run writes, by which a folder written before runs kept a manifest is recognised (and
# then never emptied by guessing at names)
UNRECORDED_RUN_FILES = ("metrics.jsonl", "last_checkpoint")


def record(path, folder=None) -> Path:
    """Add ``path`` to the manifest of ``folder`` (default: its own folder) before it is written, so a
    crash mid-write leaves it known. ``path`` may lie in a subfolder of ``folder``."""
    path = Path(path)
    folder = Path(folder) if folder is not None else path.parent
    name = path.relative_to(folder).as_posix()
    if name not in written_files(folder):
        with open(folder / MANIFEST, "a", encoding="utf-8") as manifest:
            manifest.write(name + "\n")
    return path


def record_if_run_folder(path) -> Path:
    """Record ``path`` when it is written into a run folder or a subfolder of one (evaluation outputs
    beside a checkpoint, devkit results files in their folder beside it)."""
    path = Path(path)
    for folder in (path.parent, path.parent.parent):
        if (folder / MANIFEST).is_file():
            return record(path, folder)
    return path


def written_files(output: Path) -> list:
    """The names the manifest of ``output`` lists, relative to it (a line torn by a crash names no file
    and is harmless; a line naming something outside the folder is ignored)."""
    manifest = Path(output) / MANIFEST
    if not manifest.is_file():
        return []
    names = manifest.read_text(encoding="utf-8", errors="replace").splitlines()
    return [n for n in dict.fromkeys(names)
            if n and not n.startswith("/") and ".." not in n.split("/") and "\\" not in n]


def holds_run(output: Path) -> bool:
    if any((output / name).exists() for name in written_files(output)):
        return True
    return any((output / name).exists() for name in UNRECORDED_RUN_FILES)


def check_output_folder(output: Path, resume: bool, overwrite: bool):
    """Refuse what would fail or lose data later: read only, nothing written.

    ``--resume`` on a folder without a run starts one (so a preemptible job can always pass it).
    """
    if resume and overwrite:
        raise UserError("pass --resume (continue the run) or --overwrite (start again), not both")
    check_writable_folder(output, "--output")
    if holds_run(output) and not (resume or overwrite):
        raise UserError(f"{output} already holds a run; pass --resume to continue it, --overwrite to start "
                        f"again, or another --output")
    if overwrite and holds_run(output) and not written_files(output):
        raise _unrecorded_run(output)


def _unrecorded_run(output: Path) -> UserError:
    return UserError(f"--overwrite: {output} holds a run without a record of which files it wrote ({MANIFEST}; "
                     f"runs before this version kept none); remove its files yourself or pass another --output")


def check_writable_folder(folder: Path, flag: str):
    """``folder`` is a folder, or can become one, that this process may write in."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {folder} is a file, not a folder; name a folder (it is created if missing)")
    existing = next(p for p in [folder, *folder.absolute().parents] if p.exists())
    if not existing.is_dir():
        raise UserError(f"{flag} {folder}: {existing} is a file, so the folder cannot be created; name another")
    if not os.access(existing, os.W_OK | os.X_OK) or _read_only_mount(existing):
        raise UserError(f"{flag} {folder}: {existing} is not writable by this user; "
                        f"pass an --output you can write to")


def _read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def remove_previous_run(output: Path, keep: Iterable[Path] = (), log=print):
    """``--overwrite``: remove the files the manifest lists (and their partial ``.tmp``) except ``keep``.

    A run folder written before runs kept a manifest is refused, not emptied by guessing at names.
    """
    names = written_files(output)
    if not names:
        if holds_run(output):
            raise _unrecorded_run(output)
        return
    kept = {Path(k).resolve() for k in keep}
    for name in names:
        path = output / name
        if path.resolve() in kept:
            if log is not None:
                log(f"--overwrite: keeping {path}: this run reads it")
            continue
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)
        if path.parent != output and path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()  # a subfolder the run wrote (devkit results), now empty
    (output / MANIFEST).unlink()


def files_read_from(output: Path, config: dict) -> list:
    """Files inside ``output`` that settings of ``config`` name (``SOURCE:FILE`` included): a run reads them."""
    def strings(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                yield from strings(v)
        elif isinstance(value, str):
            yield value
            if ":" in value:
                yield value.split(":", 1)[1]
    inside = Path(output).resolve()
    found = []
    for text in strings(config):
        path = Path(text).expanduser()
        if path.is_file() and path.resolve().parent == inside:
            found.append(path)
    return found


def write_config(output: Path, config: dict) -> Path:
    """The fully resolved config; ``--config`` accepts it as it is."""
    path = record(output / CONFIG_FILE)
    return write_text(path, "# resolved config of this run: every default filled in\n" +
                      yaml.safe_dump(config, sort_keys=False))


def config_differences(saved: dict, now: dict, sections=("model", "data")) -> list:
    """``section.key: saved -> now`` for every setting of ``sections`` that ``now`` sets differently.

    Unset values (None, resolved when the model is built) and the class count
    (taken from the data) are not compared.
    """
    return [f"{section}.{key}: {saved[section].get(key)!r} -> {value!r}"
            for section in sections for key, value in now[section].items()
            if value is not None and key != "num_classes" and saved.get(section, {}).get(key) != value]
