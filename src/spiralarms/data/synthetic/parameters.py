"""Parameters of a synthetic galaxy and how they are drawn for each T11 class.

Lengths are in pixels of an ``image_size`` image; :meth:`GalaxyParams.scaled` frames
the same galaxy in another size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.errors import SpiralArmsError

#: Image side of Galaxy Zoo 2 cutouts, in pixels; lengths are sampled for this size
#: and scaled for others.
GZ2_IMAGE_SIZE = 424

#: Why a ``?`` galaxy's arms cannot be counted.
CANT_TELL_REASONS: tuple[str, ...] = ("faint", "flocculent", "small")


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



def galaxy_class(index: int) -> str:
    """The T11 class of synthetic galaxy ``index``: classes interleave in class order."""
    return ARM_CLASSES[int(index) % len(ARM_CLASSES)]


def galaxy_rng(seed: int, index: int) -> np.random.Generator:
    """Random generator of galaxy ``index`` of a data set with ``seed``.

    Derived from ``(seed, index)`` by :class:`numpy.random.SeedSequence`, so a galaxy
    is the same whatever the number of galaxies rendered and their order.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
