"""Rendering a synthetic galaxy: light profiles, arms, PSF, sky, field sources and display.

The galaxy is computed in linear flux (units of its face-on disc central surface
brightness) in three bands, (R, G, B) = (i, r, g), blurred by the PSF, joined by a
companion and field sources, scaled by its brightness, given sky and shot noise and
mapped to 8-bit RGB: by a per-channel asinh stretch (``crisp`` preset) or by the
colour-preserving asinh composite of Lupton et al. (2004) used for SDSS images
(``sdss`` preset, :func:`lupton_rgb`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
from PIL import Image
from scipy import ndimage
from scipy.special import gammaincinv

from spiralarms.data.synthetic.parameters import (
    GZ2_IMAGE_SIZE,
    GalaxyParams,
    _check_size,
    display_colours,
)
from spiralarms.errors import SpiralArmsError

# Lupton et al. (2004) display of the sdss preset: asinh softening Q and the linear
# flux (units of the disc's central surface brightness) of the stretch. Q = 8 is the
# SDSS composites' (and astropy's make_lupton_rgb default); the stretch puts a disc
# centre of brightness 1 at about 150 of 255 and a bulge at 150-220, as measured on
# the real cutouts (benchmarks/bench_realism.py).
LUPTON_Q = 8.0
LUPTON_STRETCH = 0.19


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


def _sersic_b(n: float) -> float:
    """``b_n`` such that the effective radius holds half the Sérsic light."""
    return float(gammaincinv(2.0 * n, 0.5))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Unit-variance Gaussian random field correlated over about ``cell`` pixels."""
    coarse = (max(2, int(shape[0] / cell) + 2), max(2, int(shape[1] / cell) + 2))
    field = rng.standard_normal(coarse, dtype=np.float32)
    # Bilinear upsampling of a coarse grid, one axis at a time: cheap, smooth enough
    # for patchiness, and elementwise (no BLAS), so bit-identical whatever the threads.
    # (The weights are float64, and so is the field: kept, so that images stay the same.)
    lower, weight = _linear_interpolation_weights(shape[0], coarse[0])
    rows = field[lower] * (1 - weight)[:, None]
    rows += field[lower + 1] * weight[:, None]
    lower, weight = _linear_interpolation_weights(shape[1], coarse[1])
    # np.take along an axis gathers columns faster than fancy indexing; in place after.
    out = np.take(rows, lower, axis=1)
    out *= 1 - weight
    upper = np.take(rows, lower + 1, axis=1)
    upper *= weight
    out += upper
    out /= np.float32(0.75)
    return out


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
    # nearest mod m, in float32 (exact for these small integers): NumPy's integer
    # modulo by a scalar is not vectorised and cost 15 times as much.
    arm_index = nearest - np.float32(m) * np.floor(nearest / np.float32(m))
    arm_index = arm_index.astype(np.intp)
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
    params: GalaxyParams, size: int | None = None, sky: np.ndarray | None = None
) -> tuple[np.ndarray, GalaxyMasks]:
    """Render one galaxy as an RGB cutout with its galaxy and arm masks.

    Parameters
    ----------
    params : GalaxyParams
        The galaxy, e.g. from :func:`sample_galaxy_params`.
    size : int, optional
        Image side in pixels; defaults to ``params.image_size`` (424 for GZ2). Other
        sizes rescale the galaxy so that it fills the same fraction of the frame.
    sky : numpy.ndarray of float32, shape (3, size, size), optional
        A real sky in linear flux (:func:`spiralarms.data.synthetic.sky.load_sky`),
        ``sdss`` preset only: it replaces the rendered sky noise and field sources,
        and the galaxy, with its own shot noise, is added to it.

    Returns
    -------
    image : numpy.ndarray of uint8, shape (size, size, 3)
        gri-like colour composite, asinh stretch, sky noise and PSF included.
    masks : GalaxyMasks
        Boolean ``galaxy`` (disc) and ``arms`` masks of shape (size, size).

    Raises
    ------
    SpiralArmsError
        If ``params`` is not a GalaxyParams or ``size < 32``, or ``sky`` is given for
        the ``crisp`` preset or is not of shape (3, size, size).
    """
    if not isinstance(params, GalaxyParams):
        raise SpiralArmsError(f"params must be GalaxyParams, not {type(params).__name__}")
    size = params.image_size if size is None else _check_size(size)
    if sky is not None:
        if params.preset == "crisp":
            raise SpiralArmsError("a real sky needs the sdss preset: its display is the SDSS composite "
                                  "the sky is read back through")
        if np.shape(sky) != (3, size, size):
            raise SpiralArmsError(f"sky of shape {np.shape(sky)}; expected (3, {size}, {size})")
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
    # Its smooth edge has faded a quarter radius or two edge widths past the disc
    # radius, whichever is further, plus a few pixels; the PSF blur below pads further.
    edge_px = max(0.25 * p.disc_radius_px, 2 * p.disc_edge_width * p.disc_scale_px)
    half = int(math.ceil(p.disc_radius_px + edge_px + min(4 * p.psf_sigma_px, 8.0) + 2))
    y0, y1 = max(0, int(cy) - half), min(size, int(cy) + half + 2)
    x0, x1 = max(0, int(cx) - half), min(size, int(cx) + half + 2)
    ys = (np.arange(y0, y1, dtype=np.float32) - f32(cy))[:, None]
    xs = (np.arange(x0, x1, dtype=np.float32) - f32(cx))[None, :]
    x_major, y_minor, y_disc = _disc_coordinates(p, ys, xs)
    r = np.sqrt(x_major * x_major + y_disc * y_disc)
    theta = np.arctan2(y_disc, x_major)

    h = f32(p.disc_scale_px)
    # Smooth truncation; the exponent is capped so that float32 cannot overflow.
    edge = 1.0 / (1.0 + np.exp(np.minimum((r - f32(p.disc_radius_px)) / (f32(p.disc_edge_width) * h), f32(60.0))))
    disc = np.exp(-r / h) * edge
    window = _radial_window(p, r)
    arms = _arm_profile(p, r, theta, window, rng)
    if p.star_formation > 0:
        knots = _smooth_noise(rng, r.shape, max(2.0, 0.15 * p.disc_scale_px))
        arms_light = disc * f32(p.arm_contrast) * arms * np.clip(1 + f32(p.star_formation) * knots, 0.2, None)
    else:
        arms_light = disc * f32(p.arm_contrast) * arms
    disc_light = disc * (1 - f32(p.interarm_depletion) * window)
    if p.lopsidedness > 0:
        # A lopsided disc (an m = 1 distortion growing outwards), as most real discs are.
        phase = f32(math.radians(p.lopsided_phase_deg))
        lopsided = 1 + f32(p.lopsidedness) * (r / (r + h)) * np.cos(theta - phase)
        disc_light *= lopsided
        arms_light *= lopsided
    if p.clumpiness > 0:
        # Patchy star formation and dust across the whole disc, arms or not.
        patches = _smooth_noise(rng, r.shape, max(2.0, 0.25 * p.disc_scale_px))
        patchy = np.clip(1 + f32(p.clumpiness) * patches, 0.3, None)
        disc_light *= patchy
        arms_light *= patchy
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
    bulge_colour, disc_colour, arm_colour = (
        np.asarray(c, dtype=np.float32) for c in (p.bulge_colour, p.disc_colour, p.arm_colour)
    )
    for c in range(3):
        box[c] = bulge * bulge_colour[c] + disc_light * disc_colour[c] + arms_light * arm_colour[c]
    if p.disc_outer_colour != p.disc_colour:
        # Colour gradient: the disc's colour moves to its outer colour by 3 scale lengths.
        outward = np.minimum(r / (3 * h), f32(1.0)) * disc_light
        for c in range(3):
            box[c] += outward * f32(p.disc_outer_colour[c] - p.disc_colour[c])
    galaxy_mask[y0:y1, x0:x1] = r <= p.disc_radius_px
    arms_mask[y0:y1, x0:x1] = (arms > 0.5) & (r <= p.disc_radius_px)

    # Blur the galaxy box by the PSF; the companion and stars are drawn blurred.
    pad = int(4 * p.psf_sigma_px * (2 if p.psf_wing_fraction > 0 else 1)) + 1
    gy0, gy1 = max(0, y0 - pad), min(size, y1 + pad)
    gx0, gx1 = max(0, x0 - pad), min(size, x1 + pad)
    image[:, gy0:gy1, gx0:gx1] = _psf_blur(image[:, gy0:gy1, gx0:gx1], p)
    if p.has_companion:
        _add_companion(image, p, cx, cy)
    if p.preset == "crisp":
        _add_stars(image, p, rng)
    elif sky is None:
        _add_field_sources(image, p, rng)

    image *= f32(p.brightness)
    if sky is not None:
        # The real sky brings its own noise and field: the galaxy adds its shot noise.
        gain = f32(p.noise_sigma) ** 2 / f32(p.shot_noise_flux)
        sigma = np.maximum(image, 0)
        sigma *= gain
        np.sqrt(sigma, out=sigma)
        sigma *= rng.standard_normal(image.shape, dtype=np.float32)
        image += sigma
        image += sky
        display = _lupton_rgb_in_place(image, LUPTON_STRETCH, LUPTON_Q, 0.0)
        return display, GalaxyMasks(galaxy=galaxy_mask, arms=arms_mask)
    # Sky and photon noise: Gaussian with the Poisson variance (sky-dominated, plus the
    # galaxy's own shot noise where it is bright).
    noise = _sky_noise(rng, image.shape, p)
    sky_var = f32(p.noise_sigma) ** 2
    gain = f32(p.noise_sigma) ** 2 / f32(p.shot_noise_flux)  # variance per unit flux: shot noise
    # In place: each full-frame temporary costs about as much as the arithmetic.
    sigma = np.maximum(image, 0)
    sigma *= gain
    sigma += sky_var
    np.sqrt(sigma, out=sigma)
    sigma *= noise
    image += sigma

    if p.preset == "crisp":
        display = _stretch(image)
    else:
        # The composites' black point lies a little below the sky (sky_pedestal sky
        # sigmas per band), so the sky is dark speckle, not clipped black.
        minimum = -np.asarray(p.sky_pedestal, dtype=np.float32) * np.float32(p.noise_sigma)
        display = _lupton_rgb_in_place(image, LUPTON_STRETCH, LUPTON_Q, minimum)
    return display, GalaxyMasks(galaxy=galaxy_mask, arms=arms_mask)


def _psf_blur(box: np.ndarray, p: GalaxyParams) -> np.ndarray:
    """Blur a (3, h, w) box by the PSF: a Gaussian core and, where set, a wing twice as wide.

    A core alone (``crisp``) is a separable Gaussian filter. Core and wing (``sdss``)
    are applied together in Fourier space, where a Gaussian's transfer function is a
    Gaussian too: one real FFT there and back costs a third of the four filter passes
    and is exact, not truncated. The box is zero-padded to a fast FFT length; the
    renderer pads it by four wing widths, so almost no light wraps around.
    """
    sigma, wing = p.psf_sigma_px, p.psf_wing_fraction
    if wing <= 0:
        return ndimage.gaussian_filter(box, (0, sigma, sigma), truncate=3.5)
    h, w = box.shape[1:]
    fft_shape = (scipy.fft.next_fast_len(h, real=True), scipy.fft.next_fast_len(w, real=True))
    spectrum = scipy.fft.rfft2(box, s=fft_shape, workers=1)
    # exp(-2 pi^2 sigma^2 f^2), the transfer function of a unit Gaussian of width sigma,
    # is separable: outer products of 1-d factors, the wing's the core's to the 4th power.
    a = -2.0 * math.pi**2 * sigma * sigma
    gy = np.exp(a * np.fft.fftfreq(fft_shape[0]) ** 2).astype(np.float32)[:, None]
    gx = np.exp(a * np.fft.rfftfreq(fft_shape[1]) ** 2).astype(np.float32)[None, :]
    transfer = (gy * np.float32(1.0 - wing)) * gx + (gy**4 * np.float32(wing)) * gx**4
    # A real factor on (re, im) pairs: NumPy would promote it to complex first.
    spectrum.view(np.float32).reshape(*spectrum.shape, 2)[...] *= transfer[..., None]
    return scipy.fft.irfft2(spectrum, s=fft_shape, workers=1)[:, :h, :w].astype(np.float32, copy=False)


def _sky_noise(rng: np.random.Generator, shape: tuple[int, int, int], p: GalaxyParams) -> np.ndarray:
    """Unit-variance sky noise of ``shape`` (3, H, W): white, or correlated as the params say.

    Correlated noise models SDSS pixels resampled onto the finer cutout grid: white
    noise whose channels share ``noise_common_fraction`` of their variance, blurred by
    a Gaussian of ``noise_correlation_px``. It is drawn on a grid coarser by 1/0.7 of
    the kernel width (so 2-9 times fewer numbers) and interpolated bilinearly, which
    makes up part of the blur.
    """
    sigma = p.noise_correlation_px
    if sigma <= 0:
        noise = rng.standard_normal(shape, dtype=np.float32)
        return _share_noise(noise, p.noise_common_fraction) if p.noise_common_fraction > 0 else noise
    # Coarsening by less than 1.25 would save little for the interpolation it costs.
    factor = sigma / 0.7 if sigma >= 1.25 * 0.7 else 1.0
    coarse = (shape[0], math.ceil(shape[1] / factor) + 1, math.ceil(shape[2] / factor) + 1)
    noise = rng.standard_normal(coarse, dtype=np.float32)
    if p.noise_common_fraction > 0:
        noise = _share_noise(noise, p.noise_common_fraction)
    width = max(math.sqrt(max(sigma * sigma - factor * factor / 6.0, 0.0)) / factor, 0.5)
    if factor == 1:
        radius = int(3.0 * width + 0.5)
        kernel = _gaussian_kernel(width, radius)
        noise = ndimage.gaussian_filter(noise, (0, width, width), truncate=3.0)
        # Variance of white noise after a normalised Gaussian kernel (separable): the
        # product over both axes of the sum of squared kernel weights.
        noise *= np.float32(1.0 / float(np.sum(kernel**2)))
        return noise[:, : shape[1], : shape[2]]
    # Coarsened, the kernel is always about 0.57 coarse pixels wide: three taps hold
    # 99.7 % of it, applied as shifted sums, 4 times cheaper than ndimage's filter.
    kernel = _gaussian_kernel(width, 1)
    noise = _filter3(_filter3(noise, 1, kernel), 2, kernel)
    variance = float(np.sum(kernel**2))
    # Bilinear interpolation between neighbours of correlation rho keeps, averaged
    # over the phases, (2 + rho) / 3 of the variance per axis: made up here, so that
    # the noise has unit variance whatever the coarsening.
    rho = float(np.sum(kernel[1:] * kernel[:-1])) / variance
    noise *= np.float32(3.0 / (2.0 + rho) / variance)
    return _upsample(noise, factor, shape[1:])


def _gaussian_kernel(width: float, radius: int) -> np.ndarray:
    """Normalised Gaussian weights of ``width`` at offsets ``-radius..radius``."""
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / width) ** 2)
    return kernel / kernel.sum()


def _filter3(x: np.ndarray, axis: int, kernel: np.ndarray) -> np.ndarray:
    """Correlate float32 ``x`` along ``axis`` with a symmetric 3-tap ``kernel`` (edges reflected)."""
    side, centre = np.float32(kernel[0]), np.float32(kernel[1])
    x = np.moveaxis(x, axis, 0)
    out = x * centre
    neighbour = x * side
    out[1:] += neighbour[:-1]
    out[:-1] += neighbour[1:]
    out[0] += neighbour[0]  # reflected edges: the sample beyond an edge is the edge's own
    out[-1] += neighbour[-1]
    return np.moveaxis(out, 0, axis)


def _share_noise(noise: np.ndarray, common: float) -> np.ndarray:
    """Unit-variance (3, H, W) noise whose channels share ``common`` of their variance.

    The channel mean (variance 1/3) and the deviations from it (variance 2/3) of
    independent unit noise are reweighted: no further random numbers are drawn. The
    deviations sum to zero, so two channels correlate by ``(3 common - 1) / 2``.
    """
    mean = noise.mean(axis=0, keepdims=True)
    a = np.float32(math.sqrt(3.0 * common))
    b = np.float32(math.sqrt(1.5 * (1.0 - common)))
    return (noise - mean) * b + mean * a


def _upsample(field: np.ndarray, factor: float, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear interpolation of a (C, h, w) grid ``factor`` times coarser onto ``shape``.

    Coarse sample ``j`` is the centre of the output's pixels ``j * factor`` to
    ``(j + 1) * factor``, and output pixel ``i`` lies at ``(i + 0.5) / factor - 0.5``
    in coarse units, clamped at the edges: Pillow's float ("F") resize of the box
    ``shape / factor`` does exactly this, in a C loop 1.5-3 times faster than NumPy's
    fancy indexing over the same frame.
    """
    out = np.empty((field.shape[0], *shape), dtype=np.float32)
    box = (0.0, 0.0, shape[1] / factor, shape[0] / factor)
    for c in range(field.shape[0]):
        plane = Image.fromarray(np.ascontiguousarray(field[c], dtype=np.float32))
        out[c] = np.asarray(plane.resize((shape[1], shape[0]), Image.BILINEAR, box=box))
    return out


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
    colour = (np.asarray(p.bulge_colour, dtype=np.float32) + np.asarray(p.disc_colour, dtype=np.float32)) / 2
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


def _add_field_sources(image: np.ndarray, p: GalaxyParams, rng: np.random.Generator) -> None:
    """Add the field of an SDSS cutout: stars with the PSF's core and wing, and faint
    background galaxies (elliptical Gaussians, their size added to the PSF's in quadrature).

    Fluxes follow power laws (many faint sources, few bright ones), in units of the
    main disc's central surface brightness times pixels^2. The random numbers of all
    sources are drawn at once, in the order one source at a time would draw them
    (``uniform(a, b)`` is ``a + (b - a) * random()``), and their colours computed
    together: a source costs its stamp, not a dozen small NumPy calls.
    """
    size = image.shape[1]
    sigma = p.psf_sigma_px
    scale = p.image_size / GZ2_IMAGE_SIZE
    # Per star: x, y, flux, temperature.
    star = rng.random((p.n_stars, 4))
    star_flux = np.minimum(2.0 * scale * scale * (1.0 - star[:, 2]) ** (-1 / 0.7), 3000.0 * scale * scale)
    t = star[:, 3]  # from blue (F stars) to very red (M dwarfs), as display colours
    star_colour = display_colours(-0.3 + 1.3 * t, 0.05 + 0.7 * t * t).astype(np.float32)
    for (x, y), flux, colour in zip((size - 1) * star[:, :2], star_flux, star_colour):
        for width, share in ((sigma, 1 - p.psf_wing_fraction), (2 * sigma, p.psf_wing_fraction)):
            if share > 0:
                _add_gaussian(image, x, y, width, width, 0.0, flux * share, colour)
    # Per neighbour: x, y, flux, extent, axis ratio, g - r, r - i, position angle.
    galaxy = rng.random((p.n_neighbours, 8))
    flux = np.minimum(1.0 * scale * scale * (1.0 - galaxy[:, 2]) ** (-1 / 0.8), 400.0 * scale * scale)
    extent = (0.3 + 1.3 * galaxy[:, 3]) / p.pixel_scale_arcsec
    major = np.hypot(sigma, extent)
    minor = np.hypot(sigma, (0.3 + 0.7 * galaxy[:, 4]) * extent)
    colours = display_colours(-0.1 + 0.9 * galaxy[:, 5], 0.05 + 0.3 * galaxy[:, 6]).astype(np.float32)
    angle = math.pi * galaxy[:, 7]
    for i in range(p.n_neighbours):
        x, y = (size - 1) * galaxy[i, :2]
        _add_gaussian(image, x, y, major[i], minor[i], angle[i], flux[i], colours[i])


def _add_gaussian(
    image: np.ndarray, x: float, y: float, major: float, minor: float, angle: float, flux: float, colour: np.ndarray
) -> None:
    """Add an elliptical Gaussian source of total ``flux`` and (R, G, B) ``colour``.

    The exponent is the quadratic form ``a dx^2 + b dx dy + c dy^2``, its row and
    column terms computed once per row and column; a round source is the outer
    product of two one-dimensional Gaussians.
    """
    size = image.shape[1]
    half = int(math.ceil(4 * major)) + 1
    y0, y1 = max(0, int(y) - half), min(size, int(y) + half + 1)
    x0, x1 = max(0, int(x) - half), min(size, int(x) + half + 1)
    if y0 >= y1 or x0 >= x1:
        return
    dy = np.arange(y0, y1, dtype=np.float64) - y
    dx = np.arange(x0, x1, dtype=np.float64) - x
    norm = flux / (2 * math.pi * major * minor)
    if major == minor:
        k = -0.5 / (major * major)
        light = np.multiply.outer((norm * np.exp(k * dy * dy)).astype(np.float32),
                                  np.exp(k * dx * dx).astype(np.float32))
    else:
        ca, sa = math.cos(angle), math.sin(angle)
        inv_major2, inv_minor2 = 1.0 / (major * major), 1.0 / (minor * minor)
        a = -0.5 * (ca * ca * inv_major2 + sa * sa * inv_minor2)
        b = -(ca * sa) * (inv_major2 - inv_minor2)
        c = -0.5 * (sa * sa * inv_major2 + ca * ca * inv_minor2)
        light = np.multiply.outer((b * dy).astype(np.float32), dx.astype(np.float32))
        light += (a * dx * dx).astype(np.float32)[None, :]
        light += (c * dy * dy + math.log(norm)).astype(np.float32)[:, None]
        np.exp(light, out=light)
    target = image[:, y0:y1, x0:x1]
    for channel in range(3):
        target[channel] += light * colour[channel]


def lupton_rgb(image: np.ndarray, stretch: float, q: float = LUPTON_Q, minimum: float = 0.0) -> np.ndarray:
    """Colour-preserving asinh composite of Lupton et al. (2004), as SDSS colour images.

    The same mapping as astropy's ``make_lupton_rgb`` / ``AsinhMapping`` (tested
    against it): the mean of the three bands is stretched by ``asinh`` and each band
    scaled by the same factor, so colours survive in bright regions, and a pixel whose
    brightest band exceeds 255 is scaled down as a whole. Written out because
    astropy's version, with nested ``numpy.where`` over every channel, costs about four
    times as much and the renderer must draw 50 images per second.

    Parameters
    ----------
    image : numpy.ndarray, shape (3, H, W)
        Linear fluxes in (R, G, B) order; left unchanged.
    stretch : float
        Linear stretch (flux of the transition to the logarithmic regime, times Q).
    q : float, default 8
        Asinh softening.
    minimum : float or sequence of 3 floats, default 0
        Flux mapped to black (one for all bands, or one per band).

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W, 3)
    """
    return _lupton_rgb_in_place(np.array(image, dtype=np.float32), stretch, q, minimum)


def _lupton_rgb_in_place(rgb: np.ndarray, stretch: float, q: float, minimum) -> np.ndarray:
    """:func:`lupton_rgb` of a float32 (3, H, W) array that it overwrites.

    In place wherever possible: on a 424 px frame each temporary costs about as much
    as the arithmetic it holds.
    """
    f32 = np.float32
    rgb -= np.asarray(minimum, dtype=np.float32).reshape(-1, 1, 1)
    intensity = np.add(rgb[0], rgb[1])
    intensity += rgb[2]
    intensity /= f32(3.0)
    slope = 0.1 * 255 / math.asinh(0.1 * q)
    x = intensity * f32(q / stretch)
    np.maximum(x, f32(0.0), out=x)
    factor = _asinh_nonnegative(x)
    factor *= f32(slope)
    # Where the intensity is <= 0, x and so factor are 0: dividing by the smallest
    # positive float there keeps them 0 (not 0/0), and changes no other pixel.
    np.maximum(intensity, np.finfo(np.float32).smallest_subnormal, out=intensity)
    factor /= intensity
    rgb *= factor[None]
    np.maximum(rgb, 0, out=rgb)
    peak = np.maximum(rgb[0], rgb[1])
    np.maximum(peak, rgb[2], out=peak)
    # Pixels over 255 scaled down as a whole: 255 / peak there, exactly 1 elsewhere
    # (a multiplication by 1 changes nothing, and is cheaper than a masked gather).
    np.maximum(peak, f32(255.0), out=peak)
    np.divide(f32(255.0), peak, out=peak)
    rgb *= peak[None]
    np.minimum(rgb, 255, out=rgb)
    return _interleave_uint8(rgb)


def _interleave_uint8(planes: np.ndarray) -> np.ndarray:
    """(3, H, W) floats in [0, 255] to (H, W, 3) uint8, truncating as ``astype`` does.

    Converted plane by plane first, then interleaved as bytes: a third of the time of
    converting the transposed float array in one pass.
    """
    planes8 = planes.astype(np.uint8)
    rgb = np.empty(planes.shape[1:] + planes.shape[:1], dtype=np.uint8)
    for c in range(planes.shape[0]):
        rgb[:, :, c] = planes8[c]
    return rgb


# Display stretch: asinh, soft below ~ the outer disc, saturating in the bulge core.
_STRETCH_SOFT = 0.06
_STRETCH_WHITE = 2.5
_STRETCH_BLACK = -0.01


def _asinh_nonnegative(x: np.ndarray) -> np.ndarray:
    """``arcsinh(x)`` for ``x >= 0``, as ``log(x + sqrt(x^2 + 1))``.

    NumPy's ``arcsinh`` has no vectorised loop: it took four times as long as this on
    a rendered frame. The relative error stays below 2e-4 (at tiny ``x``, where the
    value is far below one 8-bit level).
    """
    out = x * x
    out += np.float32(1.0)
    np.sqrt(out, out=out)
    out += x
    return np.log(out, out=out)


def _stretch(image: np.ndarray) -> np.ndarray:
    """Asinh stretch of a (3, H, W) linear image into a (H, W, 3) uint8 RGB image."""
    soft = np.float32(_STRETCH_SOFT)
    # Values below the black point clip to 0 either way.
    x = image - np.float32(_STRETCH_BLACK)
    x /= soft
    np.maximum(x, np.float32(0.0), out=x)
    scaled = _asinh_nonnegative(x)
    scaled *= np.float32(255.0 / math.asinh((_STRETCH_WHITE - _STRETCH_BLACK) / _STRETCH_SOFT))
    np.clip(scaled, 0, 255, out=scaled)
    return _interleave_uint8(scaled)

