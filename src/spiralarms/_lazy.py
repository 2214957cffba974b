"""Lazy exports: a package names its public functions without importing their modules.

``import spiralarms`` must stay fast (the command line's ``--help`` imports it), so the
public names resolve on first use, through a module ``__getattr__`` (PEP 562).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose names live in submodules.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (for the error message).
    exports : mapping of str to str
        Public name -> the module that defines it under that name.

    Returns
    -------
    (callable, callable)
        Assign them to the package's ``__getattr__`` and ``__dir__``.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
