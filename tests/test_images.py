"""Image reading: formats, value ranges, and a clear error for every kind of bad file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

from spiralarms.data.images import check_image, load_image, load_image_uint8, scan_images
from spiralarms.data.transforms import build_eval_transform
from spiralarms.errors import ImageReadError, SpiralArmsError

SHARED_CUTOUTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sdss-gz-cutouts"


def smooth_rgb(h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth uint8 RGB pattern that JPEG compresses with small error."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), np.full_like(xx, 128)], axis=2).astype(np.uint8)


@pytest.fixture
def rgb_jpeg(tmp_path: Path) -> Path:
    path = tmp_path / "galaxy.jpg"
    Image.fromarray(smooth_rgb()).save(path, quality=95)
    return path


def test_rgb_jpeg_is_float32_hwc_in_unit_range(rgb_jpeg: Path) -> None:
    image = load_image(rgb_jpeg)
    assert image.shape == (48, 64, 3)
    assert image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    np.testing.assert_allclose(image, smooth_rgb() / 255.0, atol=0.06)


def test_uint8_loader_matches_float_loader(rgb_jpeg: Path) -> None:
    as_uint8 = load_image_uint8(rgb_jpeg)
    assert as_uint8.dtype == np.uint8 and as_uint8.shape == (48, 64, 3)
    np.testing.assert_array_equal(as_uint8, np.rint(load_image(rgb_jpeg) * 255).astype(np.uint8))


def test_grey_png_is_exact_and_repeats_to_rgb(tmp_path: Path) -> None:
    values = np.arange(40 * 30, dtype=np.uint32).reshape(40, 30) % 256
    path = tmp_path / "grey.png"
    Image.fromarray(values.astype(np.uint8), mode="L").save(path)
    grey = load_image(path, grey=True)
    assert grey.shape == (40, 30, 1) and grey.dtype == np.float32
    np.testing.assert_allclose(grey[:, :, 0], values / 255.0, atol=1e-7)
    rgb = load_image(path)
    assert rgb.shape == (40, 30, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[:, :, c], grey[:, :, 0])


def test_rgba_png_is_composited_on_black(tmp_path: Path) -> None:
    rgba = np.zeros((10, 20, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[:, :10, 3] = 0  # transparent left half: no data
    rgba[:, 10:, 3] = 255
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    image = load_image(path)
    assert image.shape == (10, 20, 3)
    assert np.all(image[:, :10] == 0.0)
    np.testing.assert_allclose(image[:, 10:], np.broadcast_to(np.array([200, 100, 50]) / 255.0, (10, 10, 3)), atol=1e-7)


def test_palette_png_reads_as_rgb(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    Image.fromarray(smooth_rgb(16, 16)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(path)
    image = load_image(path)
    assert image.shape == (16, 16, 3) and image.dtype == np.float32
    expected = np.asarray(Image.open(path).convert("RGB")) / 255.0
    np.testing.assert_allclose(image, expected, atol=1e-7)


def test_16bit_png_keeps_full_range(tmp_path: Path) -> None:
    values = np.linspace(0, 65535, 64 * 8).reshape(8, 64).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    image = load_image(path, grey=True)
    assert image.shape == (8, 64, 1)
    np.testing.assert_allclose(image[:, :, 0], values / 65535.0, atol=1e-6)
    assert image.max() == pytest.approx(1.0)  # Pillow's convert("L") would clip instead
    np.testing.assert_array_equal(load_image_uint8(path, grey=True)[:, :, 0], np.rint(values / 257.0).astype(np.uint8))
    assert load_image(path).shape == (8, 64, 3)


def test_grey_is_itu_r_601_luminance(tmp_path: Path) -> None:
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    path = tmp_path / "primaries.png"
    Image.fromarray(pixels).save(path)
    grey = load_image(path, grey=True)[0, :, 0]
    np.testing.assert_allclose(grey, [0.299, 0.587, 0.114], atol=1.0 / 255)


def _bad_files(tmp_path: Path, rgb_jpeg: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, substring expected in the reason)."""
    data = rgb_jpeg.read_bytes()
    random_bytes = tmp_path / "random.jpg"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(5000))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image\n")
    garbled = tmp_path / "garbled.jpg"
    garbled.write_bytes(data[:3] + np.random.default_rng(1).bytes(3000))
    return {
        "random": (random_bytes, "not an image (unrecognised format)"),
        "truncated": (truncated, "truncated or corrupt JPEG"),
        "empty": (empty, "empty file"),
        "text": (text, "not an image (unrecognised format)"),
        "garbled": (garbled, "corrupt JPEG"),
        "missing": (tmp_path / "nowhere.jpg", "no such file"),
        "directory": (tmp_path, "directory"),
    }


@pytest.mark.parametrize("kind", ["random", "truncated", "empty", "text", "garbled", "missing", "directory"])
@pytest.mark.parametrize("loader", [load_image, load_image_uint8])
def test_bad_files_raise_image_read_error(tmp_path: Path, rgb_jpeg: Path, kind: str, loader) -> None:
    path, reason = _bad_files(tmp_path, rgb_jpeg)[kind]
    with pytest.raises(ImageReadError) as info:
        loader(path)
    assert isinstance(info.value, SpiralArmsError)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    assert reason in info.value.reason
    assert "\n" not in str(info.value)


def test_truncated_jpeg_raises_with_pillow_defaults(tmp_path: Path, rgb_jpeg: Path) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    data = rgb_jpeg.read_bytes()
    for keep in (0.5, 0.9):
        path = tmp_path / f"cut{keep}.jpg"
        path.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(ImageReadError, match="truncated"):
            load_image(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_says_permission_denied(tmp_path: Path, rgb_jpeg: Path) -> None:
    rgb_jpeg.chmod(0)
    try:
        with pytest.raises(ImageReadError, match="permission denied"):
            load_image(rgb_jpeg)
    finally:
        rgb_jpeg.chmod(0o644)


def test_check_image_returns_reason_or_none(tmp_path: Path, rgb_jpeg: Path) -> None:
    assert check_image(rgb_jpeg) is None
    assert check_image(tmp_path / "nowhere.png") == "no such file"


@pytest.mark.parametrize("workers", [1, 3])
def test_scan_images_keeps_every_row_in_order(tmp_path: Path, rgb_jpeg: Path, workers: int) -> None:
    bad = _bad_files(tmp_path, rgb_jpeg)
    paths = [rgb_jpeg, bad["truncated"][0], rgb_jpeg, bad["missing"][0], bad["empty"][0]]
    report = scan_images(paths, workers=workers)
    assert isinstance(report, pd.DataFrame)
    assert list(report.columns) == ["file", "ok", "error"]
    assert report["file"].tolist() == [str(p) for p in paths]
    assert report["ok"].tolist() == [True, False, True, False, False]
    assert report["error"][[0, 2]].isna().all()
    assert "truncated" in report["error"][1]
    assert report["error"][3] == "no such file"
    assert report["error"][4] == "empty file"


def test_scan_images_empty_and_bad_workers() -> None:
    assert len(scan_images([])) == 0
    with pytest.raises(SpiralArmsError, match="workers"):
        scan_images([], workers=0)


@pytest.mark.realdata
def test_real_sdss_cutouts_load() -> None:
    index_path = SHARED_CUTOUTS / "index.csv"
    if not index_path.exists():
        pytest.skip(f"shared real data not found at {SHARED_CUTOUTS}")
    index = pd.read_csv(index_path).head(20)
    transform = build_eval_transform(crop=224)
    grey_transform = build_eval_transform(crop=224, grey=True)
    for name in index["file"]:
        image = load_image(SHARED_CUTOUTS / name)
        assert image.shape == (424, 424, 3) and image.dtype == np.float32
        assert 0.0 <= image.min() < 0.1  # dark sky
        assert 0.1 < image.max() <= 1.0  # a galaxy
        # the galaxy is centred: the centre is brighter than the border on average
        assert image[162:262, 162:262].mean() > image[:40].mean()
        assert tuple(transform(image).shape) == (3, 224, 224)
        assert tuple(grey_transform(image).shape) == (1, 224, 224)
    assert scan_images([SHARED_CUTOUTS / n for n in index["file"]], workers=2)["ok"].all()


def test_reading_a_png_cutout_raises_no_torch_warning(tmp_path: Path) -> None:
    """Pillow's read-only arrays made torch warn once per process ("not writable") on PNGs."""
    import subprocess
    import sys

    path = tmp_path / "cutout.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
    code = (
        "import sys; from spiralarms.data.images import read_cutout; "
        "t = read_cutout(sys.argv[1]); t.add_(0); print(tuple(t.shape))"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", code, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(3, 40, 40)" and "not writable" not in done.stderr


def test_damaged_fits_cutouts_fail_quietly_in_threads(tmp_path: Path) -> None:
    """Each damaged file's reason is its result; astropy's warnings are not printed per file."""
    import warnings

    from astropy.io import fits

    fits.PrimaryHDU(np.zeros((8, 8), np.float32)).writeto(tmp_path / "whole.fits")
    whole = (tmp_path / "whole.fits").read_bytes()
    paths = []
    for k in range(6):
        path = tmp_path / f"cut{k}.fits"
        path.write_bytes(whole[: 2880 + 40 * (k + 1)])  # header whole, data cut short
        paths.append(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reasons = scan_images(paths, workers=3, progress=False)["error"].tolist()
        with pytest.raises(ImageReadError, match="cut0.fits.*not a readable FITS file"):
            load_image(paths[0])
        warnings.warn("still shown after the reads", UserWarning)
    assert all(reason and "FITS" in reason for reason in reasons), reasons
    assert [str(w.message) for w in caught] == ["still shown after the reads"]
