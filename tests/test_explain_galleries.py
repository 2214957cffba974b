"""Galleries of Figures 9 and 10: choosing galaxies, empty rows, validation predictions, figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from spiralarms.errors import SpiralArmsError
from spiralarms.explain import select_gallery, validation_predictions
from spiralarms.explain.figures import GalleryPanel, GalleryRow, overlay, plot_feature_maps, plot_gallery
from spiralarms.explain.galleries import load_images
from spiralarms.models.backbones import build_classifier

CLASSES = ("1", "2", "3")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def predictions() -> pd.DataFrame:
    """Class 1: all correct; class 2: mixed; class 3: all wrong."""
    rows = [
        ("a", "1", "1", [0.7, 0.2, 0.1]),
        ("b", "1", "1", [0.9, 0.05, 0.05]),
        ("c", "1", "1", [0.5, 0.3, 0.2]),
        ("d", "1", "1", [0.8, 0.1, 0.1]),
        ("e", "2", "2", [0.1, 0.6, 0.3]),
        ("f", "2", "1", [0.55, 0.4, 0.05]),
        ("g", "3", "2", [0.1, 0.8, 0.1]),
        ("h", "3", "1", [0.95, 0.0, 0.05]),
    ]
    frame = pd.DataFrame({"id": [r[0] for r in rows], "label": [r[1] for r in rows], "pred": [r[2] for r in rows]})
    for j, c in enumerate(CLASSES):
        frame[f"p_{c}"] = [r[3][j] for r in rows]
    return frame


def test_correct_gallery_takes_the_most_confident_correct_galaxies():
    gallery = select_gallery(predictions(), CLASSES, n_per_class=3, kind="correct")
    assert list(gallery) == list(CLASSES)
    assert gallery["1"]["id"].tolist() == ["b", "d", "a"]  # by probability, capped at 3
    assert gallery["1"]["prob"].tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert gallery["2"]["id"].tolist() == ["e"]
    assert gallery["3"].empty  # no correct m=3 galaxy: an empty row


def test_wrong_gallery_groups_by_true_class_and_ranks_by_the_wrong_probability():
    gallery = select_gallery(predictions(), CLASSES, n_per_class=3, kind="wrong")
    assert gallery["1"].empty
    assert gallery["2"]["id"].tolist() == ["f"]
    assert gallery["3"]["id"].tolist() == ["h", "g"]
    assert gallery["3"]["prob"].tolist() == pytest.approx([0.95, 0.8])
    assert (gallery["3"]["label"] != gallery["3"]["pred"]).all()


def test_select_gallery_rejects_bad_input():
    with pytest.raises(SpiralArmsError, match="kind"):
        select_gallery(predictions(), CLASSES, kind="best")
    with pytest.raises(SpiralArmsError, match="n_per_class"):
        select_gallery(predictions(), CLASSES, n_per_class=0)
    with pytest.raises(SpiralArmsError, match="p_3"):
        select_gallery(predictions().drop(columns=["p_3"]), CLASSES)


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


def test_gallery_figure_labels_empty_rows_and_annotates_panels():
    rng = np.random.default_rng(0)
    image = torch.rand(1, 32, 32)  # grey input, drawn as RGB
    heat = rng.random((32, 32)).astype(np.float32)
    rows = [
        GalleryRow("m=1", [GalleryPanel("a", image, heat, heat, "1", "2", 0.87)], "no wrong predictions for m=1"),
        GalleryRow("m=3", [], "no wrong predictions for m=3"),
    ]
    fig = plot_gallery(rows, title="wrong")
    texts = _texts(fig)
    assert "no wrong predictions for m=3" in texts
    assert "true m=1 \u2192 m=2 (0.87)" in texts
    assert {"Grad-CAM++", "SmoothGrad"} <= set(texts)
    assert len(fig.axes) == 3 + 1


def test_overlay_and_feature_map_figure():
    image = torch.rand(3, 16, 16)
    blend = overlay(image, np.zeros((16, 16)))
    assert blend.shape == (16, 16, 3) and blend.dtype == np.uint8
    with pytest.raises(SpiralArmsError, match="does not fit"):
        overlay(image, np.zeros((8, 8)))
    maps = {"lower\nconv_stem": np.random.rand(12, 8, 8), "upper\nconv_head": np.random.rand(3, 2, 2)}
    fig = plot_feature_maps(image, maps, channels=4)
    # input + 4 channels of the first layer + the 3 channels the second layer has
    assert len(fig.axes) == 1 + 4 + 3


def _write_images(folder, n, size=40):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    files = []
    for i in range(n):
        path = folder / f"g{i}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        files.append(str(path))
    return files


def test_validation_predictions_read_from_the_run_or_predicted(tmp_path):
    files = _write_images(tmp_path / "images", 4)
    split = pd.DataFrame(
        {
            "id": ["10", "11", "12", "13"],
            "label": ["1", "2", "3", "1"],
            "split": ["train", "val", "val", "val"],
            "file": files,
        }
    )
    run = tmp_path / "run"
    run.mkdir()
    split.to_csv(run / "split.csv", index=False)
    torch.manual_seed(0)
    model = build_classifier("test_efficientnet", 3, hidden=8, frozen=True, grey=True, pretrained=False)

    from spiralarms.models.module import ArmClassifierModule

    module = ArmClassifierModule.from_model(model, CLASSES, backbone="test_efficientnet", crop=32, grey=True)
    predicted = validation_predictions(run, module)
    assert predicted["id"].tolist() == ["11", "12", "13"]
    probs = predicted[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert predicted["pred"].tolist() == [CLASSES[i] for i in probs.argmax(axis=1)]
    with torch.no_grad():
        expected = torch.softmax(model.eval()(load_images(files[1:], 32, True)), dim=1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)

    predicted.drop(columns=["file"]).to_csv(run / "val_predictions.csv", index=False)
    read = validation_predictions(run)  # no model needed now
    assert read["file"].tolist() == files[1:]
    with pytest.raises(SpiralArmsError, match="no split.csv"):
        validation_predictions(tmp_path)
    with pytest.raises(SpiralArmsError, match="missing: no such run folder"):
        validation_predictions(tmp_path / "missing")
    with pytest.raises(SpiralArmsError, match="split.csv: is a file; give the run folder"):
        validation_predictions(run / "split.csv")


def test_load_images_crops_like_validation_and_names_a_bad_file(tmp_path):
    files = _write_images(tmp_path, 2, size=40)
    batch = load_images(files, crop=32, grey=True)
    assert batch.shape == (2, 1, 32, 32) and 0 <= batch.min() and batch.max() <= 1
    assert load_images(files, crop=None, grey=False).shape == (2, 3, 40, 40)
    with pytest.raises(SpiralArmsError, match="larger than the image"):
        load_images(files, crop=64, grey=False)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(SpiralArmsError, match="broken.jpg"):
        load_images([broken], crop=32, grey=False)
