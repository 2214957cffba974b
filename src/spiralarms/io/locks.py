"""One run at a time into one output: the lock that resumable commands hold.

Two runs of ``predict``, ``prepare``, ``train`` or ``demo`` into the same output (the
same job submitted twice, say) would each resume the other's unfinished files and
remove the other's temporary ones. Each holds its output from its start to its end
with the operating system's file lock (``flock``) on a hidden file beside the
output, ``.<name>.lock``; a second run stops at once with one line.

The lock file is removed when the run ends. A killed run's lock goes with its
process; only its empty file stays, and the next run takes it over and removes it.
"""

from __future__ import annotations

import contextlib
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
    fd : int, optional
        The open, locked lock file; None where nothing is held.
    path : path, optional
        Its name, removed on release.
    """

    def __init__(self, fd: int | None = None, path: Path | None = None):
        self._fd, self._path = fd, path

    @property
    def held(self) -> bool:
        """Whether an operating-system lock is held (False where unsupported or released)."""
        return self._fd is not None

    def release(self) -> None:
        """Remove the lock file, then let go of the lock (so no run takes over a removed file unawares)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self._path)
        os.close(self._fd)  # closing the file releases its flock
        self._fd = None

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
        The held lock: release it at the end (it goes with the process too). Where
        the lock file cannot be made or locked (a read-only folder, a filesystem
        without ``flock``, Windows) it holds nothing and the run goes on unguarded;
        a run that cannot write its output then says so itself.

    Raises
    ------
    SpiralArmsError
        If another run holds ``out``.

    Notes
    -----
    Written on ``fcntl.flock`` rather than the ``filelock`` package because that one
    keeps its lock file for ever (removing it safely needs the check below): here
    the holder removes the file before letting go, and a run that took the lock of
    a file removed meanwhile (its inode no longer the name's) tries again.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        return OutputLock()
    path = lock_path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise SpiralArmsError(
                    f"{out}: another {what} is writing it now; wait for it to end, or give another output"
                ) from None
            except OSError:
                os.close(fd)
                raise
            try:
                named = os.stat(path)
            except FileNotFoundError:
                named = None
            mine = os.fstat(fd)
            if named is not None and (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino):
                return OutputLock(fd, path)
            os.close(fd)  # the run before removed this file as it ended: lock the new one
    except OSError:
        return OutputLock()
