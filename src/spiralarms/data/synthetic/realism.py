"""How much a cutout looks like an SDSS Galaxy Zoo image: statistics measured alike on
real and synthetic cutouts.

:func:`image_statistics` measures, on one decoded RGB cutout, the quantities a renderer
preset is fitted to: the size, concentration, shape and colour of the central galaxy,
the sky noise level and its spatial correlation, the width of the sharpest point
source (the PSF), and the number of neighbours. :func:`jpeg_quality` reads the JPEG
quality a file was saved with. ``benchmarks/bench_realism.py`` prints both sets side
by side (``docs/synthetic.md``).

Everything is measured on the 8-bit display image, not on calibrated fluxes: the
numbers are proxies (a g - r "colour" of stretched pixel values, a FWHM of a stretched
profile) that mean something only when compared between two sets measured the same way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import numpy as np
import pandas as pd
from astropy.stats import sigma_clipped_stats
from scipy import ndimage

#: What :func:`image_statistics` returns, in order, with a short description.
STATISTICS: dict[str, str] = {
    "r50_px": "half-light radius of the central galaxy (px)",
    "r90_px": "radius holding 90 % of its light (px)",
    "concentration": "r90 / r50",
    "axis_ratio": "minor / major axis from second moments",
    "peak_level": "brightest smoothed level of the central galaxy (0-255)",
    "g_r": "g - r proxy: -2.5 log10(blue / green) of the central galaxy",
    "r_i": "r - i proxy: -2.5 log10(green / red) of the central galaxy",
    "sky_level": "median sky level (0-255)",
    "noise": "sky noise, sigma-clipped standard deviation of grey levels",
    "noise_corr_1px": "correlation of sky noise between neighbouring pixels",
    "noise_corr_3px": "correlation of sky noise 3 pixels apart",
    "noise_colour": "standard deviation of red - blue on the sky over that of grey",
    "psf_fwhm_px": "FWHM of the sharpest point-like source (px), NaN without one",
    "n_neighbours": "detected sources other than the central galaxy",
}

# Detection: sources are at least _MIN_AREA connected pixels of the smoothed grey
# image above _DETECT_SIGMA sky standard deviations and at least _DETECT_FLOOR grey
# levels: the sky of an SDSS cutout is clipped at black by the display stretch and
# blotchy from resampling and JPEG, so a few sigma alone would count noise as sources.
_SMOOTH_PX = 1.5
_DETECT_SIGMA = 4.0
_DETECT_FLOOR = 15.0
_MIN_AREA = 10
# A point-source candidate: a peak this many sky sigmas (at least _STAR_FLOOR levels)
# above the sky, outside the central galaxy.
_STAR_SIGMA = 12.0
_STAR_FLOOR = 20.0

# The IJG (libjpeg) standard luminance quantisation table, row-major (ITU-T T.81,
# Annex K). No installed library estimates a JPEG's quality, so jpeg_quality inverts
# libjpeg's quality scaling of this table by hand.
_IJG_LUMINANCE = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.float64,
)


def _ijg_table(quality: int) -> np.ndarray:
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    return np.clip(np.floor((_IJG_LUMINANCE * scale + 50.0) / 100.0), 1, 255)


_IJG_TABLES = np.stack([_ijg_table(q) for q in range(1, 101)])


def jpeg_quality(path: str | os.PathLike) -> float:
    """The libjpeg quality (1-100) a JPEG file was most likely saved with.

    Parameters
    ----------
    path : path-like
        A JPEG file.

    Returns
    -------
    float
        The quality whose scaled standard luminance table is closest to the file's;
        NaN for a file without quantisation tables (not a JPEG).
    """
    from PIL import Image

    with Image.open(path) as image:
        tables = getattr(image, "quantization", None) or {}
    if 0 not in tables:
        return float("nan")
    table = np.asarray(tables[0], dtype=np.float64)
    return float(1 + np.abs(_IJG_TABLES - table).sum(axis=1).argmin())


def _lag_correlation(residual: np.ndarray, sky: np.ndarray, lag: int) -> float:
    """Correlation of sky residuals ``lag`` pixels apart, along rows and columns."""
    products, squares = 0.0, 0.0
    for a, b, ma, mb in (
        (residual[:, :-lag], residual[:, lag:], sky[:, :-lag], sky[:, lag:]),
        (residual[:-lag], residual[lag:], sky[:-lag], sky[lag:]),
    ):
        both = ma & mb
        products += float((a[both] * b[both]).sum())
        squares += float(np.sqrt((a[both] ** 2).sum() * (b[both] ** 2).sum()))
    return products / squares if squares > 0 else float("nan")


def _half_maximum_fwhm(grey: np.ndarray, y: int, x: int, sky: float) -> float:
    """FWHM of a peak from the area of its connected region above half its height."""
    half = 12
    y0, x0 = max(0, y - half), max(0, x - half)
    window = grey[y0 : y + half + 1, x0 : x + half + 1] - sky
    cy, cx = y - y0, x - x0
    height = window[max(0, cy - 1) : cy + 2, max(0, cx - 1) : cx + 2].max()
    labels, _ = ndimage.label(window >= height / 2)
    area = int((labels == labels[cy, cx]).sum()) if labels[cy, cx] else 0
    return 2.0 * math.sqrt(area / math.pi) if area else float("nan")


def image_statistics(image: np.ndarray) -> dict[str, float]:
    """Realism statistics of one RGB cutout (see :data:`STATISTICS`).

    Parameters
    ----------
    image : numpy.ndarray of uint8, shape (H, W, 3)
        A decoded cutout with the galaxy of interest at its centre.

    Returns
    -------
    dict
        One float per key of :data:`STATISTICS`; the galaxy's entries are NaN when no
        source covers the centre, ``psf_fwhm_px`` is NaN without a point-like source.
    """
    rgb = np.asarray(image, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    grey = rgb.mean(axis=2)
    h, w = grey.shape
    _, sky_level, noise = sigma_clipped_stats(grey, sigma=3.0, maxiters=5)
    smooth = ndimage.gaussian_filter(grey, _SMOOTH_PX)
    _, smooth_sky, smooth_noise = sigma_clipped_stats(smooth, sigma=3.0, maxiters=5)
    threshold = smooth_sky + max(_DETECT_SIGMA * smooth_noise, _DETECT_FLOOR)
    labels, n = ndimage.label(smooth > threshold)
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    big = np.flatnonzero(areas >= _MIN_AREA)
    big = big[big > 0]

    # The central galaxy: the source covering the centre, or the nearest one within
    # a tenth of the frame.
    cy, cx = (h - 1) // 2, (w - 1) // 2
    central = int(labels[cy, cx])
    if central == 0 or areas[central] < _MIN_AREA:
        near = labels[cy - h // 10 : cy + h // 10 + 1, cx - w // 10 : cx + w // 10 + 1]
        candidates = [k for k in np.unique(near) if k > 0 and areas[k] >= _MIN_AREA]
        central = max(candidates, key=lambda k: areas[k]) if candidates else 0

    out = dict.fromkeys(STATISTICS, float("nan"))
    out.update(sky_level=float(sky_level), noise=float(noise))
    out["n_neighbours"] = float(len(big) - (1 if central in big else 0))

    if central:
        ys, xs = np.nonzero(labels == central)
        flux = np.maximum(grey[ys, xs] - sky_level, 0.0)
        total = flux.sum()
        if total > 0:
            my, mx = (flux * ys).sum() / total, (flux * xs).sum() / total
            dy, dx = ys - my, xs - mx
            radius = np.hypot(dy, dx)
            order = np.argsort(radius)
            growth = np.cumsum(flux[order]) / total
            r50 = float(radius[order][np.searchsorted(growth, 0.5)])
            r90 = float(radius[order][min(np.searchsorted(growth, 0.9), len(order) - 1)])
            out.update(r50_px=r50, r90_px=r90, concentration=r90 / max(r50, 0.5))
            cyy, cxx, cxy = (flux * dy * dy).sum() / total, (flux * dx * dx).sum() / total, (flux * dx * dy).sum() / total
            spread = math.sqrt(max((cxx - cyy) ** 2 / 4 + cxy * cxy, 0.0))
            major, minor = (cxx + cyy) / 2 + spread, max((cxx + cyy) / 2 - spread, 0.0)
            out["axis_ratio"] = math.sqrt(minor / major) if major > 0 else float("nan")
            out["peak_level"] = float(smooth[ys, xs].max())
            channel = [np.maximum(rgb[ys, xs, c] - np.median(rgb[..., c]), 0.0).sum() for c in range(3)]
            red, green, blue = (max(v, 1e-3) for v in channel)
            out["g_r"] = -2.5 * math.log10(blue / green)
            out["r_i"] = -2.5 * math.log10(green / red)

    # Sky: pixels away from every detected source.
    sky = ~ndimage.binary_dilation(labels > 0, iterations=4)
    if sky.sum() > 100:
        residual = np.where(sky, grey - sky_level, 0.0)
        out["noise_corr_1px"] = _lag_correlation(residual, sky, 1)
        out["noise_corr_3px"] = _lag_correlation(residual, sky, 3)
        red_blue = (rgb[..., 0] - rgb[..., 2])[sky]
        out["noise_colour"] = float(red_blue.std() / max(grey[sky].std(), 1e-3))

    # Point sources: the sharpest well-detected peak outside the central galaxy.
    peaks = (smooth == ndimage.maximum_filter(smooth, size=5)) & (
        smooth > smooth_sky + max(_STAR_SIGMA * smooth_noise, _STAR_FLOOR)
    )
    if central:
        peaks &= ~ndimage.binary_dilation(labels == central, iterations=3)
    border = 8
    peaks[:border] = peaks[-border:] = False
    peaks[:, :border] = peaks[:, -border:] = False
    fwhm = [_half_maximum_fwhm(grey, int(y), int(x), float(sky_level)) for y, x in zip(*np.nonzero(peaks))]
    fwhm = [f for f in fwhm if np.isfinite(f)]
    if fwhm:
        out["psf_fwhm_px"] = float(min(fwhm))
    return out


def cutout_statistics(files: Iterable[str | os.PathLike], progress: bool = False) -> pd.DataFrame:
    """:func:`image_statistics` and :func:`jpeg_quality` of every file, one row each.

    Parameters
    ----------
    files : iterable of path-like
        RGB cutouts (JPEG or PNG).
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        A ``file`` column, the :data:`STATISTICS` columns and ``jpeg_quality``.
    """
    from spiralarms.runtime import progress_bar

    from spiralarms.data.images import load_image_uint8

    rows = []
    files = list(files)
    for file in progress_bar(files, enabled=progress, desc="statistics", unit="img"):
        row = {"file": str(file), **image_statistics(load_image_uint8(file)), "jpeg_quality": jpeg_quality(file)}
        rows.append(row)
    return pd.DataFrame(rows)
