"""Tests of the synthetic spiral galaxy renderer and data set (spiralarms.data.synthetic)."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.catalog.schema import FEATURES_OR_DISK, NOT_EDGE_ON, SPIRAL, T11_ANSWERS
from spiralarms.data.synthetic import (
    CANT_TELL_REASONS,
    GalaxyMasks,
    GalaxyParams,
    galaxy_rng,
    render_galaxy,
    sample_galaxy_params,
    simulate_gz2_votes,
    synthesize_dataset,
)
from spiralarms.errors import SpiralArmsError

CLEAN_CLASSES = ("1", "2", "3", "4", "5+")


# ---------------------------------------------------------------------------- helpers


def azimuthal_amplitudes(grey, centre_x, centre_y, disc_scale, inclination_deg, position_angle_deg):
    """Relative azimuthal Fourier amplitudes A_1..A_7 of the deprojected disc.

    Samples the image on circles of the disc plane between 1 and 2.5 disc scale
    lengths (mapped onto the sky with the known inclination and position angle),
    removes each circle's mean (the radial profile), and averages |A_m| / mean over
    radii: a log spiral's phase turns with radius, so amplitudes, not complex
    coefficients, are averaged.
    """
    size = grey.shape[0]
    cx, cy = (size - 1) / 2 + centre_x, (size - 1) / 2 + centre_y
    n_theta = 256
    r = np.linspace(1.0, 2.5, 24)[:, None] * disc_scale
    t = np.linspace(0, 2 * np.pi, n_theta, endpoint=False)[None, :]
    pa, cos_i = math.radians(position_angle_deg), math.cos(math.radians(inclination_deg))
    x_major, y_minor = r * np.cos(t), r * np.sin(t) * cos_i
    xs = x_major * math.cos(pa) - y_minor * math.sin(pa)
    ys = x_major * math.sin(pa) + y_minor * math.cos(pa)
    ring = ndimage.map_coordinates(grey, [cy + ys, cx + xs], order=1)
    mean = ring.mean(axis=1, keepdims=True)
    spectrum = np.abs(np.fft.rfft(ring - mean, axis=1))[:, 1:8] * 2 / n_theta / mean
    return spectrum.mean(axis=0)


def amplitudes_of_row(out, row):
    """Fourier amplitudes of a catalogue row's JPEG, decoded from disk."""
    grey = np.asarray(Image.open(out / row["file"]).convert("RGB"), dtype=np.float32).mean(axis=2)
    return azimuthal_amplitudes(
        grey, row["centre_x_px"], row["centre_y_px"], row["disc_scale_px"],
        row["inclination_deg"], row["position_angle_deg"],
    )


def jpeg_grey(image):
    """The grey-level pixels of an image after a JPEG (quality 90) round trip."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32).mean(axis=2)


def paper_cuts(catalog):
    """The clean-sample cuts of docs/contract.md ("The clean-sample cuts", strict inequalities), written out in pandas.

    Returns the boolean keep mask and the label (class name) of every row.
    """
    keep = (
        (catalog[FEATURES_OR_DISK + "_weighted_fraction"] > 0.430)
        & (catalog[NOT_EDGE_ON + "_weighted_fraction"] > 0.715)
        & (catalog[SPIRAL + "_weighted_fraction"] > 0.715)
        & (catalog[SPIRAL + "_count"] > 20)
    )
    weighted = catalog[[a + "_weighted_fraction" for a in T11_ANSWERS]].to_numpy()
    debiased = catalog[[a + "_debiased" for a in T11_ANSWERS]].to_numpy()
    best = weighted.argmax(axis=1)  # first maximum: ties go to the earlier class
    keep &= debiased[np.arange(len(catalog)), best] > 0.8
    return keep.to_numpy(), np.array(ARM_CLASSES)[best]


def params_with_reason(reason, n, seed=0):
    """``n`` parameter sets of class ``?`` with the given can't-tell reason."""
    found, j = [], 0
    while len(found) < n:
        p = sample_galaxy_params("?", np.random.default_rng([seed, j]))
        j += 1
        if p.cant_tell_reason == reason:
            found.append(p)
    return found


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Six galaxies per class at 424 x 424, with masks, written to disk."""
    out = tmp_path_factory.mktemp("synth") / "set"
    catalog = synthesize_dataset(out, n_per_class=6, seed=5, write_masks=True, progress=False)
    return out, catalog


# ---------------------------------------------------------------------- parameters


@pytest.mark.parametrize("true_class", ARM_CLASSES)
def test_sample_galaxy_params_follow_the_class(true_class):
    for j in range(40):
        p = sample_galaxy_params(true_class, np.random.default_rng([1, j]))
        assert isinstance(p, GalaxyParams)
        assert p.true_class == true_class
        assert math.cos(math.radians(p.inclination_deg)) >= 0.45 - 1e-9  # never edge-on
        assert 10.0 <= abs(p.pitch_deg) <= 40.0
        assert 0.0 <= p.position_angle_deg < 180.0
        assert len(p.arm_amplitudes) == len(p.arm_phase_jitter_deg) == p.n_arms
        if true_class == "?":
            assert p.true_arms == 0
            assert p.cant_tell_reason in CANT_TELL_REASONS
        else:
            assert p.cant_tell_reason == ""
            assert p.true_arms == p.n_arms
            expected = range(5, 8) if true_class == "5+" else [int(true_class)]
            assert p.n_arms in expected
            # GZ2 framing: the disc fits in the central 224 crop of a 424 cutout.
            assert 55.0 <= p.disc_radius_px <= 112.0


def test_cant_tell_reasons_have_their_physical_cause():
    faint = params_with_reason("faint", 5)
    small = params_with_reason("small", 5)
    flocculent = params_with_reason("flocculent", 5)
    clean = [sample_galaxy_params("2", np.random.default_rng([2, j])) for j in range(20)]
    assert max(p.arm_contrast for p in faint) < min(p.arm_contrast for p in clean)
    assert max(p.disc_radius_px for p in small) < 0.5 * min(p.disc_radius_px for p in clean)
    assert min(p.flocculence for p in flocculent) > max(p.flocculence for p in clean)
    assert all(p.n_arms >= 6 for p in flocculent)


def test_sample_galaxy_params_scales_with_image_size():
    big = sample_galaxy_params("3", np.random.default_rng(4), 424)
    small = sample_galaxy_params("3", np.random.default_rng(4), 212)
    assert small.disc_scale_px == pytest.approx(big.disc_scale_px / 2)
    assert small.pitch_deg == pytest.approx(big.pitch_deg)
    assert big.scaled(212).disc_radius_px == pytest.approx(small.disc_radius_px)


# ------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("true_class", ["2", "5+", "?"])
def test_render_galaxy_image_and_masks(true_class):
    p = sample_galaxy_params(true_class, np.random.default_rng(8))
    image, masks = render_galaxy(p)
    assert image.shape == (424, 424, 3) and image.dtype == np.uint8
    assert isinstance(masks, GalaxyMasks)
    for mask in (masks.galaxy, masks.arms):
        assert mask.shape == (424, 424) and mask.dtype == bool
    assert not (masks.arms & ~masks.galaxy).any(), "arms must lie inside the galaxy"
    centre = 212 + int(round(p.centre_y)), 212 + int(round(p.centre_x))
    assert masks.galaxy[centre]
    assert not masks.galaxy[:5, :5].any()
    # The projected disc area matches the disc radius and inclination.
    expected = math.pi * p.disc_radius_px**2 * math.cos(math.radians(p.inclination_deg))
    assert masks.galaxy.sum() == pytest.approx(expected, rel=0.05)
    # The galaxy is brighter than the sky.
    grey = image.astype(float).mean(axis=2)
    assert grey[masks.galaxy].mean() > grey[~masks.galaxy].mean() + 10


def test_arm_mask_marks_bright_arm_pixels():
    p = sample_galaxy_params("3", np.random.default_rng(3))
    image, masks = render_galaxy(p)
    assert 0.05 < masks.arms.sum() / masks.galaxy.sum() < 0.6
    # At the same radius, arm pixels are brighter than inter-arm pixels.
    grey = image.astype(float).mean(axis=2)
    yy, xx = np.mgrid[:424, :424]
    radius = np.hypot(yy - 211.5 - p.centre_y, xx - 211.5 - p.centre_x)
    annulus = (radius > 1.2 * p.disc_scale_px) & (radius < 2.0 * p.disc_scale_px) & masks.galaxy
    assert grey[annulus & masks.arms].mean() > grey[annulus & ~masks.arms].mean() + 15


def test_colours_bulge_redder_than_arms():
    p = sample_galaxy_params("2", np.random.default_rng(12))
    image, masks = render_galaxy(p)
    rgb = image.astype(float)
    yy, xx = np.mgrid[:424, :424]
    centre = np.hypot(yy - 211.5 - p.centre_y, xx - 211.5 - p.centre_x) < 3
    red_minus_blue = rgb[..., 0] - rgb[..., 2]
    assert red_minus_blue[centre].mean() > red_minus_blue[masks.arms].mean() + 10


def test_render_galaxy_is_deterministic_and_seeded():
    p = sample_galaxy_params("4", np.random.default_rng(0))
    a, _ = render_galaxy(p)
    b, _ = render_galaxy(p)
    assert np.array_equal(a, b)
    other = sample_galaxy_params("4", np.random.default_rng(1))
    c, _ = render_galaxy(other)
    assert not np.array_equal(a, c)


def test_render_galaxy_other_size_keeps_the_framing():
    p = sample_galaxy_params("2", np.random.default_rng(6))
    _, big = render_galaxy(p)
    image, small = render_galaxy(p, size=128)
    assert image.shape == (128, 128, 3)
    assert small.galaxy.mean() == pytest.approx(big.galaxy.mean(), rel=0.1)


@pytest.mark.parametrize("true_class", CLEAN_CLASSES)
def test_rendered_arms_carry_the_arm_number(true_class):
    """The dominant azimuthal Fourier mode of the deprojected disc is the arm number."""
    dominant = []
    for j in range(8):
        p = sample_galaxy_params(true_class, np.random.default_rng([21, j]))
        image, _ = render_galaxy(p)
        amplitudes = azimuthal_amplitudes(
            jpeg_grey(image), p.centre_x, p.centre_y, p.disc_scale_px,
            p.inclination_deg, p.position_angle_deg,
        )
        dominant.append(int(amplitudes.argmax()) + 1)
    if true_class == "5+":
        assert np.mean([m >= 5 for m in dominant]) >= 0.8, dominant
    else:
        assert np.mean([m == int(true_class) for m in dominant]) >= 0.8, dominant


def test_cant_tell_arms_are_weak_or_incoherent():
    """Faint and flocculent ``?`` galaxies have far weaker low-m spiral modes."""

    def strongest_mode(p):
        image, _ = render_galaxy(p)
        return azimuthal_amplitudes(
            jpeg_grey(image), p.centre_x, p.centre_y, p.disc_scale_px,
            p.inclination_deg, p.position_angle_deg,
        ).max()

    clean = [strongest_mode(sample_galaxy_params(c, np.random.default_rng([31, k])))
             for k, c in enumerate(CLEAN_CLASSES * 2)]
    faint = [strongest_mode(p) for p in params_with_reason("faint", 4, seed=32)]
    flocculent = [strongest_mode(p) for p in params_with_reason("flocculent", 4, seed=33)]
    assert max(faint) < 0.5 * min(clean)
    assert np.median(flocculent) < 0.6 * np.median(clean)


# ---------------------------------------------------------------------------- votes


def test_simulated_votes_pass_the_paper_cuts_for_most_galaxies():
    rows, truth = [], []
    for index in range(600):
        true_class = ARM_CLASSES[index % 6]
        rng = galaxy_rng(9, index)
        p = sample_galaxy_params(true_class, rng)
        rows.append(simulate_gz2_votes(p, rng))
        truth.append(true_class)
    catalog = pd.DataFrame(rows)
    truth = np.array(truth)
    keep, label = paper_cuts(catalog)
    assert 0.65 <= keep.mean() <= 0.95, keep.mean()
    assert not keep.all()
    assert (label[keep] == truth[keep]).mean() >= 0.98
    for true_class in ARM_CLASSES:
        assert keep[truth == true_class].mean() >= 0.5, true_class
    # Each task's counts follow the GZ2 decision tree and fractions sum to one.
    t01 = [c for c in catalog if c.startswith("t01") and c.endswith("_count")]
    assert (catalog[t01].sum(axis=1) == catalog["total_classifications"]).all()
    assert (catalog[[a + "_count" for a in T11_ANSWERS]].sum(axis=1) == catalog[SPIRAL + "_count"]).all()
    t11_fractions = catalog[[a + "_weighted_fraction" for a in T11_ANSWERS]].sum(axis=1)
    assert np.allclose(t11_fractions[catalog[SPIRAL + "_count"] > 0], 1.0, atol=0.01)
    # A spread of confidence, not all unanimous.
    assert catalog[T11_ANSWERS[1] + "_weighted_fraction"][truth == "2"].std() > 0.02


# --------------------------------------------------------------------------- data set


def test_dataset_catalog_schema(dataset):
    out, catalog = dataset
    assert len(catalog) == 36
    on_disk = pd.read_csv(out / "catalog.csv")
    assert list(on_disk.columns) == list(catalog.columns)
    answers = [FEATURES_OR_DISK, NOT_EDGE_ON, SPIRAL, *T11_ANSWERS]
    for answer in answers:
        for suffix in ("_count", "_fraction", "_weighted_fraction", "_debiased"):
            assert answer + suffix in on_disk.columns
    for column in ("dr7objid", "file", "true_class", "true_arms", "pitch_deg", "inclination_deg",
                   "position_angle_deg", "disc_scale_px", "bulge_fraction", "arm_contrast",
                   "has_companion", "n_stars", "cant_tell_reason", "seed"):
        assert column in on_disk.columns
    assert on_disk["dr7objid"].is_unique and on_disk["dr7objid"].dtype == np.int64
    assert (on_disk["file"] == "images/" + on_disk["dr7objid"].astype(str) + ".jpg").all()
    # Classes interleave and carry their arm number.
    assert list(on_disk["true_class"].astype(str))[:6] == list(ARM_CLASSES)
    assert (on_disk["true_class"].astype(str).value_counts() == 6).all()
    clean = on_disk["true_class"].astype(str) != "?"
    arms = on_disk["true_arms"][clean]
    expected = on_disk["true_class"][clean].astype(str).map(lambda c: 5 if c == "5+" else int(c))
    assert ((arms == expected) | ((expected == 5) & arms.between(5, 7))).all()
    assert (on_disk["true_arms"][~clean] == 0).all()


def test_dataset_labels_from_the_cuts_are_the_true_classes(dataset):
    _, catalog = dataset
    keep, label = paper_cuts(catalog)
    assert keep.mean() >= 0.5
    assert (label[keep] == catalog["true_class"].to_numpy()[keep]).all()


def test_dataset_images_are_gz2_like_jpegs(dataset):
    out, catalog = dataset
    for file in catalog["file"]:
        with Image.open(out / file) as image:
            assert image.format == "JPEG"
            assert image.mode == "RGB"
            assert image.size == (424, 424)


def test_dataset_jpegs_carry_the_arm_number(dataset):
    """On the decoded JPEG files, the dominant Fourier mode is the true arm number."""
    out, catalog = dataset
    for true_class in CLEAN_CLASSES:
        rows = catalog[catalog["true_class"] == true_class]
        dominant = np.array([int(amplitudes_of_row(out, row).argmax()) + 1 for _, row in rows.iterrows()])
        if true_class == "5+":
            assert (dominant >= 5).mean() >= 0.8, dominant
        else:
            assert (dominant == int(true_class)).mean() >= 0.8, (true_class, dominant)


def test_dataset_masks(dataset):
    out, catalog = dataset
    for objid in catalog["dr7objid"][:6]:
        with np.load(out / "masks" / f"{objid}.npz") as masks:
            galaxy, arms = masks["galaxy"], masks["arms"]
        assert galaxy.shape == arms.shape == (424, 424)
        assert galaxy.dtype == arms.dtype == bool
        assert galaxy.any() and not (arms & ~galaxy).any()


def _files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_and_galaxies_independent_of_n(tmp_path):
    synthesize_dataset(tmp_path / "a", 1, seed=3, size=96, progress=False)
    synthesize_dataset(tmp_path / "b", 1, seed=3, size=96, progress=False)
    synthesize_dataset(tmp_path / "c", 1, seed=4, size=96, progress=False)
    larger = synthesize_dataset(tmp_path / "d", 2, seed=3, size=96, progress=False)
    a, b, c, d = (_files(tmp_path / k) for k in "abcd")
    assert a == b
    assert len(a) == 7  # six images and the catalogue
    images_a = {k: v for k, v in a.items() if k.startswith("images/")}
    assert all(c.get(k) != v for k, v in images_a.items())
    assert a["catalog.csv"] != c["catalog.csv"]
    # Galaxy i does not depend on how many galaxies are rendered.
    assert all(d[k] == v for k, v in images_a.items())
    assert len(larger) == 12


# ------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_per_class": 0}, "n_per_class"),
        ({"n_per_class": 1, "size": 16}, "size"),
        ({"n_per_class": 1, "seed": -1}, "seed"),
    ],
)
def test_synthesize_dataset_validates_inputs(tmp_path, kwargs, message):
    with pytest.raises(SpiralArmsError, match=message):
        synthesize_dataset(tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_synthesize_dataset_refuses_a_file_as_output(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(SpiralArmsError, match="not a folder"):
        synthesize_dataset(target, 1, progress=False)


def test_low_level_functions_validate_inputs():
    with pytest.raises(SpiralArmsError, match="class"):
        sample_galaxy_params("6", np.random.default_rng(0))
    with pytest.raises(SpiralArmsError, match="Generator"):
        sample_galaxy_params("2", 0)
    with pytest.raises(SpiralArmsError, match="size"):
        sample_galaxy_params("2", np.random.default_rng(0), size=10)
    with pytest.raises(SpiralArmsError, match="GalaxyParams"):
        render_galaxy({"true_class": "2"})


# ------------------------------------------------------------------------------ CLI


def test_cli_synth_writes_files_and_json(tmp_path):
    from typer.testing import CliRunner

    from spiralarms.cli import app

    out = tmp_path / "cli-set"
    result = CliRunner().invoke(app, ["synth", str(out), "--n-per-class", "2", "--size", "128", "--seed", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_images"] == 12
    assert summary["counts"] == {c: 2 for c in ARM_CLASSES}
    catalog = pd.read_csv(out / "catalog.csv")
    assert len(catalog) == 12
    for file in catalog["file"]:
        with Image.open(out / file) as image:
            assert image.size == (128, 128)


def test_cli_synth_masks_flag_and_bad_output(tmp_path):
    from typer.testing import CliRunner

    from spiralarms.cli import app

    runner = CliRunner()
    out = tmp_path / "with-masks"
    result = runner.invoke(app, ["synth", str(out), "--n-per-class", "1", "--size", "64", "--masks", "--json"])
    assert result.exit_code == 0, result.output
    assert len(list((out / "masks").glob("*.npz"))) == 6
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    result = runner.invoke(app, ["synth", str(not_a_folder), "--n-per-class", "1"])
    assert result.exit_code == 1
    assert "error:" in result.output and "not a folder" in result.output
