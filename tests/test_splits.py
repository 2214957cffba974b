"""Stratified 70:30 split, per-class down-sampling and the paper's order of the two."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from spiralarms.data.splits import downsample_per_class, split_catalog, stratified_split
from spiralarms.errors import SpiralArmsError

# The paper's class sizes (section 2.1), 2-arm class reduced to keep the test fast.
COUNTS = {"1": 165, "2": 1500, "3": 298, "4": 28, "5+": 31, "?": 519}


def shuffled_labels(counts: dict[str, int] = COUNTS, seed: int = 0) -> np.ndarray:
    labels = np.concatenate([[name] * n for name, n in counts.items()]).astype(object)
    return np.random.default_rng(seed).permutation(labels)


def test_stratified_split_proportions_per_class() -> None:
    labels = shuffled_labels()
    train, val = stratified_split(labels, val_fraction=0.3, seed=0)
    assert len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert train.dtype == np.int64 and val.dtype == np.int64
    val_counts = Counter(labels[val])
    for name, n in COUNTS.items():
        assert abs(val_counts[name] - 0.3 * n) <= 1, (name, val_counts[name], n)


def test_stratified_split_is_seeded() -> None:
    labels = pd.Series(shuffled_labels())
    first = stratified_split(labels, seed=7)
    again = stratified_split(labels, seed=7)
    other = stratified_split(labels, seed=8)
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_stratified_split_treats_integer_and_string_labels_alike() -> None:
    labels = shuffled_labels({"1": 20, "2": 40, "3": 10})
    as_int = labels.astype(int)
    for a, b in zip(stratified_split(labels, seed=3), stratified_split(as_int, seed=3), strict=True):
        np.testing.assert_array_equal(a, b)


def test_singleton_class_goes_to_training() -> None:
    labels = np.array(["2"] * 20 + ["4"] + ["3"] * 10, dtype=object)
    train, val = stratified_split(labels, seed=0)
    assert 20 in train and 20 not in val
    assert len(train) + len(val) == len(labels)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, True, "0.3"])
def test_stratified_split_refuses_bad_fractions(fraction) -> None:
    with pytest.raises(SpiralArmsError, match="val_fraction"):
        stratified_split(shuffled_labels(), val_fraction=fraction)


def test_stratified_split_refuses_missing_labels_and_tiny_input() -> None:
    with pytest.raises(SpiralArmsError, match="missing label"):
        stratified_split(pd.Series(["1", None, "2", "2"]))
    with pytest.raises(SpiralArmsError, match="at least two"):
        stratified_split(["2"])
    # 6 classes cannot all appear in a validation set of 3
    with pytest.raises(SpiralArmsError, match="cannot split"):
        stratified_split(shuffled_labels({c: 2 for c in ["1", "2", "3", "4", "5+", "?"]}), val_fraction=0.2)


def test_downsample_caps_majority_and_keeps_minority() -> None:
    labels = shuffled_labels()
    kept = downsample_per_class(labels, cap=300, seed=0)
    assert np.all(np.diff(kept) > 0) and kept.dtype == np.int64
    counts = Counter(labels[kept])
    assert counts == {name: min(n, 300) for name, n in COUNTS.items()}
    for name in ("1", "3", "4", "5+"):  # minority classes kept whole: the same rows
        np.testing.assert_array_equal(np.flatnonzero(labels == name), kept[labels[kept] == name])


def test_downsample_is_seeded_and_cap_none_keeps_all() -> None:
    labels = pd.Series(shuffled_labels())
    np.testing.assert_array_equal(downsample_per_class(labels, seed=1), downsample_per_class(labels, seed=1))
    assert not np.array_equal(downsample_per_class(labels, seed=1), downsample_per_class(labels, seed=2))
    np.testing.assert_array_equal(downsample_per_class(labels, cap=None), np.arange(len(labels)))


@pytest.mark.parametrize("cap", [0, -1, 2.5, True])
def test_downsample_refuses_bad_caps(cap) -> None:
    with pytest.raises(SpiralArmsError, match="cap"):
        downsample_per_class(["1", "2"], cap=cap)


def test_split_catalog_caps_the_training_pool_only() -> None:
    labels = shuffled_labels()
    table = pd.DataFrame({"file": [f"{i}.jpg" for i in range(len(labels))], "label": labels})
    table.index = table.index + 1000  # an index that is not 0..n-1 must survive
    train, val = split_catalog(table, val_fraction=0.3, seed=0, cap=300)
    assert set(train.index).isdisjoint(val.index)
    train_counts = train["label"].value_counts()
    assert train_counts.max() == 300
    assert train_counts["2"] == 300 and train_counts["?"] == 300
    # minority classes keep their full 70 %
    assert abs(train_counts["1"] - 0.7 * 165) <= 1 and abs(train_counts["4"] - 0.7 * 28) <= 1
    # validation is the plain stratified 30 %, not down-sampled
    _, val_idx = stratified_split(labels, val_fraction=0.3, seed=0)
    assert list(val.index) == list(table.index[val_idx])
    assert val["label"].value_counts()["2"] == pytest.approx(450, abs=1)
    # rows come straight from the input table
    pd.testing.assert_frame_equal(train, table.loc[train.index])


def test_split_catalog_without_cap_keeps_everything() -> None:
    table = pd.DataFrame({"label": shuffled_labels()})
    train, val = split_catalog(table, cap=None)
    assert len(train) + len(val) == len(table)


def test_split_catalog_checks_its_input() -> None:
    with pytest.raises(SpiralArmsError, match="no column 'arms'"):
        split_catalog(pd.DataFrame({"label": ["1", "2"]}), label_column="arms")
    with pytest.raises(SpiralArmsError, match="DataFrame"):
        split_catalog(["1", "2"])
