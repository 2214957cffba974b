"""Real sky behind synthetic galaxies: the corners of survey cutouts, back in linear flux.

A real cutout's corners hold its sky, noise and field sources but not its galaxy. Taken
back through the SDSS colour composite (:func:`inverse_lupton_rgb`), they are in the
units the ``sdss`` preset renders in, so a synthetic galaxy can be added to them in
linear flux and the sum mapped to a colour image as the survey maps its own: galaxies
with an exact arm number on the sky, noise and neighbours of a real survey
(``spiralarms synth --sky-from FOLDER``; docs/synthetic.md).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from spiralarms.data.images import IMAGE_SUFFIXES
from spiralarms.errors import SpiralArmsError

#: Side of each corner, as a fraction of the cutout's: 112 of GZ2's 424 pixels, out of
#: reach of the central galaxy's light (its r90 is 58 px at the median, 86 at the 90th
#: percentile, 150 px from a corner square's inner edge), tiled into the 224-pixel
#: centre crop that the models see.
CORNER_FRACTION = 112 / 424


def inverse_lupton_rgb(rgb: np.ndarray, stretch: float, q: float) -> np.ndarray:
    """Linear fluxes of an 8-bit colour image made by :func:`~spiralarms.data.synthetic.lupton_rgb`.

    The composite scales the three bands by one factor of their mean ``I``, and the
    mean of the display values is ``slope * asinh(q I / stretch)``; so ``I`` follows
    from the mean level and each band from its share of it. Exact up to the 8-bit
    rounding (mapped back, levels agree within 1), except where the composite clipped:
    black pixels come back as 0, saturated ones too faint.

    Parameters
    ----------
    rgb : numpy.ndarray of uint8, shape (H, W, 3)
        The colour image, (R, G, B) = (i, r, g).
    stretch, q : float
        The composite's linear stretch and asinh softening.

    Returns
    -------
    numpy.ndarray of float32, shape (3, H, W)
        Fluxes above the composite's black point.
    """
    levels = np.asarray(rgb, dtype=np.float32)
    if levels.ndim != 3 or levels.shape[2] != 3:
        raise SpiralArmsError(f"expected an (H, W, 3) colour image, got shape {levels.shape}")
    mean = levels.mean(axis=2)
    slope = np.float32(0.1 * 255 / math.asinh(0.1 * q))
    intensity = np.float32(stretch / q) * np.sinh(mean / slope)
    scale = np.divide(intensity, mean, out=np.zeros_like(mean), where=mean > 0)
    return np.ascontiguousarray((levels * scale[..., None]).transpose(2, 0, 1))


def corner_tile(rgb: np.ndarray) -> np.ndarray:
    """The four corners of a square cutout side by side, each ``CORNER_FRACTION`` of its side.

    Parameters
    ----------
    rgb : numpy.ndarray, shape (N, N, C)
        A cutout with its galaxy at the centre.

    Returns
    -------
    numpy.ndarray, shape (2 s, 2 s, C), of ``rgb``'s dtype, ``s = round(CORNER_FRACTION * N)``
        Mostly sky and field sources: 224 pixels of a 424-pixel GZ2 frame.
    """
    side = max(1, round(CORNER_FRACTION * rgb.shape[0]))
    top = np.concatenate([rgb[:side, :side], rgb[:side, -side:]], axis=1)
    bottom = np.concatenate([rgb[-side:, :side], rgb[-side:, -side:]], axis=1)
    return np.concatenate([top, bottom], axis=0)


def corner_sky(rgb: np.ndarray, size: int) -> np.ndarray:
    """The four corners of a cutout (:func:`corner_tile`) at its centre, mirrored out to ``size`` pixels.

    Parameters
    ----------
    rgb : numpy.ndarray, shape (size, size, C)
        A cutout with its galaxy at the centre.
    size : int
        Its side in pixels.

    Returns
    -------
    numpy.ndarray, shape (size, size, C), of ``rgb``'s dtype
        The corners side by side in the central square, which the 224-pixel crop of a
        GZ2 frame sees whole; the frame around it is filled by reflection.
    """
    tile = corner_tile(rgb)
    before = (size - tile.shape[0]) // 2
    after = size - tile.shape[0] - before
    return np.pad(tile, ((before, after), (before, after), (0, 0)), mode="symmetric")


def list_sky_cutouts(folder: str | os.PathLike, size: int) -> list[str]:
    """The sky cutouts of a folder (JPEG and PNG, in name order), each checked.

    Parameters
    ----------
    folder : str or path-like
        A folder of survey cutouts of ``size`` x ``size`` pixels, galaxy at the
        centre, made by the SDSS colour composite (as GZ2's and SkyServer's are).
    size : int
        The side the synthetic images will have.

    Returns
    -------
    list of str
        Their paths.

    Raises
    ------
    SpiralArmsError
        If ``folder`` is not a folder or holds no JPEG or PNG file, or if a file is
        unreadable, not a colour image or of another size (naming the file).
    """
    from PIL import Image

    from spiralarms.data.images import check_image

    folder = Path(folder)
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "no such folder"
        raise SpiralArmsError(f"{folder}: {what} (--sky-from takes a folder of survey cutouts)")
    # Hidden files skipped, as a folder given to predict: macOS's "._x.jpg" are not images.
    files = sorted(str(f) for f in folder.iterdir()
                   if f.is_file() and not f.name.startswith(".") and f.name.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise SpiralArmsError(f"{folder}: no JPEG or PNG cutouts in this folder (sub-folders are not searched)")
    for file in files:
        reason = check_image(file)  # a whole decode: a truncated file fails here, not in a worker
        if reason:
            raise SpiralArmsError(f"{file}: {reason}")
        with Image.open(file) as image:
            shape, mode = image.size, image.mode
        if mode not in ("RGB", "YCbCr"):
            raise SpiralArmsError(f"{file}: a {mode} image; sky cutouts must be colour (RGB) composites")
        if shape != (size, size):
            raise SpiralArmsError(f"{file}: {shape[0]}x{shape[1]} pixels; sky cutouts must be {size}x{size}, "
                                  "the side of the synthetic images (--size)")
    return files


def load_sky(file: str, size: int, stretch: float, q: float) -> np.ndarray:
    """The linear sky of one cutout (:func:`corner_sky` in fluxes), shape (3, size, size), float32."""
    from spiralarms.data.images import load_image_uint8

    rgb = load_image_uint8(file)  # an unreadable file: ImageReadError, which names it
    if rgb.shape != (size, size, 3):
        raise SpiralArmsError(f"{file}: shape {rgb.shape}; sky cutouts must be {size}x{size} colour images")
    return inverse_lupton_rgb(corner_sky(rgb, size), stretch, q)


def sky_rng(seed: int, index: int) -> np.random.Generator:
    """Generator that picks galaxy ``index``'s sky: its own stream, apart from the galaxy's."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 1]))
