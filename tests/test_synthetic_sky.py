"""Synthetic galaxies drawn on the sky of real survey cutouts (``synth --sky-from``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from spiralarms.data.synthetic import lupton_rgb, synthesize_dataset, synthetic_set_matches
from spiralarms.data.synthetic.render import LUPTON_Q, LUPTON_STRETCH
from spiralarms.data.synthetic.sky import corner_sky, inverse_lupton_rgb, list_sky_cutouts
from spiralarms.errors import SpiralArmsError

SIZE = 96
SHARED_CUTOUTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sdss-gz-cutouts"


def _sky_cutout(level: tuple[float, float, float], seed: int, size: int = SIZE) -> np.ndarray:
    """An SDSS-like composite of a flat sky of linear ``level`` per band with noise."""
    rng = np.random.default_rng(seed)
    flux = np.asarray(level, dtype=np.float32)[:, None, None] * (1 + 0.3 * rng.standard_normal((3, size, size)))
    return lupton_rgb(np.maximum(flux, 0).astype(np.float32), LUPTON_STRETCH, LUPTON_Q)


@pytest.fixture
def sky_folder(tmp_path):
    folder = tmp_path / "sky"
    folder.mkdir()
    # A dark neutral sky and a bright red one: each galaxy must carry its own donor's.
    Image.fromarray(_sky_cutout((0.004, 0.004, 0.003), 1)).save(folder / "dark.png")
    Image.fromarray(_sky_cutout((0.06, 0.02, 0.01), 2)).save(folder / "red.png")
    (folder / "._red.png").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork: hidden, skipped
    return folder


def test_inverse_lupton_rgb_inverts_the_composite():
    rng = np.random.default_rng(0)
    flux = (rng.random((3, 64, 64)) ** 3 * 0.5).astype(np.float32)
    display = lupton_rgb(flux, LUPTON_STRETCH, LUPTON_Q)
    back = inverse_lupton_rgb(display, LUPTON_STRETCH, LUPTON_Q)
    assert back.shape == (3, 64, 64) and back.dtype == np.float32
    again = lupton_rgb(back, LUPTON_STRETCH, LUPTON_Q)
    assert np.abs(again.astype(int) - display.astype(int)).max() <= 1
    # Fluxes come back to within the 8-bit rounding where the composite did not clip.
    unclipped = (display.min(axis=2) > 8) & (display.max(axis=2) < 250)
    assert unclipped.mean() > 0.3
    assert np.allclose(back[:, unclipped], flux[:, unclipped], rtol=0.15, atol=2e-3)
    with pytest.raises(SpiralArmsError, match="colour image"):
        inverse_lupton_rgb(display[..., 0], LUPTON_STRETCH, LUPTON_Q)


def test_corner_sky_tiles_the_four_corners_at_the_centre():
    image = np.zeros((424, 424, 1), dtype=np.uint8)
    image[:112, :112], image[:112, -112:], image[-112:, :112], image[-112:, -112:] = 1, 2, 3, 4
    image[150:274, 150:274] = 9  # the galaxy: never in the sky
    sky = corner_sky(image, 424)
    assert sky.shape == image.shape
    centre = sky[100:324, 100:324, 0]
    assert (centre[:112, :112] == 1).all() and (centre[:112, 112:] == 2).all()
    assert (centre[112:, :112] == 3).all() and (centre[112:, 112:] == 4).all()
    assert 9 not in sky


def test_galaxies_drawn_on_real_sky_carry_their_donors_sky(tmp_path, sky_folder):
    donors = {Path(f).name: np.asarray(Image.open(f), dtype=float) for f in list_sky_cutouts(sky_folder, SIZE)}
    catalog = synthesize_dataset(tmp_path / "a", n_per_class=2, size=SIZE, sky_from=sky_folder, workers=1,
                                 progress=False)
    assert catalog["sky_file"].map(lambda f: Path(f).name).isin(donors).all()
    assert catalog["sky_file"].nunique() == 2  # 12 galaxies, 2 donors: both drawn
    side = round(112 / 424 * SIZE)
    start = (SIZE - 2 * side) // 2
    for row in catalog.itertuples():
        image = np.asarray(Image.open(tmp_path / "a" / row.file), dtype=float)
        # The outer corner of the tiled sky, far from the galaxy, is the donor's corner.
        patch = image[start:start + 4, start:start + 4].mean(axis=(0, 1))
        own = donors[Path(row.sky_file).name][:4, :4].mean(axis=(0, 1))
        other = [v[:4, :4].mean(axis=(0, 1)) for k, v in donors.items() if k != Path(row.sky_file).name][0]
        assert np.abs(patch - own).max() < 8
        assert np.abs(patch - own).max() < np.abs(patch - other).max()
        # and the galaxy is there, brighter than its sky
        centre = image[SIZE // 2 - 3:SIZE // 2 + 3, SIZE // 2 - 3:SIZE // 2 + 3].mean()
        assert centre > image[start:start + 4, start:start + 4].mean() + 40
    assert (catalog["n_stars"] == 0).all() and (catalog["n_neighbours"] == 0).all()  # the donor's field only
    # Deterministic, whatever the processes, and never taken for a plain synthetic set.
    synthesize_dataset(tmp_path / "b", n_per_class=2, size=SIZE, sky_from=sky_folder, workers=2, progress=False)
    for file in catalog["file"]:
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert not synthetic_set_matches(tmp_path / "a" / "catalog.csv", 2, 0, size=SIZE, preset="sdss")


def test_sky_from_refuses_what_it_cannot_use(tmp_path, sky_folder):
    def refuse(folder, match, **kwargs):
        with pytest.raises(SpiralArmsError, match=match):
            synthesize_dataset(tmp_path / "out", n_per_class=1, size=kwargs.pop("size", SIZE), sky_from=folder,
                               workers=1, progress=False, **kwargs)

    refuse(tmp_path / "nowhere", "no such folder")
    refuse(sky_folder / "dark.png", "dark.png: not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    refuse(empty, "no JPEG or PNG")
    refuse(sky_folder, "dark.png: 96x96 pixels; sky cutouts must be 128x128", size=128)
    refuse(sky_folder, "needs the sdss preset", preset="crisp")
    broken = tmp_path / "broken"
    broken.mkdir()
    Image.fromarray(_sky_cutout((0.004,) * 3, 3)).save(broken / "good.jpg")
    data = (sky_folder / "dark.png").read_bytes()
    (broken / "cut.png").write_bytes(data[: len(data) // 2])
    refuse(broken, "cut.png")
    grey = tmp_path / "grey"
    grey.mkdir()
    Image.fromarray(np.zeros((SIZE, SIZE), dtype=np.uint8)).save(grey / "g.png")
    refuse(grey, "g.png: a L image")


def test_cli_synth_sky_from(tmp_path, sky_folder):
    from typer.testing import CliRunner

    from spiralarms.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(app, ["synth", str(out), "--n-per-class", "1", "--size", str(SIZE), "--sky-from",
                                 str(sky_folder), "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out / "catalog.csv")["sky_file"].notna().all()
    result = runner.invoke(app, ["synth", str(out), "--n-per-class", "1", "--sky-from", str(sky_folder)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "must be 424x424" in lines[0]


@pytest.mark.realdata
def test_galaxies_on_the_sky_of_real_sdss_cutouts(tmp_path):
    if not (SHARED_CUTOUTS / "index.csv").is_file():
        pytest.skip(f"shared real cutouts not found at {SHARED_CUTOUTS}")
    folder = tmp_path / "real-sky"
    folder.mkdir()
    for file in sorted((SHARED_CUTOUTS / "images").iterdir())[:3]:
        (folder / file.name).symlink_to(file)
    catalog = synthesize_dataset(tmp_path / "set", n_per_class=1, sky_from=folder, workers=1, progress=False)
    for row in catalog.itertuples():
        image = np.asarray(Image.open(tmp_path / "set" / row.file))
        real = np.asarray(Image.open(row.sky_file))
        # the tiled corner of the crop is the real cutout's corner, through one more JPEG
        assert np.abs(image[100:120, 100:120].astype(float) - real[:20, :20]).mean() < 3
