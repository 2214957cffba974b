"""GalaxyDataset: shapes, labels, unreadable files (raise or report) and DataLoader use."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from spiralarms.catalog.classes import arm_classes
from spiralarms.data.dataset import GalaxyDataset, collate_with_errors
from spiralarms.data.transforms import build_eval_transform, build_train_transform
from spiralarms.errors import ImageReadError, SpiralArmsError

SHARED_CUTOUTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sdss-gz-cutouts"
CLASSES = arm_classes()  # ("1", "2", "3", "4", "5+", "?")
SIDE = 64


@pytest.fixture
def catalog(tmp_path: Path) -> pd.DataFrame:
    """Six PNGs whose brightness encodes their row (row k has value 10 * (k + 1))."""
    folder = tmp_path / "images"
    folder.mkdir()
    rows = []
    for k, label in enumerate(CLASSES):
        name = f"g{k}.png"
        Image.fromarray(np.full((SIDE, SIDE, 3), 10 * (k + 1), dtype=np.uint8)).save(folder / name)
        rows.append({"dr7objid": 1000 + k, "file": name, "label": label})
    return pd.DataFrame(rows)


def test_items_have_the_right_shape_label_and_pixels(tmp_path: Path, catalog: pd.DataFrame) -> None:
    ds = GalaxyDataset(catalog, CLASSES, image_root=tmp_path / "images")
    assert len(ds) == 6
    for k in range(len(ds)):
        image, label = ds[k]
        assert tuple(image.shape) == (3, SIDE, SIDE) and image.dtype == torch.float32
        assert label == k  # label index = position of the class in CLASSES
        assert torch.allclose(image, torch.full_like(image, 10 * (k + 1) / 255.0))


def test_transform_and_grey_are_applied(tmp_path: Path, catalog: pd.DataFrame) -> None:
    ds = GalaxyDataset(catalog, CLASSES, transform=build_eval_transform(crop=32, grey=True), grey=True,
                       image_root=tmp_path / "images")
    image, _ = ds[2]
    assert tuple(image.shape) == (1, 32, 32)


def test_absolute_paths_and_merged_classes(tmp_path: Path, catalog: pd.DataFrame) -> None:
    table = catalog.assign(file=[str(tmp_path / "images" / f) for f in catalog["file"]])
    table["label"] = table["label"].replace({"3": "3,4", "4": "3,4"})
    ds = GalaxyDataset(table, arm_classes("3,4"))
    assert [ds[k][1] for k in range(6)] == [0, 1, 2, 2, 3, 4]


def test_integer_labels_from_csv_match_class_names(tmp_path: Path, catalog: pd.DataFrame) -> None:
    path = tmp_path / "selected.csv"
    catalog.iloc[:3].to_csv(path, index=False)
    table = pd.read_csv(path)  # labels 1, 2, 3 come back as integers
    assert table["label"].dtype.kind == "i"
    ds = GalaxyDataset(table, CLASSES, image_root=tmp_path / "images")
    assert ds.labels.tolist() == [0, 1, 2]


def test_unlabelled_items_get_minus_one(tmp_path: Path, catalog: pd.DataFrame) -> None:
    ds = GalaxyDataset(catalog.drop(columns="label"), CLASSES, label_column=None, image_root=tmp_path / "images")
    assert ds[0][1] == -1


def test_bad_tables_give_one_line_errors(tmp_path: Path, catalog: pd.DataFrame) -> None:
    with pytest.raises(SpiralArmsError, match="label '7' at row 1"):
        GalaxyDataset(catalog.assign(label=["1", "7", "2", "2", "2", "2"]), CLASSES)
    with pytest.raises(SpiralArmsError, match="no column 'file'"):
        GalaxyDataset(catalog.drop(columns="file"), CLASSES)
    with pytest.raises(SpiralArmsError, match="without a path"):
        GalaxyDataset(catalog.assign(file=["a.png", None, "", "b", "c", "d"]), CLASSES)
    with pytest.raises(SpiralArmsError, match="on_error"):
        GalaxyDataset(catalog, CLASSES, on_error="skip")
    with pytest.raises(SpiralArmsError, match="distinct"):
        GalaxyDataset(catalog, ("1", "1"))


@pytest.fixture
def broken(tmp_path: Path, catalog: pd.DataFrame) -> pd.DataFrame:
    """The catalogue with row 1 truncated and row 4 missing."""
    folder = tmp_path / "images"
    data = (folder / "g1.png").read_bytes()
    (folder / "g1.png").write_bytes(data[: len(data) // 2])
    (folder / "g4.png").unlink()
    return catalog


def test_raise_mode_names_the_bad_file(tmp_path: Path, broken: pd.DataFrame) -> None:
    ds = GalaxyDataset(broken, CLASSES, image_root=tmp_path / "images")
    ds[0]
    with pytest.raises(ImageReadError) as info:
        ds[1]
    assert str(tmp_path / "images" / "g1.png") in str(info.value)
    with pytest.raises(ImageReadError, match="no such file"):
        ds[4]
    # a DataLoader does not swallow it either
    with pytest.raises(ImageReadError):
        list(DataLoader(ds, batch_size=6))


def test_validate_lists_unreadable_files(tmp_path: Path, broken: pd.DataFrame) -> None:
    ds = GalaxyDataset(broken, CLASSES, image_root=tmp_path / "images")
    report = ds.validate()
    assert list(report.columns) == ["row", "file", "error"]
    assert report["row"].tolist() == [1, 4]
    assert report["file"].tolist() == [ds.files[1], ds.files[4]]
    assert "corrupt PNG" in report["error"][0] and report["error"][1] == "no such file"


def test_report_mode_keeps_every_row_with_its_error(tmp_path: Path, broken: pd.DataFrame) -> None:
    ds = GalaxyDataset(broken, CLASSES, transform=build_eval_transform(crop=32), image_root=tmp_path / "images",
                       label_column=None, on_error="report")
    image, label, error = ds[4]
    assert tuple(image.shape) == (3, 32, 32) and torch.all(image == 0) and label == -1
    assert error == "no such file"
    assert ds[0][2] == ""
    loader = DataLoader(ds, batch_size=4, shuffle=False, collate_fn=collate_with_errors)
    images, labels, errors = zip(*loader)
    errors = [e for batch in errors for e in batch]
    assert len(errors) == 6
    assert [bool(e) for e in errors] == [False, True, False, False, True, False]
    stacked = torch.cat(images)
    assert tuple(stacked.shape) == (6, 3, 32, 32)
    assert torch.all(stacked[[1, 4]] == 0) and torch.all(stacked[[0, 2, 3, 5]] > 0)
    assert torch.cat(labels).tolist() == [-1] * 6


def test_collate_reshapes_placeholders_like_readable_images(tmp_path: Path, broken: pd.DataFrame) -> None:
    # no transform: images stay 64 px while the placeholder is shaped for 424 px
    ds = GalaxyDataset(broken, CLASSES, image_root=tmp_path / "images", on_error="report")
    images, labels, errors = collate_with_errors([ds[0], ds[1], ds[2]])
    assert tuple(images.shape) == (3, 3, SIDE, SIDE)
    assert labels.tolist() == [0, 1, 2] and errors[0] == "" and "corrupt" in errors[1]


def test_collate_refuses_raise_mode_items(tmp_path: Path, catalog: pd.DataFrame) -> None:
    ds = GalaxyDataset(catalog, CLASSES, image_root=tmp_path / "images")
    with pytest.raises(SpiralArmsError, match="on_error='report'"):
        collate_with_errors([ds[0]])


def test_dataloader_with_two_workers(tmp_path: Path, catalog: pd.DataFrame) -> None:
    ds = GalaxyDataset(catalog, CLASSES, transform=build_train_transform(crop=48), image_root=tmp_path / "images")
    pickle.loads(pickle.dumps(ds))  # what spawn-started workers need
    loader = DataLoader(ds, batch_size=2, shuffle=True, num_workers=2,
                        generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    labels = torch.cat([b[1] for b in batches])
    assert sorted(labels.tolist()) == list(range(6))
    assert all(tuple(b[0].shape[1:]) == (3, 48, 48) for b in batches)


@pytest.mark.realdata
def test_dataset_over_real_cutouts() -> None:
    index_path = SHARED_CUTOUTS / "index.csv"
    if not index_path.exists():
        pytest.skip(f"shared real data not found at {SHARED_CUTOUTS}")
    index = pd.read_csv(index_path).head(8)
    ds = GalaxyDataset(index, ("0", "1"), transform=build_eval_transform(grey=True), grey=True,
                       label_column="weak_spiral_flag", image_root=SHARED_CUTOUTS)
    assert ds.validate().empty
    images, labels = next(iter(DataLoader(ds, batch_size=8)))
    assert tuple(images.shape) == (8, 1, 224, 224)
    assert labels.tolist() == index["weak_spiral_flag"].tolist()
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
