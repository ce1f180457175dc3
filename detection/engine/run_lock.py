"""One process at a time in a run folder: an exclusive lock file naming its holder.

Two runs writing to one folder interleave their metrics and leave a config
that does not match the weights. A run holds ``run.lock`` (PID, host, start
time, command) for as long as it writes. The lock is an OS lock
(``fcntl.flock``) on that file, so the kernel releases it when the holder dies,
even by SIGKILL: a lock file left behind by a dead process is stale, and the
next run takes it over and says so. On a file system without ``flock`` the
recorded PID is checked instead (same host only).
"""
import errno
import json
import os
import socket
import sys
import time
from pathlib import Path

from backbones.errors import UserError

try:
    import fcntl
except ImportError:  # not on Windows: fall back to the PID check
    fcntl = None

LOCK_FILE = "run.lock"


def _holder() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _alive(holder: dict) -> bool:
    """Whether the recorded holder still runs (only knowable on its own host)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


class RunLock:
    """``with RunLock(folder / LOCK_FILE, "the run folder ..."):`` while writing the run in ``folder``.

    ``flag``: the option that names another place, for the message when the lock is held.
    """

    def __init__(self, path, what="this run folder", flag="--output", log=print):
        self.path, self.what, self.flag, self.log = Path(path), what, flag, log
        self._fd = None

    def __enter__(self):
        while self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise UserError(f"cannot create the lock {self.path}: {err.strerror}; pass {self.flag} "
                                f"naming a folder you can write to") from None
            try:
                taken = self._try_lock(fd)
            except BaseException:
                os.close(fd)
                raise
            if not taken:
                os.close(fd)
                self._refuse()
            elif not self._same_file(fd):  # the holder removed the file between our open and lock: again
                os.close(fd)
            else:
                self._take(fd)
        return self

    def _try_lock(self, fd) -> bool:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as err:
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
                if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
        holder = _read(self.path)  # no flock here: trust the recorded PID
        return not holder or holder.get("pid") == os.getpid() or not _alive(holder)

    def _same_file(self, fd) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def _take(self, fd):
        previous = _read(self.path)
        if previous and previous.get("pid") != os.getpid() and self.log is not None:
            self.log(f"note: {self.path} was left by process {previous.get('pid')} on {previous.get('host')}, "
                     f"which no longer runs; taking it over")
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(_holder()) + "\n").encode())
        os.fsync(fd)
        self._fd = fd

    def _refuse(self):
        holder = _read(self.path)
        who = (f"process {holder.get('pid')} on {holder.get('host')} (since {holder.get('started')}: "
               f"{holder.get('command')})") if holder else "another process"
        raise UserError(f"{self.what} is in use by {who}; wait for it to finish or stop it, or pass "
                        f"another {self.flag} (the lock is {self.path})")

    def __exit__(self, *exc):
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still locked: nobody takes a lock on a file going away
            os.close(self._fd)
            self._fd = None
