"""Catalogue reading and writing: formats, id exactness, validation, image paths."""

from __future__ import annotations

import gzip
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from spiralarms.catalog import schema as sch
from spiralarms.catalog.readers import detect_schema, read_catalog, resolve_image_paths, write_table
from spiralarms.errors import SpiralArmsError
from spiralarms.io.tables import fits_warnings_if_read

BIG_ID = 8647474690312307154  # an SDSS objid: not representable as a double
REAL_TABLE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "gz2-tables"
    / "willett13_table5_stripe82_coadd.csv.gz"
)


def gz2_frame(n: int = 4, id_column: str = "dr7objid") -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({id_column: BIG_ID + np.arange(n, dtype=np.int64)})
    for column in sch.gz2_required_columns():
        if column.endswith(sch.COUNT):
            frame[column] = rng.integers(0, 60, n)
        else:
            frame[column] = rng.random(n).round(3)
    frame["sample"] = "original"
    frame["ra"] = rng.uniform(0, 360, n)
    return frame


def kaggle_frame(n: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"GalaxyID": 100008 + np.arange(n)})
    for column in sch.kaggle_required_columns():
        frame[column] = rng.random(n).round(4)
    return frame


def write_fits(frame: pd.DataFrame, path: Path) -> None:
    Table.from_pandas(frame).write(path, format="fits", overwrite=True)


@pytest.mark.parametrize("name", ["cat.csv", "cat.csv.gz", "cat.parquet", "cat.pq", "cat.fits", "cat.fits.gz"])
def test_round_trip(tmp_path, name):
    frame = gz2_frame()
    path = tmp_path / name
    if name.startswith("cat.fits"):
        write_fits(frame, path)
    elif name.endswith((".parquet", ".pq")):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    table, schema = read_catalog(path, return_schema=True)
    assert schema == "gz2"
    assert list(table.columns) == list(frame.columns)
    assert table["dr7objid"].dtype == np.int64
    assert table["dr7objid"].tolist() == frame["dr7objid"].tolist()
    assert table["dr7objid"].iloc[0] == BIG_ID
    votes = sch.gz2_required_columns()
    np.testing.assert_allclose(table[votes].to_numpy(float), frame[votes].to_numpy(float))
    assert table["sample"].tolist() == ["original"] * len(frame)  # FITS bytes decoded


def test_plain_gz_suffix_is_compressed_csv(tmp_path):
    path = tmp_path / "votes.gz"
    with gzip.open(path, "wt") as handle:
        gz2_frame().to_csv(handle, index=False)
    assert read_catalog(path)["dr7objid"].iloc[0] == BIG_ID


@pytest.mark.parametrize("suffix", [".csv", ".fits", ".parquet"])
def test_objid_renamed_to_dr7objid(tmp_path, suffix):
    frame = gz2_frame(id_column="objid")
    path = tmp_path / f"willett{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".fits":
        write_fits(frame, path)
    else:
        frame.to_parquet(path)
    table = read_catalog(path)
    assert "objid" not in table.columns
    assert table.columns[0] == "dr7objid"
    assert table["dr7objid"].tolist() == frame["objid"].tolist()


def test_big_id_exact_through_csv_text(tmp_path):
    path = tmp_path / "ids.csv"
    frame = gz2_frame(2)
    frame["dr7objid"] = [BIG_ID, BIG_ID + 1]  # adjacent: a double would merge them
    frame.to_csv(path, index=False)
    assert str(BIG_ID) in path.read_text()
    table = read_catalog(path)
    assert table["dr7objid"].tolist() == [BIG_ID, BIG_ID + 1]
    assert float(BIG_ID) == float(BIG_ID + 1)  # why float would be wrong


def test_big_id_exact_with_missing_votes(tmp_path):
    # A NaN in the table must not turn the id column into floats.
    frame = gz2_frame(2)
    frame.loc[0, sch.gz2_required_columns()[0]] = np.nan
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    table = read_catalog(path)
    assert table["dr7objid"].tolist() == frame["dr7objid"].tolist()
    assert np.isnan(table[sch.gz2_required_columns()[0]].iloc[0])


def test_non_integer_ids_stay_text(tmp_path):
    frame = kaggle_frame(2)
    frame["GalaxyID"] = ["J1200+01", "J1200+02"]
    path = tmp_path / "k.csv"
    frame.to_csv(path, index=False)
    table, schema = read_catalog(path, return_schema=True)
    assert schema == "kaggle"
    assert table["GalaxyID"].tolist() == ["J1200+01", "J1200+02"]


def test_float_ids_that_lost_precision_are_refused(tmp_path):
    frame = gz2_frame(2)
    frame["dr7objid"] = frame["dr7objid"].astype(float)
    path = tmp_path / "f.parquet"
    frame.to_parquet(path)
    with pytest.raises(SpiralArmsError, match="floating point"):
        read_catalog(path)


def test_kaggle_schema_detected(tmp_path):
    path = tmp_path / "training_solutions_rev1.csv"
    kaggle_frame().to_csv(path, index=False)
    table, schema = read_catalog(path, return_schema=True)
    assert schema == "kaggle"
    assert table["GalaxyID"].dtype == np.int64


def test_detect_schema():
    assert detect_schema(["objid", "x"]) == "gz2"
    assert detect_schema(["GalaxyID"]) == "kaggle"
    with pytest.raises(SpiralArmsError, match="GalaxyID"):
        detect_schema(["id", "ra"])


def test_explicit_schema_needs_its_id(tmp_path):
    path = tmp_path / "c.csv"
    gz2_frame().to_csv(path, index=False)
    with pytest.raises(SpiralArmsError, match="GalaxyID"):
        read_catalog(path, schema="kaggle")


def test_missing_column_error_names_it(tmp_path):
    frame = gz2_frame().drop(columns=["t04_spiral_a08_spiral_count", "t11_arms_number_a37_cant_tell_debiased"])
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SpiralArmsError) as info:
        read_catalog(path)
    message = str(info.value)
    assert "missing column 't04_spiral_a08_spiral_count'" in message
    assert "2 of the 16" in message
    assert str(path) in message and "\n" not in message


def test_non_numeric_value_names_column_and_row(tmp_path):
    frame = gz2_frame(5)
    column = "t02_edgeon_a05_no_weighted_fraction"
    frame[column] = frame[column].astype(object)
    frame.loc[3, column] = "high"
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SpiralArmsError) as info:
        read_catalog(path)
    message = str(info.value)
    assert column in message and "'high'" in message
    assert "row 4 (line 5)" in message
    assert path.read_text().splitlines()[4].count("high") == 1  # line 5 of the file


def test_empty_cells_are_nan(tmp_path):
    frame = gz2_frame(3)
    column = "t04_spiral_a08_spiral_count"
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    text = path.read_text().splitlines()
    header = text[0].split(",")
    cells = text[2].split(",")
    cells[header.index(column)] = ""
    text[2] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    table = read_catalog(path)
    assert np.isnan(table[column].iloc[1])
    assert table[column].notna().sum() == 2


def test_missing_file(tmp_path):
    with pytest.raises(SpiralArmsError, match="nothere.csv: no such file"):
        read_catalog(tmp_path / "nothere.csv")


def test_unknown_suffix(tmp_path):
    path = tmp_path / "cat.xlsx"
    path.write_text("x")
    with pytest.raises(SpiralArmsError) as info:
        read_catalog(path)
    assert "cat.xlsx" in str(info.value)
    for suffix in (".csv", ".csv.gz", ".parquet", ".fits"):
        assert suffix in str(info.value)


@pytest.mark.parametrize("name", ["bad.parquet", "bad.fits", "bad.csv.gz"])
def test_corrupt_file_is_one_line_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00\x01 this is not a table \xff" * 10)
    with pytest.raises(SpiralArmsError) as info:
        read_catalog(path)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_a_damaged_fits_catalogue_gives_the_error_alone(tmp_path):
    path = tmp_path / "damaged.fits"
    path.write_bytes(b"SIMPLE  = T" + b" " * 20)  # astropy warns about such a header, then fails
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SpiralArmsError, match="damaged.fits: cannot read it as fits"):
            read_catalog(path)
    assert not caught, [str(w.message) for w in caught]


def test_fits_warnings_are_shown_when_the_file_was_read():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits_warnings_if_read():
            warnings.warn("nonstandard keyword", UserWarning)
        with pytest.raises(ValueError), fits_warnings_if_read():
            warnings.warn("header of a file that then fails", UserWarning)
            raise ValueError("cannot read")
    assert [str(w.message) for w in caught] == ["nonstandard keyword"]


def test_empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(SpiralArmsError, match="empty.csv"):
        read_catalog(path)


def test_duplicate_id(tmp_path):
    frame = gz2_frame(4)
    frame.loc[3, "dr7objid"] = frame.loc[1, "dr7objid"]
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SpiralArmsError) as info:
        read_catalog(path)
    message = str(info.value)
    assert f"duplicate id {BIG_ID + 1}" in message
    assert "rows 2 and 4" in message


def test_missing_id(tmp_path):
    frame = gz2_frame(3)
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    lines = path.read_text().splitlines()
    lines[3] = lines[3][lines[3].index(",") :]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpiralArmsError, match="row 3 .* no id"):
        read_catalog(path)


@pytest.mark.parametrize("name", ["out/sel.csv", "out/deep/sel.csv.gz", "out/sel.parquet"])
def test_write_table_round_trip(tmp_path, name):
    frame = gz2_frame(3)
    frame["label"] = ["2", "5+", "?"]
    path = write_table(frame, tmp_path / name)
    assert path.is_file()
    back = read_catalog(path)
    assert back["dr7objid"].tolist() == frame["dr7objid"].tolist()
    assert back["label"].tolist() == ["2", "5+", "?"]


def test_class_names_stay_text_in_csv(tmp_path):
    frame = gz2_frame(2)
    frame["label"] = ["1", "2"]  # would read back as integers 1, 2
    frame["true_class"] = ["2", "3"]
    path = write_table(frame, tmp_path / "sel.csv")
    back = read_catalog(path)
    assert back["label"].tolist() == ["1", "2"]
    assert back["true_class"].tolist() == ["2", "3"]


def test_write_table_unknown_suffix(tmp_path):
    with pytest.raises(SpiralArmsError, match=r"\.parquet"):
        write_table(gz2_frame(1), tmp_path / "sel.json")


def test_resolve_image_paths_from_file_column(tmp_path):
    catalog = tmp_path / "cats" / "c.csv"
    frame = gz2_frame(3)
    frame["file"] = ["images/a.jpg", str(tmp_path / "abs.jpg"), None]
    out = resolve_image_paths(frame, catalog)
    assert out["file"][0] == os.path.abspath(tmp_path / "cats" / "images" / "a.jpg")
    assert out["file"][1] == str(tmp_path / "abs.jpg")
    assert out["file"][2] is None
    assert len(out) == 3
    assert frame["file"][0] == "images/a.jpg"  # input untouched


def test_resolve_image_paths_with_mapping(tmp_path):
    frame = gz2_frame(3)
    mapping = pd.DataFrame(
        {
            "objid": [BIG_ID, BIG_ID + 1, BIG_ID + 1, 42],
            "sample": ["original", "stripe82", "original", "original"],
            "asset_id": [11, 21, 22, 99],
        }
    )
    mapping_path = tmp_path / "gz2_filename_mapping.csv"
    mapping.to_csv(mapping_path, index=False)
    images = tmp_path / "images_gz2" / "images"
    out = resolve_image_paths(frame, tmp_path / "c.csv", mapping=mapping_path, image_dir=images)
    # The second galaxy maps to two assets; its sample ("original") picks 22.
    assert out["file"][0] == os.path.abspath(images / "11.jpg")
    assert out["file"][1] == os.path.abspath(images / "22.jpg")
    assert out["file"][2] is None  # not in the mapping: kept, without a file
    assert out["dr7objid"].tolist() == frame["dr7objid"].tolist()


def test_resolve_image_paths_mapping_missing_column(tmp_path):
    bad = pd.DataFrame({"objid": [1], "name": ["x"]})
    with pytest.raises(SpiralArmsError, match="asset_id"):
        resolve_image_paths(gz2_frame(1), tmp_path / "c.csv", mapping=bad)


def test_resolve_image_paths_by_id(tmp_path):
    kaggle = kaggle_frame(2)
    out = resolve_image_paths(kaggle, tmp_path / "k.csv", image_dir=tmp_path / "images_training_rev1")
    folder = tmp_path / "images_training_rev1"
    assert out["file"].tolist() == [os.path.abspath(folder / f"{i}.jpg") for i in kaggle["GalaxyID"]]
    # Default image folder: <catalogue folder>/images (the layout of `spiralarms synth`).
    gz2 = gz2_frame(2)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / f"{BIG_ID}.jpg").write_bytes(b"jpg")
    out = resolve_image_paths(gz2, tmp_path / "catalog.csv", check_exists=True)
    assert out["file"].tolist() == [os.path.abspath(tmp_path / "images" / f"{BIG_ID}.jpg"), None]


@pytest.mark.realdata
def test_real_willett13_table():
    if not REAL_TABLE.is_file():
        pytest.skip(f"real GZ2 table not found at {REAL_TABLE}")
    start = time.perf_counter()
    table, schema = read_catalog(REAL_TABLE, return_schema=True)
    elapsed = time.perf_counter() - start
    assert schema == "gz2"
    assert table.shape == (19761, 228)
    assert table["dr7objid"].dtype == np.int64
    assert table["dr7objid"].is_unique
    # The first id, read as text straight from the file, is kept to the last digit.
    with gzip.open(REAL_TABLE, "rt") as handle:
        handle.readline()
        first_id = int(handle.readline().split(",", 1)[0])
    assert table["dr7objid"].iloc[0] == first_id
    assert elapsed < 30
