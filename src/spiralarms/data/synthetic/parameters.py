"""Parameters of a synthetic galaxy and how a renderer preset draws them for a T11 class.

Lengths are in pixels of an ``image_size`` image; :meth:`GalaxyParams.scaled` frames
the same galaxy in another size.

Two presets (:data:`PRESETS`) draw galaxies:

``sdss`` (the default)
    Fitted to the statistics of real SDSS Galaxy Zoo cutouts
    (``benchmarks/bench_realism.py``, ``docs/synthetic.md``). Every GZ2 cutout frames
    its galaxy alike (0.02 petroR90 arcsec per pixel), so what changes from galaxy to
    galaxy is the pixel scale: a galaxy small on the sky gets small pixels, and with
    them a wide seeing disc (1.1-1.8 arcsec FWHM), sky noise correlated over several
    pixels (the 0.396 arcsec SDSS pixels resampled) and few neighbours in the frame.
    Colours are drawn per component (red bulge, bluer disc growing bluer outwards,
    blue arms), the PSF has wings, the display is the colour-preserving asinh
    composite of Lupton et al. (2004) and the JPEG quality that of the cutouts (75).
    The default since its demo model keeps the demo's macro F1 at 0.8 or more while
    saying more on real cutouts than ``crisp``'s (``docs/synthetic.md``).
``crisp``
    The first renderer: large, sharp, high-contrast galaxies on a white-noise sky with
    a plain per-channel asinh stretch, JPEG quality 90; fast, and its arms survive
    small images (the tests' galaxies of 64-96 pixels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.errors import SpiralArmsError

#: Image side of Galaxy Zoo 2 cutouts, in pixels; lengths are sampled for this size
#: and scaled for others.
GZ2_IMAGE_SIZE = 424

#: Why a ``?`` galaxy's arms cannot be counted.
CANT_TELL_REASONS: tuple[str, ...] = ("faint", "flocculent", "small")

#: Side of an SDSS imaging pixel, arcsec.
SDSS_PIXEL_ARCSEC = 0.396

# Colours in (R, G, B) = (i, r, g) display flux of the crisp preset: an old, red bulge,
# a white disc and blue star-forming arms. Rows sum to about the same luminance.
_CRISP_BULGE_COLOUR = (1.18, 0.92, 0.62)
_CRISP_DISC_COLOUR = (1.02, 0.95, 0.88)
_CRISP_ARM_COLOUR = (0.72, 0.90, 1.30)


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
        Disc inclination, 0 = face-on; never edge-on (cos i >= 0.45 in ``crisp``;
        in ``sdss`` >= 0.5 for countable arms, >= 0.25 for ``?``).
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
    preset : str
        The preset that drew the galaxy (:data:`PRESETS`); it chooses the display
        stretch (``crisp``: per-channel asinh; ``sdss``: Lupton et al. 2004) and the
        kind of field sources.
    bulge_colour, disc_colour, disc_outer_colour, arm_colour : tuple of float
        Display flux of each component in (R, G, B) = (i, r, g), per unit luminance;
        the disc colour goes from ``disc_colour`` at the centre to
        ``disc_outer_colour`` at three scale lengths.
    psf_wing_fraction : float
        Share of the PSF's light in a Gaussian wing twice as wide as its core.
    noise_correlation_px : float
        Width (Gaussian sigma) over which the sky noise is correlated; 0 for white
        noise.
    noise_common_fraction : float
        Share of the noise variance common to the three channels (0: independent).
    sky_pedestal : tuple of float
        Sky level above the display's black point in each band (R, G, B), in units
        of ``noise_sigma``: what the sky subtraction of each band left (``sdss``).
    disc_edge_width : float
        Width of the disc's smooth truncation at ``disc_radius_px``, in scale lengths.
    lopsidedness, lopsided_phase_deg : float
        Amplitude and direction of an m = 1 distortion of the disc light.
    clumpiness : float
        Amplitude of patchy light (star-forming clumps, dust) over the whole disc.
    shot_noise_flux : float
        Flux (before ``brightness``) at which the galaxy's own shot noise equals the
        sky noise.
    pixel_scale_arcsec : float
        Arcsec per pixel (NaN where the preset does not model it).
    n_neighbours : int
        Number of faint background galaxies in the frame (besides the companion).
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
    preset: str = "crisp"
    bulge_colour: tuple[float, float, float] = _CRISP_BULGE_COLOUR
    disc_colour: tuple[float, float, float] = _CRISP_DISC_COLOUR
    disc_outer_colour: tuple[float, float, float] = _CRISP_DISC_COLOUR
    arm_colour: tuple[float, float, float] = _CRISP_ARM_COLOUR
    psf_wing_fraction: float = 0.0
    noise_correlation_px: float = 0.0
    noise_common_fraction: float = 0.0
    sky_pedestal: tuple[float, float, float] = (0.0, 0.0, 0.0)
    disc_edge_width: float = 0.25
    lopsidedness: float = 0.0
    lopsided_phase_deg: float = 0.0
    clumpiness: float = 0.0
    shot_noise_flux: float = 0.02
    pixel_scale_arcsec: float = float("nan")
    n_neighbours: int = 0

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
            "companion_dx_px", "companion_dy_px", "companion_scale_px", "noise_correlation_px",
        )
        values = asdict(self)
        values.update({k: values[k] * f for k in lengths})
        values["pixel_scale_arcsec"] = self.pixel_scale_arcsec / f
        values["companion_flux"] = self.companion_flux * f * f
        # Larger pixels collect more light per pixel: per-pixel noise relative to the
        # surface brightness falls in proportion to the pixel side.
        values["noise_sigma"] = self.noise_sigma * f
        values["image_size"] = int(size)
        return GalaxyParams(**values)


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
    true_class: str, rng: np.random.Generator, size: int = GZ2_IMAGE_SIZE, preset: str | None = None
) -> GalaxyParams:
    """Draw the parameters of one galaxy of a T11 class.

    Parameters
    ----------
    true_class : str
        One of ``ARM_CLASSES``: ``1``, ``2``, ``3``, ``4`` and ``5+`` (5 to 7 arms)
        get that many clear arms; ``?`` gets arms too faint, too flocculent or
        unresolved (``cant_tell_reason``).
    rng : numpy.random.Generator
        Source of randomness.
    size : int, default 424
        Image side in pixels; lengths scale with it (the galaxy fills the same
        fraction of the frame as in a GZ2 cutout).
    preset : str, optional
        A key of :data:`PRESETS`; default :data:`DEFAULT_PRESET` (``crisp``).

    Returns
    -------
    GalaxyParams

    Raises
    ------
    SpiralArmsError
        If the class or preset is unknown, ``rng`` is not a Generator or ``size < 32``.
    """
    if true_class not in ARM_CLASSES:
        raise SpiralArmsError(
            f"class {true_class!r}: choose one of {', '.join(ARM_CLASSES)}"
        )
    chosen = get_preset(preset)
    rng = _check_rng(rng)
    size = _check_size(size)
    return chosen.sample(true_class, rng, size)


def _arm_pattern(true_class: str, rng: np.random.Generator) -> tuple[str, int]:
    """The can't-tell reason (``""`` for countable classes) and the arm multiplicity."""
    reason = ""
    if true_class == "?":
        reason = CANT_TELL_REASONS[int(rng.integers(len(CANT_TELL_REASONS)))]
    if true_class == "5+":
        n_arms = int(rng.integers(5, 8))
    elif true_class == "?":
        n_arms = int(rng.integers(6, 11)) if reason == "flocculent" else int(rng.integers(1, 6))
    else:
        n_arms = int(true_class)

    return reason, n_arms


def _pitch(n_arms: int, rng: np.random.Generator) -> float:
    """Arm pitch angle in degrees, of either winding sense (S- or Z-shaped)."""
    # One-armed galaxies are lopsided, open spirals. Five to seven tightly wound arms
    # would merge into rings at SDSS resolution, so they are drawn more open.
    pitch_range = {1: (18.0, 35.0), 2: (12.0, 32.0), 3: (14.0, 34.0), 4: (16.0, 36.0)}
    pitch = rng.uniform(*pitch_range.get(n_arms, (18.0, 40.0)))
    return -pitch if rng.random() < 0.5 else pitch


def _sample_crisp(true_class: str, rng: np.random.Generator, size: int) -> GalaxyParams:
    """Parameters of the ``crisp`` preset (the first renderer's draws, unchanged)."""
    u = rng.uniform
    scale = size / GZ2_IMAGE_SIZE

    reason, n_arms = _arm_pattern(true_class, rng)

    # Disc radius 3.0-3.4 h, i.e. 60-105 px at 424: inside the 224 centre crop as in
    # GZ2, whose scale of 0.02 petroR90 per pixel puts petroR90 at ~50 px.
    disc_scale = u(20.0, 31.0)
    if reason == "small":
        disc_scale = u(4.0, 7.0)
    disc_radius = disc_scale * u(3.0, 3.4)
    cos_i = u(0.45, 1.0)
    pitch = _pitch(n_arms, rng)
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



def display_colour(g_r: float, r_i: float) -> tuple[float, float, float]:
    """(R, G, B) = (i, r, g) display flux of unit mean for display colours g - r and r - i.

    Parameters
    ----------
    g_r, r_i : float
        Colours in magnitudes of the composite's channels (``-2.5 log10(B / G)`` and
        ``-2.5 log10(G / R)``, as :mod:`~spiralarms.data.synthetic.realism` measures).

    Returns
    -------
    tuple of float
    """
    return tuple(float(v) for v in display_colours(g_r, r_i)[0])


def display_colours(g_r, r_i) -> np.ndarray:
    """:func:`display_colour` of arrays of colours: an (n, 3) float64 array of (R, G, B).

    Parameters
    ----------
    g_r, r_i : array_like of float, shape (n,)
    """
    g_r, r_i = np.atleast_1d(np.asarray(g_r, dtype=float)), np.atleast_1d(np.asarray(r_i, dtype=float))
    flux = np.stack([10 ** (0.4 * r_i), np.ones_like(r_i), 10 ** (-0.4 * g_r)], axis=-1)
    return flux / flux.mean(axis=-1, keepdims=True)


# The sdss preset's pixel scale at 424 px, arcsec per pixel: log-normal, fitted to the
# point-source FWHM and the sky-noise correlation of the real cutouts. Countable arms
# need a resolved galaxy (large on the sky, so large pixels); "small" can't-tell
# galaxies are the unresolved end.
_SDSS_SCALE_MEDIAN = 0.22
_SDSS_SCALE_LOG_SIGMA = 0.5
_SDSS_SCALE_RANGE = (0.08, 0.45)
_SDSS_SMALL_SCALE_RANGE = (0.04, 0.08)
# Countable arms are spaced by at least this many seeing FWHM (see _sample_sdss); their
# galaxies, the largest on the sky, reach pixel scales up to _SDSS_RESOLVED_MAX_SCALE.
_SDSS_RESOLVED = 4.0
_SDSS_RESOLVED_MAX_SCALE = 0.8
# Seeing of SDSS imaging, FWHM in arcsec (median about 1.4).
_SDSS_SEEING_RANGE = (1.1, 1.8)
# Sky-noise correlation width (Gaussian sigma, px): _SDSS_NOISE_CORRELATION per SDSS
# pixel resampled onto the cutout grid, added in quadrature to _SDSS_NOISE_FLOOR px
# (the resampling kernel and the JPEG's loss of the finest noise).
_SDSS_NOISE_CORRELATION = 0.7
_SDSS_NOISE_FLOOR = 1.0
# Share of the sky-noise variance common to the three channels: the cutouts' noise is
# mostly grey (its red - blue spread is half its grey spread).
_SDSS_NOISE_COMMON = 0.9
# Neighbours (background galaxies) and field stars per frame at the median scale. The
# frame covers (424 x scale)^2 arcsec^2, but at a coarser scale more sources shrink
# below detection: the counts measured on the cutouts vary much less than the area
# (here as the square root of the scale).
_SDSS_NEIGHBOURS = 28.0
_SDSS_STARS = 6.0


def _pixel_scale(rng: np.random.Generator, smallest: float, largest: float = _SDSS_SCALE_RANGE[1]) -> float:
    """A log-normal pixel scale (arcsec per pixel at 424 px), truncated to [smallest, max]."""
    from scipy.special import ndtr, ndtri

    low, high = smallest, max(smallest, largest)
    z = [math.log(v / _SDSS_SCALE_MEDIAN) / _SDSS_SCALE_LOG_SIGMA for v in (low, high)]
    # Inverse-CDF draw: one random number whatever the truncation.
    u = rng.uniform(ndtr(z[0]), ndtr(z[1]))
    return float(_SDSS_SCALE_MEDIAN * math.exp(_SDSS_SCALE_LOG_SIGMA * ndtri(u)))


def _sample_sdss(true_class: str, rng: np.random.Generator, size: int) -> GalaxyParams:
    """Parameters of the ``sdss`` preset: galaxies framed and observed as in GZ2 cutouts."""
    u = rng.uniform
    scale = size / GZ2_IMAGE_SIZE

    reason, n_arms = _arm_pattern(true_class, rng)
    seeing = u(*_SDSS_SEEING_RANGE)
    # GZ2 frames every galaxy at 0.02 petroR90 per pixel, so all span about the same
    # pixels. Disc scale lengths of 14.5-23 px fit the half-light radii of the cutouts
    # (benchmarks/bench_realism.py); countable arms get the upper end, 19-30 px, which
    # keeps the demo's arm counts learnable (docs/synthetic.md: the trade-off).
    disc_scale = u(14.5, 23.0) if true_class == "?" else u(19.0, 30.0)
    # The disc fades out smoothly by 3.6-4.6 h, within the 224-pixel centre crop.
    disc_radius = min(disc_scale * u(3.6, 4.6), 108.0)
    pitch = _pitch(n_arms, rng)
    if reason == "small":
        pixel_scale = u(*_SDSS_SMALL_SCALE_RANGE)
        cos_i = u(0.25, 1.0)
    elif true_class == "?":
        pixel_scale = _pixel_scale(rng, _SDSS_SCALE_RANGE[0])
        cos_i = u(0.25, 1.0)
    else:
        # Volunteers agree on an arm count only where the seeing resolves the arms
        # (their spacing at two scale lengths at least _SDSS_RESOLVED FWHM) and the disc
        # is not too inclined: the clean sample is selected so.
        spacing = 4.0 * math.pi * disc_scale * abs(math.sin(math.radians(pitch))) / n_arms
        pixel_scale = _pixel_scale(rng, max(_SDSS_SCALE_RANGE[0], _SDSS_RESOLVED * seeing / spacing), _SDSS_RESOLVED_MAX_SCALE)
        cos_i = u(0.5, 1.0)
    psf_sigma = seeing / 2.3548 / pixel_scale
    frame_area = math.sqrt(pixel_scale / _SDSS_SCALE_MEDIAN)
    has_bar = true_class != "?" and n_arms <= 4 and rng.random() < 0.3
    bar_length = disc_scale * u(0.6, 1.0) if has_bar else 0.0
    arm_inner = max(bar_length, disc_scale * u(0.45, 0.75))

    # "faint": an early type (S0 to elliptical-like), bulge-dominated and red, whose
    # arms barely show; it supplies the red, concentrated galaxies of the real cutouts.
    early = reason == "faint"
    if early:
        contrast, depletion = u(0.05, 0.2), u(0.0, 0.1)
    elif reason == "flocculent":
        contrast, depletion = u(1.2, 2.0), u(0.3, 0.5)
    elif true_class == "?":
        contrast, depletion = u(1.3, 2.4), u(0.3, 0.55)
    else:
        # The clean sample keeps the galaxies whose arms volunteers counted alike:
        # prominent arms, 1.6 times the contrast of the unresolved ones (with 1.3-2.4,
        # as those, the demo's macro F1 stayed at 0.75; docs/synthetic.md).
        contrast, depletion = u(2.08, 3.84), u(0.3, 0.55)
    amplitudes = tuple(float(a) for a in u(0.75, 1.0, size=n_arms))
    jitter = tuple(float(j) for j in u(-0.08, 0.08, size=n_arms) * 360.0 / n_arms)
    bulge_fraction = u(0.5, 0.9) if early else u(0.05, 0.4)
    sersic_n = u(2.5, 4.5) if early else u(1.0, 3.0)
    bulge_reff = disc_scale * (u(0.4, 0.8) if early else u(0.2, 0.45))

    # Display colours (g - r, r - i of the composite's pixel values, bluer than the
    # photometric colours): red bulge, a disc that grows bluer outwards, blue arms.
    redder = u(0.2, 0.5) if early else 0.0
    # r - i follows g - r (both measure the stellar population), with some scatter.
    bulge_g_r = u(0.35, 0.7) + redder / 2
    bulge_colour = display_colour(bulge_g_r, 0.55 * bulge_g_r + u(-0.08, 0.08))
    disc_g_r = u(-0.08, 0.52) + redder
    disc_colour = display_colour(disc_g_r, 0.55 * disc_g_r + 0.03 + u(-0.06, 0.06))
    outer_g_r = disc_g_r - u(0.1, 0.3)
    disc_outer_colour = display_colour(outer_g_r, 0.55 * outer_g_r + 0.03 + u(-0.06, 0.06))
    arm_g_r = u(-0.3, 0.05)
    arm_colour = display_colour(arm_g_r, 0.55 * arm_g_r + 0.05 + u(-0.05, 0.05))

    noise = u(0.00168, 0.00355)
    brightness = math.exp(u(math.log(0.45), math.log(2.0)))
    if early:
        # An early type is as bright in all as a disc galaxy, not its bulge times brighter.
        brightness *= (1.0 - bulge_fraction) / 0.6

    has_companion = bool(rng.random() < 0.15)
    comp_r = disc_radius * u(1.25, 1.9)
    comp_angle = u(0.0, 2.0 * np.pi)
    comp_scale = disc_scale * u(0.2, 0.45)

    return GalaxyParams(
        true_class=true_class,
        n_arms=n_arms,
        image_size=size,
        centre_x=u(-2.0, 2.0) * scale,
        centre_y=u(-2.0, 2.0) * scale,
        disc_scale_px=disc_scale * scale,
        disc_radius_px=disc_radius * scale,
        bulge_fraction=bulge_fraction,
        bulge_reff_px=bulge_reff * scale,
        sersic_n=sersic_n,
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
        psf_sigma_px=psf_sigma * scale,
        noise_sigma=noise * scale,
        brightness=brightness,
        has_companion=has_companion,
        companion_dx_px=comp_r * math.cos(comp_angle) * scale,
        companion_dy_px=comp_r * math.sin(comp_angle) * scale,
        companion_scale_px=comp_scale * scale,
        companion_flux=u(0.05, 0.25) * 2.0 * np.pi * disc_scale**2 * scale**2,
        companion_axis_ratio=u(0.4, 1.0),
        companion_position_angle_deg=u(0.0, 180.0),
        n_stars=int(rng.poisson(_SDSS_STARS * frame_area)),
        cant_tell_reason=reason,
        seed=int(rng.integers(2**31)),
        preset="sdss",
        bulge_colour=bulge_colour,
        disc_colour=disc_colour,
        disc_outer_colour=disc_outer_colour,
        arm_colour=arm_colour,
        psf_wing_fraction=u(0.05, 0.15),
        noise_correlation_px=math.hypot(_SDSS_NOISE_FLOOR, _SDSS_NOISE_CORRELATION * SDSS_PIXEL_ARCSEC / pixel_scale) * scale,
        noise_common_fraction=_SDSS_NOISE_COMMON,
        # The cutouts' sky is a warm dark grey whose tint changes from frame to frame:
        # red and green sit higher than blue, which is black in ~30 % of sky pixels.
        sky_pedestal=(u(0.6, 1.6), u(0.6, 1.6), u(-0.2, 0.8)),
        disc_edge_width=u(0.5, 1.0),
        lopsidedness=u(0.0, 0.15),
        lopsided_phase_deg=u(0.0, 360.0),
        clumpiness=u(0.03, 0.15),
        shot_noise_flux=u(0.004, 0.01),
        pixel_scale_arcsec=pixel_scale / scale,
        n_neighbours=int(rng.poisson(_SDSS_NEIGHBOURS * frame_area)),
    )


@dataclass(frozen=True)
class Preset:
    """A way of drawing synthetic galaxies.

    Attributes
    ----------
    name : str
        Its key in :data:`PRESETS`.
    description : str
        One line: what the galaxies look like.
    sample : callable
        ``sample(true_class, rng, size) -> GalaxyParams``.
    jpeg_quality : int
        Quality of the JPEG files :func:`~spiralarms.data.synthetic.synthesize_dataset`
        writes.
    """

    name: str
    description: str
    sample: Callable[[str, np.random.Generator, int], GalaxyParams]
    jpeg_quality: int


#: The renderer presets by name.
PRESETS: dict[str, Preset] = {
    "sdss": Preset(
        "sdss",
        "fitted to SDSS Galaxy Zoo cutouts: seeing, correlated sky noise, Lupton colours, neighbours, JPEG 75",
        _sample_sdss,
        75,
    ),
    "crisp": Preset(
        "crisp",
        "the first renderer: large, sharp, high-contrast galaxies on a white-noise sky, JPEG 90",
        _sample_crisp,
        90,
    ),
}

#: The preset of the embedded default data set (``spiralarms synth``, ``spiralarms demo``):
#: ``sdss``, since its demo keeps the macro F1 at 0.8 or more (0.81-0.82 over three
#: seeds) and its model says more on real cutouts than ``crisp``'s (docs/synthetic.md).
DEFAULT_PRESET = "sdss"


def get_preset(name: str | None = None) -> Preset:
    """The preset called ``name`` (default :data:`DEFAULT_PRESET`).

    Raises
    ------
    SpiralArmsError
        If no preset has that name.
    """
    name = DEFAULT_PRESET if name is None else name
    if name not in PRESETS:
        raise SpiralArmsError(f"preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def galaxy_class(index: int) -> str:
    """The T11 class of synthetic galaxy ``index``: classes interleave in class order."""
    return ARM_CLASSES[int(index) % len(ARM_CLASSES)]


def galaxy_rng(seed: int, index: int) -> np.random.Generator:
    """Random generator of galaxy ``index`` of a data set with ``seed``.

    Derived from ``(seed, index)`` by :class:`numpy.random.SeedSequence`, so a galaxy
    is the same whatever the number of galaxies rendered and their order.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
