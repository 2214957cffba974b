"""What the command modules share: choice options and JSON output."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, get_args

import typer

from spiralarms.errors import SpiralArmsError

__all__ = ["choices", "echo_json", "CatalogSchema", "GZ2Table", "MatchMethod", "DeletionBaseline", "MpajhuSource"]

# The choices of the options, spelled here rather than imported from the library so
# that ``spiralarms --help`` does not import pandas; tests/test_cli_help.py checks that
# each equals the library's own list.

#: ``--schema``: catalog.readers.read_catalog's schemas.
CatalogSchema = Literal["gz2", "kaggle", "auto"]
#: ``data gz2 --table``: acquire.sources.GZ2_TABLES.
GZ2Table = Literal["willett13", "hart16"]
#: ``mass --match``: science.crossmatch.MATCH_METHODS.
MatchMethod = Literal["auto", "id", "sky"]
#: ``explain --baseline``: explain.faithfulness.DELETION_BASELINES.
DeletionBaseline = Literal["blur", "sky"]
#: ``fetch-mpajhu --source``.
MpajhuSource = Literal["dr7", "skyserver"]


def choices(option: str, values: Sequence[str] | Any) -> dict[str, Any]:
    """Keyword arguments of a ``typer.Option`` that accepts one of ``values``.

    A value outside them is a :class:`~spiralarms.errors.SpiralArmsError` (exit status
    1 and ``error: --OPTION 'x': choose a, b or c``, as the contract has it), not a
    parser usage error (status 2), which is what a ``Literal`` annotation would give.

    Parameters
    ----------
    option : str
        The option as the user types it, e.g. ``"--schema"``.
    values : sequence of str or a ``typing.Literal``
        The accepted values, in the order the message names them.

    Returns
    -------
    dict
        ``callback`` and ``metavar``, to unpack into ``typer.Option(...)``.
    """
    accepted = tuple(get_args(values) or values)
    named = ", ".join(accepted[:-1]) + f" or {accepted[-1]}" if len(accepted) > 1 else accepted[0]

    def check(value: str | None) -> str | None:
        if value is not None and value not in accepted:
            raise SpiralArmsError(f"{option} {value!r}: choose {named}")
        return value

    return {"callback": check, "metavar": "[" + "|".join(accepted) + "]"}


def echo_json(payload: Any) -> None:
    """Print one JSON object on standard output (the ``--json`` contract)."""
    typer.echo(json.dumps(payload))
