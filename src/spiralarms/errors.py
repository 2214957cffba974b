"""Exceptions that reach the user as a one-line message."""

from __future__ import annotations


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, shortened, for one-line errors.

    Libraries (pandas, astropy, PIL, torch) raise multi-line messages; the command
    line promises one line.
    """
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


class SpiralArmsError(ValueError):
    """Bad input that the user can fix: the message names the file, row or column.

    The command line prints ``error: <message>`` on one line and exits with status 1.
    """


class ImageReadError(SpiralArmsError):
    """An image file could not be read or decoded.

    Attributes
    ----------
    path : str
        The file that failed.
    reason : str
        Why, in a few words (``"truncated JPEG"``, ``"not an image"``, ...).
    """

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class SpiralArmsWarning(UserWarning):
    """Something the user should know that does not stop the work (printed on one line)."""
