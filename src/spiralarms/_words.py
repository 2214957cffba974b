"""Counts in messages: ``counted(1, "galaxy", "galaxies")`` -> ``"1 galaxy"``."""

from __future__ import annotations

__all__ = ["counted"]


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun in the number it takes: ``"1 row"``, ``"2 rows"``, ``"0 galaxies"``.

    Parameters
    ----------
    n : int
    singular : str
    plural : str, optional
        Default: ``singular + "s"``.
    """
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
