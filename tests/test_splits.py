"""Stratified 70:30 split, per-class down-sampling and the paper's order of the two (cap, then split)."""

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


def test_split_catalog_caps_before_the_split_by_default() -> None:
    """The paper: cap every class at 300, then split the capped set 70:30."""
    labels = shuffled_labels()
    table = pd.DataFrame({"file": [f"{i}.jpg" for i in range(len(labels))], "label": labels})
    table.index = table.index + 1000
    train, val = split_catalog(table, val_fraction=0.3, seed=0, cap=300)
    assert set(train.index).isdisjoint(val.index)
    capped = {name: min(n, 300) for name, n in COUNTS.items()}
    together = pd.concat([train, val])["label"].value_counts().to_dict()
    assert together == capped
    val_counts = val["label"].value_counts()
    for name, n in capped.items():
        # validation: about 30 % of the capped count (90 of the 300 m=2 galaxies, not 450)
        assert abs(val_counts[name] - 0.3 * n) <= 1, (name, val_counts[name], n)
    # the two steps are the library functions in that order
    kept = downsample_per_class(labels, cap=300, seed=0)
    _, val_idx = stratified_split(labels[kept], val_fraction=0.3, seed=0)
    assert list(val.index) == list(table.index[kept[val_idx]])
    assert list(train.index) == sorted(train.index) and list(val.index) == sorted(val.index)


def test_split_catalog_caps_the_training_pool_only_as_an_option() -> None:
    labels = shuffled_labels()
    table = pd.DataFrame({"file": [f"{i}.jpg" for i in range(len(labels))], "label": labels})
    table.index = table.index + 1000  # an index that is not 0..n-1 must survive
    train, val = split_catalog(table, val_fraction=0.3, seed=0, cap=300, cap_scope="train")
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


def test_split_catalog_strata_column_keeps_the_six_class_split_for_a_merge() -> None:
    six = shuffled_labels()
    merged = np.where(np.isin(six, ["3", "4"]), "3,4", six)
    table = pd.DataFrame({"label": merged, "label_original": six})
    for scope in ("dataset", "train"):
        six_train, six_val = split_catalog(pd.DataFrame({"label": six}), cap=300, seed=4, cap_scope=scope)
        train, val = split_catalog(table, cap=300, seed=4, cap_scope=scope, strata_column="label_original")
        assert list(val.index) == list(six_val.index) and list(train.index) == list(six_train.index)
        # stratifying by the merged label instead would cap 3,4 (326 galaxies) at 300
        _, other_val = split_catalog(table, cap=300, seed=4, cap_scope=scope)
        assert list(other_val.index) != list(six_val.index)


def test_split_catalog_checks_its_input() -> None:
    with pytest.raises(SpiralArmsError, match="no column 'arms'"):
        split_catalog(pd.DataFrame({"label": ["1", "2"]}), label_column="arms")
    with pytest.raises(SpiralArmsError, match="DataFrame"):
        split_catalog(["1", "2"])
    with pytest.raises(SpiralArmsError, match="cap_scope 'val'"):
        split_catalog(pd.DataFrame({"label": ["1", "2"]}), cap_scope="val")
    with pytest.raises(SpiralArmsError, match="no column 'label_original'"):
        split_catalog(pd.DataFrame({"label": ["1", "2"]}), strata_column="label_original")
