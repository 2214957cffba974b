"""Exact SDSS ids: 64-bit object ids such as ``587722981741363294`` need more than a double's 53 bits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spiralarms.errors import SpiralArmsError

__all__ = ["exact_ids"]


def exact_ids(values, source: str, column: str, non_integer: str = "error") -> pd.Series:
    """SDSS object ids as nullable Int64, exactly: they do not survive a trip through a double.

    Parameters
    ----------
    values : array-like
        Integers, integral floats below 2**53, or text (bytes too); empty cells,
        ``nan``, ``null``, ``none`` and ``<NA>`` become missing.
    source, column : str
        The file and column, for messages.
    non_integer : {"error", "missing"}, default "error"
        What text that is not an integer (or an integer beyond int64) becomes: an
        error naming its row (an id column of a catalogue), or a missing id (the
        ``id`` of a prediction table, which may be a file name).

    Returns
    -------
    pandas.Series of Int64

    Raises
    ------
    SpiralArmsError
        For booleans, non-integral or too-large floats, non-integer text and values
        beyond the int64 range; the message names the source, column and row.
    """
    if non_integer not in ("error", "missing"):
        raise SpiralArmsError(f"non_integer {non_integer!r}: choose 'error' or 'missing'")
    series = pd.Series(values)
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise SpiralArmsError(f"{source}: id column {column!r} holds booleans, not ids")
    if pd.api.types.is_integer_dtype(dtype):
        if pd.api.types.is_unsigned_integer_dtype(dtype) and series.max(skipna=True) > np.iinfo(np.int64).max:
            raise SpiralArmsError(f"{source}: id column {column!r} has values beyond the int64 range")
        return series.astype("Int64")
    if pd.api.types.is_float_dtype(dtype):
        array = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = array[np.isfinite(array)]
        if np.all(np.mod(finite, 1) == 0) and np.all(np.abs(finite) < 2**53):
            return pd.Series(pd.array([None if np.isnan(v) else int(v) for v in array], dtype="Int64"))
        raise SpiralArmsError(
            f"{source}: id column {column!r} is stored as floating point, which cannot hold "
            f"SDSS ids exactly; store it as integers or text"
        )
    out = []
    for position, value in enumerate(series.tolist()):
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        missing = value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
        text = "" if missing else str(value).strip()
        if text == "" or text.lower() in ("nan", "null", "none", "<na>"):
            out.append(None)
            continue
        try:
            number = int(text)
            problem = None if -(2**63) <= number < 2**63 else f"value {text} is beyond the int64 range"
        except ValueError:
            number, problem = None, f"has a non-integer value {text!r} in row {position + 1}"
        if problem is not None and non_integer == "error":
            raise SpiralArmsError(f"{source}: id column {column!r} {problem}")
        out.append(None if problem else number)
    return pd.Series(pd.array(out, dtype="Int64"))
