"""One run at a time into one output: the lock that resumable commands hold.

Two runs of ``predict``, ``prepare`` or ``train`` into the same output (the same job
submitted twice, say) would each resume the other's unfinished files and remove the
other's temporary ones. Each holds its output from its start to its end with the
operating system's file lock (``flock``, through :mod:`filelock`) on a hidden empty
file beside the output, ``.<name>.lock``; a second run stops at once with one line.

A killed run's lock goes with its process. The lock file itself stays: removing it
while another run opens it would let two runs hold two files of the same name.
"""

from __future__ import annotations

import os
from pathlib import Path

from spiralarms.errors import SpiralArmsError

__all__ = ["lock_path", "hold_output", "OutputLock"]


def lock_path(out: str | os.PathLike) -> Path:
    """The lock file of an output: ``.<name>.lock`` beside it."""
    out = Path(out).expanduser()
    return out.with_name(f".{out.name}.lock")


class OutputLock:
    """A held output: ``release()`` it, or use it as a context manager.

    Parameters
    ----------
    lock : filelock.FileLock or None
        The acquired lock; None where the filesystem has no locks (nothing to release).
    """

    def __init__(self, lock=None):
        self._lock = lock

    @property
    def held(self) -> bool:
        """Whether an operating-system lock is held (False where unsupported or released)."""
        return self._lock is not None

    def release(self) -> None:
        """Let other runs write the output."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def hold_output(out: str | os.PathLike, what: str = "run") -> OutputLock:
    """Hold ``out`` for this run, or refuse while another run holds it.

    Parameters
    ----------
    out : path
        The output file or folder (need not exist yet).
    what : str, default "run"
        The kind of run, for the message (``"prediction run"``).

    Returns
    -------
    OutputLock
        The held lock: release it at the end (it goes with the process too). On a
        filesystem without such locks (some network mounts) it holds nothing and
        the run goes on unguarded.

    Raises
    ------
    SpiralArmsError
        If another run holds ``out``.
    """
    from filelock import FileLock, Timeout

    path = lock_path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # filelock 4: never fall back to a plain lock file, which a killed run leaves held
            lock = FileLock(path, timeout=0, fallback_to_soft=False)
        except TypeError:  # filelock 3 has no such fallback
            lock = FileLock(path, timeout=0)
        lock.acquire()
    except Timeout:
        raise SpiralArmsError(
            f"{out}: another {what} is writing it now; wait for it to end, or give another output"
        ) from None
    except (OSError, NotImplementedError):
        return OutputLock(None)
    return OutputLock(lock)
