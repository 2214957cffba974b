"""Train/validation split and per-class down-sampling, in the paper's order.

The paper (sections 3.5 and 4.2.2) caps every class at 300 galaxies (the majority
classes randomly sub-sampled) and then splits the capped set 70:30 into training and
validation sets, stratified by class: its validation set holds about 90 galaxies of
each large class. That is :func:`split_catalog`'s default (``cap_scope="dataset"``).
Capping the training pool only (``cap_scope="train"``: split first, validation keeps
the natural class mix) is an option, never the paper's protocol (see
``docs/training.md``).

Both steps can be stratified by a column other than the label (``strata_column``):
the six T11 classes of a merged run, so that every class configuration of Figure 7
down-samples and splits the same galaxies and only their labels differ.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from spiralarms.config import CAP_SCOPES
from spiralarms.errors import SpiralArmsError

__all__ = ["CAP_SCOPES", "stratified_split", "downsample_per_class", "split_catalog"]


def _as_labels(labels: pd.Series | np.ndarray | Sequence) -> np.ndarray:
    """Class names as a 1-D object array of str; refuse missing labels."""
    values = labels.to_numpy() if isinstance(labels, (pd.Series, pd.Index)) else np.asarray(labels, dtype=object)
    if values.ndim != 1:
        raise SpiralArmsError(f"labels must be one-dimensional, got shape {values.shape}")
    missing = pd.isna(values)
    if missing.any():
        raise SpiralArmsError(
            f"{int(missing.sum())} missing label(s), first at position {int(np.flatnonzero(missing)[0])}"
        )
    # Compare as strings so that a class read from CSV as the integer 2 equals "2".
    return np.array([str(v) for v in values], dtype=object)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise SpiralArmsError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def stratified_split(
    labels: pd.Series | np.ndarray | Sequence, val_fraction: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split positions into training and validation sets, stratified by class.

    Uses :func:`sklearn.model_selection.train_test_split` with ``stratify``, so each
    class contributes about ``val_fraction`` of its members to validation.

    Parameters
    ----------
    labels : pandas.Series, numpy.ndarray or sequence
        Class name of each item (compared as strings).
    val_fraction : float, default 0.3
        Fraction for validation, strictly between 0 and 1 (the paper: 70:30).
    seed : int, default 0
        Random seed; the same seed and labels give the same split.

    Returns
    -------
    train_idx, val_idx : numpy.ndarray
        Sorted int64 positions (not index labels) into ``labels``; disjoint, and
        together they cover every position.

    Raises
    ------
    SpiralArmsError
        If ``val_fraction`` is not in (0, 1), a label is missing, there are fewer than
        two items, or the validation set would be too small to hold every class.

    Notes
    -----
    A class with a single member cannot be stratified (scikit-learn refuses it); the
    member goes to training, where a model can at least learn from it, and the class
    is absent from validation.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real) or not 0.0 < val_fraction < 1.0:
        raise SpiralArmsError(f"val_fraction must be strictly between 0 and 1, got {val_fraction!r}")
    seed = _check_seed(seed)
    y = _as_labels(labels)
    if len(y) < 2:
        raise SpiralArmsError(f"need at least two items to split, got {len(y)}")
    names, counts = np.unique(y, return_counts=True)
    singletons = np.isin(y, names[counts == 1])
    positions = np.arange(len(y))
    pool, forced_train = positions[~singletons], positions[singletons]
    if len(pool) < 2:
        raise SpiralArmsError("every class has a single member: nothing can be stratified")
    try:
        train_idx, val_idx = train_test_split(
            pool, test_size=float(val_fraction), random_state=seed, shuffle=True, stratify=y[pool]
        )
    except ValueError as exc:
        # e.g. a validation set smaller than the number of classes
        raise SpiralArmsError(f"cannot split {len(pool)} items stratified by class: {exc}") from None
    train_idx = np.sort(np.concatenate([train_idx, forced_train])).astype(np.int64)
    return train_idx, np.sort(val_idx).astype(np.int64)


def downsample_per_class(
    labels: pd.Series | np.ndarray | Sequence, cap: int | None = 300, seed: int = 0
) -> np.ndarray:
    """Cap every class at ``cap`` members by random sub-sampling (paper section 4.2.2).

    Classes larger than ``cap`` (the majority classes, ``2`` and ``?`` in GZ2) are
    sub-sampled without replacement; smaller classes are kept whole.

    Parameters
    ----------
    labels : pandas.Series, numpy.ndarray or sequence
        Class name of each item (compared as strings).
    cap : int or None, default 300
        Largest number of items kept per class; ``None`` keeps everything.
    seed : int, default 0
        Random seed; the same seed and labels give the same selection.

    Returns
    -------
    numpy.ndarray
        Sorted int64 positions into ``labels`` of the items kept.

    Raises
    ------
    SpiralArmsError
        If ``cap`` is not a positive integer or None, or a label is missing.
    """
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, numbers.Integral) or cap < 1):
        raise SpiralArmsError(f"cap must be a positive integer or None, got {cap!r}")
    seed = _check_seed(seed)
    y = _as_labels(labels)
    if cap is None:
        return np.arange(len(y), dtype=np.int64)
    rng = np.random.default_rng(seed)
    kept = []
    for name in np.unique(y):  # sorted class names: the draw does not depend on row order of classes
        members = np.flatnonzero(y == name)
        if len(members) > cap:
            members = rng.choice(members, size=int(cap), replace=False)
        kept.append(members)
    if not kept:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.concatenate(kept)).astype(np.int64)


def split_catalog(
    selected_df: pd.DataFrame,
    val_fraction: float = 0.3,
    seed: int = 0,
    cap: int | None = 300,
    label_column: str = "label",
    *,
    cap_scope: str = "dataset",
    strata_column: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a selected catalogue the paper's way: cap every class, then split 70:30.

    With ``cap_scope="dataset"`` (the paper):

    1. :func:`downsample_per_class` of all rows, at ``cap`` per class;
    2. :func:`stratified_split` of the rows kept (``val_fraction`` to validation), so
       validation holds about ``val_fraction`` of each capped class.

    With ``cap_scope="train"`` the two steps swap: the stratified split of all rows,
    then the cap on the training pool only; validation keeps the natural class mix.

    Parameters
    ----------
    selected_df : pandas.DataFrame
        The clean sample, one row per galaxy, with a label column.
    val_fraction : float, default 0.3
        Validation fraction, in (0, 1).
    seed : int, default 0
        Random seed of both steps (the *split seed*: a run's training seed may differ).
    cap : int or None, default 300
        Per-class cap; ``None`` uses all data (Table 3, "All Data").
    label_column : str, default "label"
        Column holding the class names.
    cap_scope : {"dataset", "train"}, default "dataset"
        Where the cap applies (see above).
    strata_column : str, optional
        Column whose classes the cap and the stratification use, default
        ``label_column``. Give the six-class ``label_original`` of a merged table and
        every merge caps and splits the same galaxies as the six-class run with the
        same seed.

    Returns
    -------
    train_df, val_df : pandas.DataFrame
        Rows of ``selected_df`` (original index kept, so rows trace back), in their
        original order.

    Raises
    ------
    SpiralArmsError
        If the table is not a DataFrame, lacks a named column, ``cap_scope`` is
        unknown, or the split fails.
    """
    if not isinstance(selected_df, pd.DataFrame):
        raise SpiralArmsError(f"expected a pandas DataFrame, got {type(selected_df).__name__}")
    if cap_scope not in CAP_SCOPES:
        raise SpiralArmsError(f"cap_scope {cap_scope!r}: choose {' or '.join(CAP_SCOPES)}")
    strata_column = label_column if strata_column is None else strata_column
    for column in dict.fromkeys((label_column, strata_column)):
        if column not in selected_df.columns:
            raise SpiralArmsError(
                f"no column {column!r} in the catalogue (columns: {', '.join(map(str, selected_df.columns))})"
            )
    strata = selected_df[strata_column]
    if cap_scope == "dataset":
        kept = downsample_per_class(strata, cap=cap, seed=seed)
        train_idx, val_idx = stratified_split(strata.iloc[kept], val_fraction=val_fraction, seed=seed)
        return selected_df.iloc[kept[train_idx]], selected_df.iloc[kept[val_idx]]
    train_idx, val_idx = stratified_split(strata, val_fraction=val_fraction, seed=seed)
    kept = downsample_per_class(strata.iloc[train_idx], cap=cap, seed=seed)
    return selected_df.iloc[train_idx[kept]], selected_df.iloc[val_idx]
