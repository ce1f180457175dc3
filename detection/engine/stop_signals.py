"""Ctrl-C (SIGINT) and cluster preemption (SIGTERM) ask training to stop cleanly.

The first signal only sets a flag: the loop finishes the iteration it is in,
saves a checkpoint and prints how to resume, so the saved state is always
consistent. A second Ctrl-C interrupts at once.
"""
import signal
import threading


class StopRequest:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal_name = None
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()


def ignore_in_loader_worker(worker_id):
    """DataLoader workers leave Ctrl-C and SIGTERM to the training process, which stops them after saving.

    Slurm, Kubernetes and systemd signal the whole process group: a worker that died of that SIGTERM
    would take the training process down with it before it could save. The workers still end when the
    loader is shut down or the training process dies (PyTorch's workers watch their parent).
    """
    for s in StopRequest.SIGNALS:
        signal.signal(s, signal.SIG_IGN)
