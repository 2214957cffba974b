"""Synthetic spiral galaxies with a known number of arms: the embedded default data set.

Each galaxy is an exponential disc with a Sérsic bulge (and sometimes a bar), whose
light is modulated by ``m`` logarithmic spiral arms ``r = r0 exp(tan(p) (theta -
phi_k))``. The disc is inclined and rotated on the sky, blurred by a Gaussian point
spread function, and placed on a noisy sky with field stars and, sometimes, a
companion galaxy. Images are gri-like colour composites (bulge redder, arms bluer)
with an asinh stretch, framed like Galaxy Zoo 2 cutouts: 424 x 424 pixels with the
galaxy in the centre, its disc within the central 224 x 224 crop.

Class ``?`` (can't tell) galaxies have arms that are too faint, too flocculent (many
short arm segments) or on a disc too small to resolve them.

The catalogue follows the GZ2 schema of SPEC.md; simulated volunteer votes agree with
the true class, with a spread of confidence, so that the paper's clean-sample cuts
keep most galaxies (about 80 %) and label them with their true class.

Every galaxy has its own random generator, derived from ``(seed, index)`` with
:class:`numpy.random.SeedSequence`: the same seed gives the same bytes, and a galaxy
does not depend on how many others are rendered.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.special import gammaincinv

from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.catalog.schema import (
    FEATURES_OR_DISK,
    GZ2_ID,
    NOT_EDGE_ON,
    SPIRAL,
    T11_ANSWERS,
)
from spiralarms.errors import SpiralArmsError

#: Image side of Galaxy Zoo 2 cutouts, in pixels; lengths are sampled for this size
#: and scaled for others.
GZ2_IMAGE_SIZE = 424

#: First synthetic ``dr7objid``; galaxy ``i`` gets ``SYNTHETIC_ID_BASE + i``.
SYNTHETIC_ID_BASE = 587_700_000_000_000_000

#: Why a ``?`` galaxy's arms cannot be counted.
CANT_TELL_REASONS: tuple[str, ...] = ("faint", "flocculent", "small")

# The other answers of the tasks whose cuts the paper applies (SPEC.md), so that each
# task's fractions sum to one as in a real GZ2 table.
SMOOTH = "t01_smooth_or_features_a01_smooth"
STAR_OR_ARTIFACT = "t01_smooth_or_features_a03_star_or_artifact"
EDGE_ON = "t02_edgeon_a04_yes"
NO_SPIRAL = "t04_spiral_a09_no_spiral"
_T01 = (SMOOTH, FEATURES_OR_DISK, STAR_OR_ARTIFACT)
_T02 = (EDGE_ON, NOT_EDGE_ON)
_T04 = (SPIRAL, NO_SPIRAL)

# gri-like colours of the components in (R, G, B) = (i, r, g): an old, red bulge, a
# white disc and blue star-forming arms. Rows sum to about the same luminance.
_BULGE_COLOUR = np.array([1.18, 0.92, 0.62], dtype=np.float32)
_DISC_COLOUR = np.array([1.02, 0.95, 0.88], dtype=np.float32)
_ARM_COLOUR = np.array([0.72, 0.90, 1.30], dtype=np.float32)


@dataclass(frozen=True)
class GalaxyParams:
    """Parameters of one synthetic galaxy; lengths in pixels of an ``image_size`` image.

    Attributes
    ----------
    true_class : str
        T11 class, one of ``ARM_CLASSES``.
    n_arms : int
        Number of arms rendered (the multiplicity ``m`` of the pattern). For ``?``
        galaxies this is the hidden pattern's multiplicity (its true arm count is 0).
    image_size : int
        Image side in pixels for which the lengths below are given.
    centre_x, centre_y : float
        Offset of the galaxy centre from the image centre, pixels.
    disc_scale_px : float
        Exponential disc scale length ``h``.
    disc_radius_px : float
        Radius where the disc is truncated (smoothly), about 3 to 3.5 ``h``.
    bulge_fraction : float
        Bulge-to-total flux ratio.
    bulge_reff_px : float
        Bulge effective (half-light) radius.
    sersic_n : float
        Bulge Sérsic index.
    bar_strength : float
        Peak surface brightness of the bar relative to the disc centre (0: no bar).
    bar_length_px : float
        Bar semi-major axis (the arms start at its ends).
    inclination_deg : float
        Disc inclination, 0 = face-on; never edge-on (cos i >= 0.45).
    position_angle_deg : float
        Angle of the projected major axis, counter-clockwise from the image x axis
        (rows increase downwards, so on screen it turns clockwise).
    pitch_deg : float
        Arm pitch angle; positive values give arms trailing counter-clockwise.
    arm_phase_deg : float
        Azimuth of the first arm at ``arm_inner_px``.
    arm_contrast : float
        Arm amplitude ``A``: the disc is multiplied by ``1 - d + A * profile``.
    interarm_depletion : float
        Fraction ``d`` of disc light removed between the arms.
    arm_width : float
        Gaussian arm width as a fraction of the perpendicular spacing between arms.
    arm_inner_px, arm_outer_px : float
        Radii where the arms fade in (bulge or bar region) and out.
    arm_amplitudes : tuple of float
        Relative amplitude of each arm (arms are not all equally bright).
    arm_phase_jitter_deg : tuple of float
        Azimuth offset of each arm from exact m-fold symmetry.
    flocculence : float
        0 for grand-design arms; up to 1 for arms broken into short segments.
    star_formation : float
        Amplitude of clumpy star-forming knots along the arms.
    psf_sigma_px : float
        Gaussian point spread function width.
    noise_sigma : float
        Sky noise per pixel, in units of the face-on disc central surface brightness.
    brightness : float
        Disc central surface brightness relative to the display stretch.
    has_companion : bool
        Whether a companion galaxy is drawn.
    companion_dx_px, companion_dy_px, companion_scale_px, companion_flux : float
        Companion offset from the centre, exponential scale length and total flux
        (in units of the main disc's central surface brightness times pixels^2).
    companion_axis_ratio, companion_position_angle_deg : float
        Companion shape.
    n_stars : int
        Number of field stars.
    cant_tell_reason : str
        For class ``?``: ``"faint"``, ``"flocculent"`` or ``"small"``; else ``""``.
    seed : int
        Seed of the noise, knots, stars and flocculent pattern drawn when rendering.
    """

    true_class: str
    n_arms: int
    image_size: int
    centre_x: float
    centre_y: float
    disc_scale_px: float
    disc_radius_px: float
    bulge_fraction: float
    bulge_reff_px: float
    sersic_n: float
    bar_strength: float
    bar_length_px: float
    inclination_deg: float
    position_angle_deg: float
    pitch_deg: float
    arm_phase_deg: float
    arm_contrast: float
    interarm_depletion: float
    arm_width: float
    arm_inner_px: float
    arm_outer_px: float
    arm_amplitudes: tuple[float, ...]
    arm_phase_jitter_deg: tuple[float, ...]
    flocculence: float
    star_formation: float
    psf_sigma_px: float
    noise_sigma: float
    brightness: float
    has_companion: bool
    companion_dx_px: float
    companion_dy_px: float
    companion_scale_px: float
    companion_flux: float
    companion_axis_ratio: float
    companion_position_angle_deg: float
    n_stars: int
    cant_tell_reason: str
    seed: int

    @property
    def true_arms(self) -> int:
        """The arm count a volunteer should give: ``n_arms``, or 0 for class ``?``."""
        return 0 if self.true_class == "?" else self.n_arms

    def scaled(self, size: int) -> GalaxyParams:
        """The same galaxy framed in a ``size`` x ``size`` image (lengths rescaled)."""
        if size == self.image_size:
            return self
        f = size / self.image_size
        lengths = (
            "centre_x", "centre_y", "disc_scale_px", "disc_radius_px", "bulge_reff_px",
            "bar_length_px", "arm_inner_px", "arm_outer_px", "psf_sigma_px",
            "companion_dx_px", "companion_dy_px", "companion_scale_px",
        )
        values = asdict(self)
        values.update({k: values[k] * f for k in lengths})
        values["companion_flux"] = self.companion_flux * f * f
        # Larger pixels collect more light per pixel: per-pixel noise relative to the
        # surface brightness falls in proportion to the pixel side.
        values["noise_sigma"] = self.noise_sigma * f
        values["image_size"] = int(size)
        return GalaxyParams(**values)


@dataclass(frozen=True)
class GalaxyMasks:
    """Boolean masks of a rendered galaxy, of the image's shape (rows, columns).

    Attributes
    ----------
    galaxy : numpy.ndarray of bool
        The projected disc, out to its truncation radius.
    arms : numpy.ndarray of bool
        Where the spiral-arm light exceeds half its local peak; inside ``galaxy``.
    """

    galaxy: np.ndarray
    arms: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        """The masks as ``{"galaxy": ..., "arms": ...}``."""
        return {"galaxy": self.galaxy, "arms": self.arms}


def _check_rng(rng: np.random.Generator) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise SpiralArmsError(
            f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), "
            f"not {type(rng).__name__}"
        )
    return rng


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 32:
        raise SpiralArmsError(f"size {size!r}: give an integer image side >= 32 pixels")
    return int(size)


def sample_galaxy_params(
    true_class: str, rng: np.random.Generator, size: int = GZ2_IMAGE_SIZE
) -> GalaxyParams:
    """Draw the parameters of one galaxy of a T11 class.

    Parameters
    ----------
    true_class : str
        One of ``ARM_CLASSES``: ``1``, ``2``, ``3``, ``4`` and ``5+`` (5 to 7 arms)
        get that many clear arms; ``?`` gets arms too faint, too flocculent or on a
        disc too small to count.
    rng : numpy.random.Generator
        Source of randomness.
    size : int, default 424
        Image side in pixels; lengths scale with it (the galaxy fills the same
        fraction of the frame as in a GZ2 cutout).

    Returns
    -------
    GalaxyParams

    Raises
    ------
    SpiralArmsError
        If the class is unknown, ``rng`` is not a Generator or ``size < 32``.
    """
    if true_class not in ARM_CLASSES:
        raise SpiralArmsError(
            f"class {true_class!r}: choose one of {', '.join(ARM_CLASSES)}"
        )
    rng = _check_rng(rng)
    size = _check_size(size)
    u = rng.uniform
    scale = size / GZ2_IMAGE_SIZE

    reason = ""
    if true_class == "?":
        reason = CANT_TELL_REASONS[int(rng.integers(len(CANT_TELL_REASONS)))]
    if true_class == "5+":
        n_arms = int(rng.integers(5, 8))
    elif true_class == "?":
        n_arms = int(rng.integers(6, 11)) if reason == "flocculent" else int(rng.integers(1, 6))
    else:
        n_arms = int(true_class)

    # Disc radius 3.0-3.4 h, i.e. 60-105 px at 424: inside the 224 centre crop as in
    # GZ2, whose scale of 0.02 petroR90 per pixel puts petroR90 at ~50 px.
    disc_scale = u(20.0, 31.0)
    if reason == "small":
        disc_scale = u(4.0, 7.0)
    disc_radius = disc_scale * u(3.0, 3.4)
    cos_i = u(0.45, 1.0)
    # One-armed galaxies are lopsided, open spirals. Five to seven tightly wound arms
    # would merge into rings at SDSS resolution, so they are drawn more open.
    pitch_range = {1: (18.0, 35.0), 2: (12.0, 32.0), 3: (14.0, 34.0), 4: (16.0, 36.0)}
    pitch = u(*pitch_range.get(n_arms, (18.0, 40.0)))
    if rng.random() < 0.5:
        pitch = -pitch  # S- or Z-shaped
    has_bar = true_class != "?" and n_arms <= 4 and rng.random() < 0.3
    bar_length = disc_scale * u(0.6, 1.0) if has_bar else 0.0
    arm_inner = max(bar_length, disc_scale * u(0.45, 0.75))

    if reason == "faint":
        contrast, depletion = u(0.12, 0.3), u(0.0, 0.1)
    elif reason == "flocculent":
        contrast, depletion = u(1.8, 2.8), u(0.35, 0.55)
    else:
        contrast, depletion = u(1.3, 2.4), u(0.3, 0.55)
    amplitudes = tuple(float(a) for a in u(0.75, 1.0, size=n_arms))
    # Arms depart from exact m-fold symmetry by up to 8 % of their spacing.
    jitter = tuple(float(j) for j in u(-0.08, 0.08, size=n_arms) * 360.0 / n_arms)

    noise = u(0.012, 0.03)
    brightness = u(0.8, 1.3)
    if reason == "faint":
        noise *= u(1.2, 1.8)
        brightness *= u(0.5, 0.8)

    has_companion = bool(rng.random() < 0.15)
    comp_r = disc_radius * u(1.25, 1.9) if reason != "small" else u(45.0, 90.0)
    comp_angle = u(0.0, 2.0 * np.pi)
    comp_scale = disc_scale * u(0.2, 0.45) if reason != "small" else u(3.0, 8.0)

    return GalaxyParams(
        true_class=true_class,
        n_arms=n_arms,
        image_size=size,
        centre_x=u(-2.0, 2.0) * scale,
        centre_y=u(-2.0, 2.0) * scale,
        disc_scale_px=disc_scale * scale,
        disc_radius_px=disc_radius * scale,
        bulge_fraction=u(0.05, 0.35),
        bulge_reff_px=disc_scale * u(0.12, 0.25) * scale,
        sersic_n=u(1.5, 4.0),
        bar_strength=u(0.3, 0.7) if has_bar else 0.0,
        bar_length_px=bar_length * scale,
        inclination_deg=math.degrees(math.acos(cos_i)),
        position_angle_deg=u(0.0, 180.0),
        pitch_deg=pitch,
        arm_phase_deg=u(0.0, 360.0),
        arm_contrast=contrast,
        interarm_depletion=depletion,
        arm_width=u(0.11, 0.16),
        arm_inner_px=arm_inner * scale,
        arm_outer_px=disc_radius * u(0.85, 1.0) * scale,
        arm_amplitudes=amplitudes,
        arm_phase_jitter_deg=jitter,
        flocculence=u(0.7, 1.0) if reason == "flocculent" else u(0.0, 0.15),
        star_formation=u(0.2, 0.6),
        psf_sigma_px=u(1.1, 1.8) * scale,
        noise_sigma=noise * scale,
        brightness=brightness,
        has_companion=has_companion,
        companion_dx_px=comp_r * math.cos(comp_angle) * scale,
        companion_dy_px=comp_r * math.sin(comp_angle) * scale,
        companion_scale_px=comp_scale * scale,
        companion_flux=u(0.05, 0.25) * 2.0 * np.pi * disc_scale**2 * scale**2,
        companion_axis_ratio=u(0.4, 1.0),
        companion_position_angle_deg=u(0.0, 180.0),
        n_stars=int(rng.poisson(3.0 * scale * scale)),
        cant_tell_reason=reason,
        seed=int(rng.integers(2**31)),
    )


def _sersic_b(n: float) -> float:
    """``b_n`` such that the effective radius holds half the Sérsic light."""
    return float(gammaincinv(2.0 * n, 0.5))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Unit-variance Gaussian random field correlated over about ``cell`` pixels."""
    coarse = (max(2, int(shape[0] / cell) + 2), max(2, int(shape[1] / cell) + 2))
    field = rng.standard_normal(coarse, dtype=np.float32)
    # Bilinear upsampling of a coarse grid, one axis at a time: cheap, smooth enough
    # for patchiness, and elementwise (no BLAS), so bit-identical whatever the threads.
    lower, weight = _linear_interpolation_weights(shape[0], coarse[0])
    field = field[lower] * (1 - weight)[:, None] + field[lower + 1] * weight[:, None]
    lower, weight = _linear_interpolation_weights(shape[1], coarse[1])
    field = field[:, lower] * (1 - weight) + field[:, lower + 1] * weight
    return field / np.float32(0.75)


def _linear_interpolation_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower sample index and weight of the upper one, to interpolate n_in samples onto n_out."""
    position = np.linspace(0.0, n_in - 1.0, n_out, dtype=np.float32)
    lower = np.minimum(position.astype(np.int64), n_in - 2)
    return lower, position - lower


def _disc_coordinates(p: GalaxyParams, ys: np.ndarray, xs: np.ndarray):
    """Disc-plane coordinates (x, y along the major and minor axes) of sky pixels."""
    pa = math.radians(p.position_angle_deg)
    cos_i = math.cos(math.radians(p.inclination_deg))
    ca, sa = np.float32(math.cos(pa)), np.float32(math.sin(pa))
    x_major = xs * ca + ys * sa
    y_minor = -xs * sa + ys * ca
    return x_major, y_minor, y_minor / np.float32(cos_i)


def _arm_profile(
    p: GalaxyParams, r: np.ndarray, theta: np.ndarray, window: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Spiral-arm profile in [0, ~1]: a Gaussian across the nearest arm, radially windowed.

    The phase ``psi = theta - ln(r / r_in) / tan(p) - phi`` is constant along a
    logarithmic spiral; ``m psi / 2 pi`` rounded gives the nearest arm and the
    remainder the azimuthal distance to it, so all ``m`` arms cost one pass.
    """
    m = p.n_arms
    tan_p = math.tan(math.radians(p.pitch_deg))
    sin_p = abs(math.sin(math.radians(p.pitch_deg)))
    log_r = np.log(np.maximum(r, np.float32(0.5)) / np.float32(p.arm_inner_px))
    psi = theta - log_r / np.float32(tan_p) - np.float32(math.radians(p.arm_phase_deg))
    if p.flocculence > 0.05:
        # Flocculent arms: the phase wanders with position, so arms break into segments.
        psi = psi + np.float32(0.9 * p.flocculence) * _smooth_noise(rng, r.shape, 0.6 * p.disc_scale_px)
    two_pi = np.float32(2.0 * np.pi)
    u = psi * np.float32(m / (2.0 * np.pi))
    nearest = np.floor(u + np.float32(0.5))
    arm_index = nearest.astype(np.int64) % m
    jitter = np.radians(np.asarray(p.arm_phase_jitter_deg, dtype=np.float32))
    d_theta = (u - nearest) * (two_pi / np.float32(m)) - jitter[arm_index]
    # Perpendicular distance to the arm and the arm width, both in pixels; arms widen
    # outwards with their spacing, within physical limits.
    spacing = r * np.float32(2.0 * np.pi / m * sin_p)
    scale = p.image_size / GZ2_IMAGE_SIZE
    width = np.clip(np.float32(p.arm_width) * spacing, 1.0 * scale, np.float32(0.16) * r + 1.0 * scale)
    profile = np.exp(np.float32(-0.5) * np.square(r * d_theta * np.float32(sin_p) / width))
    profile *= np.asarray(p.arm_amplitudes, dtype=np.float32)[arm_index]
    if p.flocculence > 0.05:
        patches = _smooth_noise(rng, r.shape, 0.4 * p.disc_scale_px)
        keep = np.clip(np.float32(0.3) + patches * np.float32(1.5), 0.0, 1.0)
        profile *= np.float32(1.0 - p.flocculence) + np.float32(p.flocculence) * keep
    return profile * window


def _radial_window(p: GalaxyParams, r: np.ndarray) -> np.ndarray:
    """Arms fade in over the bulge or bar region and out towards the disc edge."""
    rin, rout = np.float32(p.arm_inner_px), np.float32(p.arm_outer_px)
    fade_in = np.clip((r - np.float32(0.6) * rin) / (np.float32(0.6) * rin), 0.0, 1.0)
    fade_out = np.clip((rout - r) / (np.float32(0.35) * rout) + np.float32(0.3), 0.0, 1.0)
    return fade_in * fade_in * (3 - 2 * fade_in) * fade_out


def render_galaxy(
    params: GalaxyParams, size: int | None = None
) -> tuple[np.ndarray, GalaxyMasks]:
    """Render one galaxy as an RGB cutout with its galaxy and arm masks.

    Parameters
    ----------
    params : GalaxyParams
        The galaxy, e.g. from :func:`sample_galaxy_params`.
    size : int, optional
        Image side in pixels; defaults to ``params.image_size`` (424 for GZ2). Other
        sizes rescale the galaxy so that it fills the same fraction of the frame.

    Returns
    -------
    image : numpy.ndarray of uint8, shape (size, size, 3)
        gri-like colour composite, asinh stretch, sky noise and PSF included.
    masks : GalaxyMasks
        Boolean ``galaxy`` (disc) and ``arms`` masks of shape (size, size).

    Raises
    ------
    SpiralArmsError
        If ``params`` is not a GalaxyParams or ``size < 32``.
    """
    if not isinstance(params, GalaxyParams):
        raise SpiralArmsError(f"params must be GalaxyParams, not {type(params).__name__}")
    size = params.image_size if size is None else _check_size(size)
    p = params.scaled(size)
    rng = np.random.default_rng(p.seed)
    f32 = np.float32

    # Linear flux in units of the face-on disc central surface brightness.
    image = np.zeros((3, size, size), dtype=np.float32)
    galaxy_mask = np.zeros((size, size), dtype=bool)
    arms_mask = np.zeros((size, size), dtype=bool)
    cx = (size - 1) / 2.0 + p.centre_x
    cy = (size - 1) / 2.0 + p.centre_y

    # The galaxy is computed in a box around it only: most of a GZ2 frame is sky.
    half = int(math.ceil(p.disc_radius_px * 1.25 + 4 * p.psf_sigma_px + 2))
    y0, y1 = max(0, int(cy) - half), min(size, int(cy) + half + 2)
    x0, x1 = max(0, int(cx) - half), min(size, int(cx) + half + 2)
    ys = (np.arange(y0, y1, dtype=np.float32) - f32(cy))[:, None]
    xs = (np.arange(x0, x1, dtype=np.float32) - f32(cx))[None, :]
    x_major, y_minor, y_disc = _disc_coordinates(p, ys, xs)
    r = np.sqrt(x_major * x_major + y_disc * y_disc)
    theta = np.arctan2(y_disc, x_major)

    h = f32(p.disc_scale_px)
    # Smooth truncation; the exponent is capped so that float32 cannot overflow.
    edge = 1.0 / (1.0 + np.exp(np.minimum((r - f32(p.disc_radius_px)) / (f32(0.25) * h), f32(60.0))))
    disc = np.exp(-r / h) * edge
    window = _radial_window(p, r)
    arms = _arm_profile(p, r, theta, window, rng)
    if p.star_formation > 0:
        knots = _smooth_noise(rng, r.shape, max(2.0, 0.15 * p.disc_scale_px))
        arms_light = disc * f32(p.arm_contrast) * arms * np.clip(1 + f32(p.star_formation) * knots, 0.2, None)
    else:
        arms_light = disc * f32(p.arm_contrast) * arms
    disc_light = disc * (1 - f32(p.interarm_depletion) * window)
    if p.bar_strength > 0:
        # A Ferrers-like bar along a random disc-plane axis that ends where the arms begin.
        bar_axis = math.radians(p.arm_phase_deg)
        cb, sb = f32(math.cos(bar_axis)), f32(math.sin(bar_axis))
        along = (x_major * cb + y_disc * sb) / f32(p.bar_length_px)
        across = (-x_major * sb + y_disc * cb) / f32(0.25 * p.bar_length_px)
        disc_light = disc_light + f32(p.bar_strength) * np.clip(1 - along * along - across * across, 0, None) ** 2

    # Bulge: Sérsic profile, rounder than the disc, normalised to its flux fraction.
    cos_i = math.cos(math.radians(p.inclination_deg))
    q_bulge = max(cos_i, 0.75)
    n, re = p.sersic_n, p.bulge_reff_px
    b = _sersic_b(n)
    disc_flux = 2.0 * math.pi * p.disc_scale_px**2 * cos_i
    bulge_flux = p.bulge_fraction / (1.0 - p.bulge_fraction) * disc_flux
    bulge_norm = bulge_flux / (
        2.0 * math.pi * n * re * re * q_bulge * math.exp(b) * b ** (-2.0 * n) * math.gamma(2.0 * n)
    )
    r_bulge = np.sqrt(x_major * x_major + (y_minor / f32(q_bulge)) ** 2) / f32(re)
    bulge = f32(bulge_norm) * np.exp(-f32(b) * (np.power(r_bulge, f32(1.0 / n)) - 1))

    box = image[:, y0:y1, x0:x1]
    for c in range(3):
        box[c] = bulge * _BULGE_COLOUR[c] + disc_light * _DISC_COLOUR[c] + arms_light * _ARM_COLOUR[c]
    galaxy_mask[y0:y1, x0:x1] = r <= p.disc_radius_px
    arms_mask[y0:y1, x0:x1] = (arms > 0.5) & (r <= p.disc_radius_px)

    # Blur the galaxy box by the PSF; the companion and stars are drawn blurred.
    pad = int(4 * p.psf_sigma_px) + 1
    gy0, gy1 = max(0, y0 - pad), min(size, y1 + pad)
    gx0, gx1 = max(0, x0 - pad), min(size, x1 + pad)
    image[:, gy0:gy1, gx0:gx1] = ndimage.gaussian_filter(
        image[:, gy0:gy1, gx0:gx1], (0, p.psf_sigma_px, p.psf_sigma_px), truncate=3.5
    )
    if p.has_companion:
        _add_companion(image, p, cx, cy)
    _add_stars(image, p, rng)

    image *= f32(p.brightness)
    # Sky and photon noise: Gaussian with the Poisson variance (sky-dominated, plus the
    # galaxy's own shot noise where it is bright).
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    sky_var = f32(p.noise_sigma) ** 2
    gain = f32(p.noise_sigma) ** 2 / f32(0.02)  # variance per unit flux: shot noise
    image += noise * np.sqrt(sky_var + gain * np.maximum(image, 0))

    return _stretch(image), GalaxyMasks(galaxy=galaxy_mask, arms=arms_mask)


def _add_companion(image: np.ndarray, p: GalaxyParams, cx: float, cy: float) -> None:
    """Add a small, smooth, reddish companion galaxy (exponential profile, PSF-blurred)."""
    size = image.shape[1]
    ccx, ccy = cx + p.companion_dx_px, cy + p.companion_dy_px
    half = int(6 * p.companion_scale_px) + 2
    y0, y1 = max(0, int(ccy) - half), min(size, int(ccy) + half + 2)
    x0, x1 = max(0, int(ccx) - half), min(size, int(ccx) + half + 2)
    if y0 >= y1 or x0 >= x1:
        return
    ys = (np.arange(y0, y1, dtype=np.float32) - np.float32(ccy))[:, None]
    xs = (np.arange(x0, x1, dtype=np.float32) - np.float32(ccx))[None, :]
    pa = math.radians(p.companion_position_angle_deg)
    u = xs * np.float32(math.cos(pa)) + ys * np.float32(math.sin(pa))
    v = (-xs * np.float32(math.sin(pa)) + ys * np.float32(math.cos(pa))) / np.float32(p.companion_axis_ratio)
    rc = np.sqrt(u * u + v * v) / np.float32(p.companion_scale_px)
    peak = p.companion_flux / (2 * math.pi * p.companion_scale_px**2 * p.companion_axis_ratio)
    light = ndimage.gaussian_filter(np.float32(peak) * np.exp(-rc), p.psf_sigma_px, truncate=3.5)
    colour = (_BULGE_COLOUR + _DISC_COLOUR) / 2
    for c in range(3):
        image[c, y0:y1, x0:x1] += light * colour[c]


def _add_stars(image: np.ndarray, p: GalaxyParams, rng: np.random.Generator) -> None:
    """Add field stars: PSF-shaped point sources of random flux and colour."""
    size = image.shape[1]
    sigma = p.psf_sigma_px
    for _ in range(p.n_stars):
        x, y = rng.uniform(0, size - 1, size=2)
        # Log-uniform flux: mostly faint stars, a few bright enough to saturate.
        flux = 10 ** rng.uniform(-0.5, 1.8) * 2 * math.pi * sigma * sigma * 0.05
        temperature = rng.uniform(-1.0, 1.0)  # -1 red, +1 blue
        colour = np.array([1 - 0.35 * temperature, 1.0, 1 + 0.35 * temperature], dtype=np.float32)
        half = int(math.ceil(sigma * 5)) + 1
        y0, y1 = max(0, int(y) - half), min(size, int(y) + half + 1)
        x0, x1 = max(0, int(x) - half), min(size, int(x) + half + 1)
        dy = (np.arange(y0, y1, dtype=np.float32) - np.float32(y))[:, None]
        dx = (np.arange(x0, x1, dtype=np.float32) - np.float32(x))[None, :]
        psf = np.exp((dx * dx + dy * dy) / np.float32(-2 * sigma * sigma))
        psf *= np.float32(flux / (2 * math.pi * sigma * sigma))
        image[:, y0:y1, x0:x1] += colour[:, None, None] * psf[None]


# Display stretch: asinh, soft below ~ the outer disc, saturating in the bulge core.
_STRETCH_SOFT = 0.06
_STRETCH_WHITE = 2.5
_STRETCH_BLACK = -0.01


def _stretch(image: np.ndarray) -> np.ndarray:
    """Asinh stretch of a (3, H, W) linear image into a (H, W, 3) uint8 RGB image."""
    soft = np.float32(_STRETCH_SOFT)
    scaled = np.arcsinh((image - np.float32(_STRETCH_BLACK)) / soft)
    scaled *= np.float32(255.0 / math.asinh((_STRETCH_WHITE - _STRETCH_BLACK) / _STRETCH_SOFT))
    np.clip(scaled, 0, 255, out=scaled)
    return np.ascontiguousarray(scaled.transpose(1, 2, 0)).astype(np.uint8)


def _weighted_counts(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vote weights after GZ2's down-weighting of inconsistent volunteers."""
    # Most volunteers keep weight 1; a few percent of votes are down-weighted.
    return counts * rng.uniform(0.9, 1.0, size=counts.shape)


def _task_columns(
    answers: tuple[str, ...], counts: np.ndarray, weights: np.ndarray, debiased: np.ndarray
) -> dict[str, float]:
    """GZ2 columns ``_count``, ``_weight``, ``_fraction``, ``_weighted_fraction``, ``_debiased``."""
    total, weight_total = counts.sum(), weights.sum()
    fraction = counts / total if total > 0 else np.zeros_like(weights)
    weighted = weights / weight_total if weight_total > 0 else np.zeros_like(weights)
    out: dict[str, float] = {}
    for k, answer in enumerate(answers):
        out[f"{answer}_count"] = int(counts[k])
        out[f"{answer}_weight"] = round(float(weights[k]), 3)
        out[f"{answer}_fraction"] = round(float(fraction[k]), 3)
        out[f"{answer}_weighted_fraction"] = round(float(weighted[k]), 3)
        out[f"{answer}_debiased"] = round(float(debiased[k]), 3)
    return out


def _debias(weighted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible debiasing: a mild, monotone power transform renormalised to one.

    Hart et al. (2016) correct the fractions for the redshift bias; on real tables the
    debiased fractions stay within a few hundredths of the weighted ones and keep
    their order. Zero-vote tasks stay zero.
    """
    if weighted.sum() <= 0:
        return np.zeros_like(weighted)
    sharpened = weighted ** rng.uniform(0.9, 1.25)
    return sharpened / sharpened.sum()


def simulate_gz2_votes(params: GalaxyParams, rng: np.random.Generator) -> dict[str, float]:
    """Simulate Galaxy Zoo 2 volunteer votes for a synthetic galaxy.

    Volunteers (40 to 60) answer T01 (smooth / features / star), those who saw
    features answer T02 (edge-on?), those who said not edge-on answer T04 (spiral?),
    and those who saw a spiral answer T11 (how many arms?). T11 votes are multinomial
    with a probability vector peaked at the true class with a random confidence, the
    rest going mostly to neighbouring arm numbers and ``?``. Highly inclined, faint or
    small galaxies get less confident answers.

    Parameters
    ----------
    params : GalaxyParams
        The galaxy (its class, inclination and ``?`` reason shape the answers).
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    dict
        ``total_classifications``, ``total_votes`` and for every answer of T01, T02,
        T04 and T11 the columns ``_count``, ``_weight``, ``_fraction``,
        ``_weighted_fraction`` and ``_debiased`` (names as in SPEC.md).
    """
    if not isinstance(params, GalaxyParams):
        raise SpiralArmsError(f"params must be GalaxyParams, not {type(params).__name__}")
    rng = _check_rng(rng)
    n_volunteers = int(rng.integers(40, 61))
    hard = params.cant_tell_reason in ("faint", "small")
    cos_i = math.cos(math.radians(params.inclination_deg))

    # T01: smooth, features or disc, star or artefact.
    p_features = rng.beta(9.0, 1.6) if not hard else rng.beta(6.0, 1.8)
    p_artifact = rng.uniform(0.0, 0.03)
    p_t01 = np.array([(1 - p_features) * (1 - p_artifact), p_features * (1 - p_artifact), p_artifact])
    t01 = rng.multinomial(n_volunteers, p_t01)
    # T02: edge-on? More inclined discs draw more "yes".
    p_not_edge_on = np.clip(rng.beta(14.0, 0.9) - 0.35 * (1 - cos_i) ** 1.5, 0.0, 1.0)
    t02 = rng.multinomial(t01[1], [1 - p_not_edge_on, p_not_edge_on])
    # T04: spiral?
    p_spiral = rng.beta(12.0, 0.9) if not hard else rng.beta(7.0, 1.2)
    t04 = rng.multinomial(t02[1], [p_spiral, 1 - p_spiral])
    # T11: how many arms? Confidence in the true class, the rest spread around it.
    true_index = ARM_CLASSES.index(params.true_class)
    confidence = 1.0 - rng.beta(1.3, 14.0)
    spread = np.full(len(ARM_CLASSES), 0.05)
    if params.true_class == "?":
        spread[:5] = (0.1, 0.4, 0.2, 0.1, 0.2)
    else:
        for step, share in ((1, 0.35), (-1, 0.35)):
            if 0 <= true_index + step < 5:
                spread[true_index + step] = share
        spread[-1] = 0.25
    spread[true_index] = 0.0
    p_t11 = (1 - confidence) * spread / spread.sum()
    p_t11[true_index] = confidence
    t11 = rng.multinomial(t04[0], p_t11 / p_t11.sum())

    out: dict[str, float] = {
        "total_classifications": n_volunteers,
        "total_votes": int(t01.sum() + t02.sum() + t04.sum() + t11.sum()),
    }
    for answers, counts in ((_T01, t01), (_T02, t02), (_T04, t04), (T11_ANSWERS, t11)):
        weights = _weighted_counts(counts.astype(float), rng)
        weighted = weights / weights.sum() if weights.sum() > 0 else np.zeros_like(weights)
        if answers is _T01:
            # Debiasing raises the features fraction (distant discs look smooth).
            debiased = weighted.copy()
            boost = rng.uniform(0.0, 0.08) * (1 - weighted[1])
            debiased[1] += boost
            rest = weighted[[0, 2]].sum()
            if rest > 0:
                debiased[[0, 2]] *= (rest - boost) / rest
        else:
            debiased = _debias(weighted, rng)
        out.update(_task_columns(answers, counts, weights, debiased))
    return out


def galaxy_id(index: int) -> int:
    """The ``dr7objid`` of synthetic galaxy ``index`` (deterministic, unique)."""
    return SYNTHETIC_ID_BASE + int(index)


def galaxy_class(index: int) -> str:
    """The T11 class of synthetic galaxy ``index``: classes interleave in class order."""
    return ARM_CLASSES[int(index) % len(ARM_CLASSES)]


def galaxy_rng(seed: int, index: int) -> np.random.Generator:
    """Random generator of galaxy ``index`` of a data set with ``seed``.

    Derived from ``(seed, index)`` by :class:`numpy.random.SeedSequence`, so a galaxy
    is the same whatever the number of galaxies rendered and their order.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def make_galaxy(index: int, seed: int = 0, size: int = GZ2_IMAGE_SIZE):
    """Parameters, image, masks and catalogue row of synthetic galaxy ``index``.

    Parameters
    ----------
    index : int
        Position in the data set (its class is ``galaxy_class(index)``).
    seed : int, default 0
        Data set seed.
    size : int, default 424
        Image side in pixels.

    Returns
    -------
    params : GalaxyParams
    image : numpy.ndarray of uint8, shape (size, size, 3)
    masks : GalaxyMasks
    row : dict
        The catalogue row (id, file, votes, truth and rendering parameters).
    """
    if index < 0:
        raise SpiralArmsError(f"index {index}: give a non-negative galaxy index")
    rng = galaxy_rng(seed, index)
    params = sample_galaxy_params(galaxy_class(index), rng, size)
    image, masks = render_galaxy(params)
    objid = galaxy_id(index)
    row: dict[str, object] = {GZ2_ID: objid, "file": f"images/{objid}.jpg"}
    row.update(simulate_gz2_votes(params, rng))
    row.update(
        {
            "true_class": params.true_class,
            "true_arms": params.true_arms,
            "n_arms_rendered": params.n_arms,
            "cant_tell_reason": params.cant_tell_reason or "none",
            "pitch_deg": round(params.pitch_deg, 3),
            "inclination_deg": round(params.inclination_deg, 3),
            "position_angle_deg": round(params.position_angle_deg, 3),
            "centre_x_px": round(params.centre_x, 3),
            "centre_y_px": round(params.centre_y, 3),
            "disc_scale_px": round(params.disc_scale_px, 3),
            "disc_radius_px": round(params.disc_radius_px, 3),
            "bulge_fraction": round(params.bulge_fraction, 4),
            "sersic_n": round(params.sersic_n, 3),
            "bar_strength": round(params.bar_strength, 3),
            "arm_contrast": round(params.arm_contrast, 4),
            "arm_width": round(params.arm_width, 4),
            "arm_phase_deg": round(params.arm_phase_deg, 3),
            "flocculence": round(params.flocculence, 3),
            "psf_sigma_px": round(params.psf_sigma_px, 3),
            "noise_sigma": round(params.noise_sigma, 5),
            "has_companion": params.has_companion,
            "n_stars": params.n_stars,
            "image_size": size,
            "seed": int(seed),
            "galaxy_seed": params.seed,
        }
    )
    return params, image, masks, row


def synthesize_dataset(
    out: str | Path,
    n_per_class: int,
    seed: int = 0,
    size: int = GZ2_IMAGE_SIZE,
    write_masks: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Render a synthetic data set: JPEG cutouts and a GZ2-schema catalogue.

    Writes ``out/images/<dr7objid>.jpg`` (JPEG quality 90), ``out/catalog.csv`` and,
    with ``write_masks``, ``out/masks/<dr7objid>.npz`` (boolean ``galaxy`` and
    ``arms``). Galaxies are rendered in class-interleaved order (1, 2, 3, 4, 5+, ?,
    1, ...), each from its own generator (see :func:`galaxy_rng`), so the same seed
    gives the same bytes and a larger ``n_per_class`` only appends galaxies.

    Parameters
    ----------
    out : str or Path
        Output folder (created; existing files of the same names are overwritten).
    n_per_class : int
        Galaxies per T11 class; ``6 * n_per_class`` in all.
    seed : int, default 0
        Random seed (non-negative).
    size : int, default 424
        Image side in pixels (GZ2 cutouts are 424).
    write_masks : bool, default False
        Also write the galaxy and arm masks.
    progress : bool, default True
        Show a progress bar on standard error.

    Returns
    -------
    pandas.DataFrame
        The catalogue as written: ``dr7objid``, ``file``, the GZ2 vote columns,
        ``true_class``, ``true_arms`` (0 for ``?``), ``cant_tell_reason`` (``faint``,
        ``flocculent``, ``small``, or ``none`` for countable arms) and the rendering
        parameters (lengths in pixels of the written images).

    Raises
    ------
    SpiralArmsError
        If ``n_per_class < 1``, ``seed < 0``, ``size < 32`` or ``out`` is a file.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise SpiralArmsError(f"n_per_class {n_per_class!r}: give an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpiralArmsError(f"seed {seed!r}: give a non-negative integer")
    size = _check_size(size)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpiralArmsError(f"{out}: exists and is not a folder")
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir = out / "masks"
    if write_masks:
        mask_dir.mkdir(exist_ok=True)

    rows = []
    n_total = int(n_per_class) * len(ARM_CLASSES)
    for index in tqdm(range(n_total), desc="synth", unit="img", disable=not progress):
        _, image, masks, row = make_galaxy(index, seed=int(seed), size=size)
        Image.fromarray(image).save(out / str(row["file"]), format="JPEG", quality=90)
        if write_masks:
            np.savez_compressed(mask_dir / f"{row[GZ2_ID]}.npz", **masks.as_dict())
        rows.append(row)
    catalog = pd.DataFrame(rows)
    catalog.to_csv(out / "catalog.csv", index=False)
    return catalog
