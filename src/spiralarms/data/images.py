"""Read galaxy cutouts (JPEG, PNG, ...) into NumPy arrays, and account for bad files.

Every failure becomes an :class:`~spiralarms.errors.ImageReadError` that names the file
and gives a short reason (``"no such file"``, ``"empty file"``, ``"permission denied"``,
``"not an image (unrecognised format)"``, ``"truncated or corrupt JPEG: ..."``). A
truncated JPEG always raises: the pixels are decoded in full (``Image.load``) and
Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left at its default, ``False``, so that
Pillow does not pad a cut-off file with grey and pass it on as an image.

Greyscale is luminance, ``L = 0.299 R + 0.587 G + 0.114 B`` (ITU-R 601), by Pillow's
``"L"`` conversion: the weights of Keras/TensorFlow ``tf.image.rgb_to_grayscale``
(which the paper's Keras pipeline would use) and of torchvision's ``Grayscale``.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from spiralarms.errors import ImageReadError, SpiralArmsError

__all__ = [
    "load_image",
    "load_image_uint8",
    "read_pixels",
    "read_cutout",
    "load_fits",
    "asinh_stretch",
    "is_fits",
    "luminance_uint8",
    "check_image",
    "scan_images",
    "FITS_SUFFIXES",
    "IMAGE_SUFFIXES",
]

#: File endings of the raster cutouts (JPEG, PNG) that a folder, an archive or a sky
#: sample is taken to hold, case-insensitively. The reader itself goes by the content.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")

#: File endings read as FITS cutouts (astropy), case-insensitively.
FITS_SUFFIXES: tuple[str, ...] = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz")

#: Softening of the per-band asinh stretch of FITS cutouts (see :func:`asinh_stretch`).
ASINH_SOFTENING = 0.1
#: Percentile of the background-subtracted band that the stretch maps to 1.
ASINH_PERCENTILE = 99.5

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Pillow modes whose samples are wider than 8 bits (16-bit PNG opens as "I;16" or "I").
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _format_from_magic(path: Path) -> str | None:
    """Name the format from the file's first bytes, for a clearer error on bad headers."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if head.startswith(_JPEG_MAGIC):
        return "JPEG"
    if head.startswith(_PNG_MAGIC):
        return "PNG"
    return None


def _pixels(img: Image.Image, grey: bool) -> np.ndarray:
    """Decoded Pillow image -> HxWxC uint8 (or uint16 for 16-bit input) array."""
    mode = img.mode
    if mode in _WIDE_MODES:
        # Pillow's convert("L") clips 16-bit samples at 255 instead of scaling them,
        # so wide greyscale images keep their full range as uint16.
        wide = np.asarray(img)
        wide = np.clip(wide, 0, 65535).astype(np.uint16)
        channels = 1 if grey else 3
        return np.repeat(wide[:, :, None], channels, axis=2)
    if mode == "P":
        mode, img = ("RGBA", img.convert("RGBA")) if "transparency" in img.info else ("RGB", img.convert("RGB"))
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        # Transparent pixels carry no data; compositing on black treats them as empty
        # (dark) sky rather than exposing whatever colour hides under alpha = 0.
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, rgba)
    target = "L" if grey else "RGB"
    if img.mode != target:
        img = img.convert(target)
    arr = np.asarray(img)
    return arr[:, :, None] if grey else arr


def _check_file(path: Path) -> None:
    """Raise ImageReadError unless ``path`` is a non-empty regular file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot stat file: {exc.strerror or exc}") from None
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image")
    if size == 0:
        raise ImageReadError(path, "empty file")


def is_fits(path: str | os.PathLike) -> bool:
    """Whether a file name ends like a FITS cutout (:data:`FITS_SUFFIXES`)."""
    return str(path).lower().endswith(FITS_SUFFIXES)


def asinh_stretch(bands: np.ndarray) -> np.ndarray:
    """Map raw FITS fluxes to [0, 1] with a per-band asinh stretch.

    Each band is background-subtracted (its median), scaled so that its
    :data:`ASINH_PERCENTILE` percentile becomes 1, and stretched as
    ``asinh(x / s) / asinh(1 / s)`` with softening ``s`` = :data:`ASINH_SOFTENING`:
    linear for faint sky, logarithmic for the bright core, as in the asinh
    magnitudes of Lupton et al. (1999, 2004) that the SDSS and Legacy Surveys colour
    cutouts use. Negative values and NaN become 0 (dark sky).

    Parameters
    ----------
    bands : numpy.ndarray
        (B, H, W) fluxes.

    Returns
    -------
    numpy.ndarray
        (B, H, W) float32 in [0, 1].
    """
    out = np.empty(bands.shape, dtype=np.float32)
    norm = np.arcsinh(1.0 / ASINH_SOFTENING)
    for b, band in enumerate(np.asarray(bands, dtype=np.float64)):
        finite = band[np.isfinite(band)]
        if finite.size == 0:
            out[b] = 0.0
            continue
        x = band - np.median(finite)
        top = np.percentile(x[np.isfinite(x)], ASINH_PERCENTILE)
        scale = top if top > 0 else (np.nanmax(x) if np.nanmax(x) > 0 else 1.0)
        y = np.arcsinh(np.nan_to_num(x / scale, nan=0.0) / ASINH_SOFTENING) / norm
        out[b] = np.clip(y, 0.0, 1.0)
    return out


_FITS_WARNINGS_LOCK = threading.Lock()


def load_fits(path: str | os.PathLike, grey: bool = False) -> np.ndarray:
    """Read a FITS cutout (one, two or three bands) as an (H, W, C) float32 image in [0, 1].

    The bands are the planes of the first image HDU with 3-D data, or the 2-D
    images of consecutive HDUs of one shape, in wavelength order (bluest first,
    e.g. g, r, z). Each is stretched by :func:`asinh_stretch`; three bands become
    RGB as (reddest, middle, bluest), two bands (red, mean, blue), one band a grey
    image (repeated into RGB unless ``grey``). ``grey=True`` gives the luminance of
    that colour image.

    Raises
    ------
    ImageReadError
        If the file is missing, not FITS, holds no image or more than three bands.
    """
    path = Path(path)
    _check_file(path)
    from astropy.io import fits

    try:
        # A damaged file's reason goes into the row's error; astropy's warnings about it
        # would otherwise print once per file, burying the progress of a survey-scale run.
        # catch_warnings swaps process-wide state: the lock keeps scan_images' threads from interleaving it.
        with _FITS_WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False) as hdus:
                planes = [np.asarray(h.data) for h in hdus if getattr(h, "is_image", False) and h.data is not None]
    except (OSError, ValueError, TypeError, EOFError) as exc:
        raise ImageReadError(path, f"not a readable FITS file: {' '.join(str(exc).split())[:120]}") from None
    cube = next((p for p in planes if p.ndim == 3), None)
    if cube is None:
        images = [p for p in planes if p.ndim == 2]
        if not images:
            raise ImageReadError(path, "FITS file without 2-D or 3-D image data")
        images = [p for p in images if p.shape == images[0].shape]
        cube = np.stack(images)
    if not 1 <= cube.shape[0] <= 3:
        raise ImageReadError(path, f"FITS cutout with {cube.shape[0]} bands; give 1, 2 or 3")
    stretched = asinh_stretch(cube)
    if len(stretched) == 1:
        rgb = np.repeat(stretched, 3, axis=0)
    elif len(stretched) == 2:
        rgb = np.stack([stretched[1], stretched.mean(axis=0), stretched[0]])
    else:
        rgb = stretched[::-1]
    image = np.ascontiguousarray(np.transpose(rgb, (1, 2, 0)), dtype=np.float32)
    if grey:
        from spiralarms.data.transforms import to_greyscale

        return to_greyscale(image)
    return image


def luminance_uint8(rgb):
    """Pillow's ``"L"`` conversion of uint8 RGB, exactly: ``(19595 R + 38470 G + 7471 B + 2**15) >> 16``.

    Written out (rather than calling Pillow) so that it runs on torch tensors, on the
    GPU too, and gives the very bytes that :func:`load_image` gives with ``grey=True``.

    Parameters
    ----------
    rgb : torch.Tensor
        (..., 3, H, W) uint8.

    Returns
    -------
    torch.Tensor
        (..., 1, H, W) uint8.
    """
    import torch

    x = rgb.to(torch.int32)
    y = (x[..., 0, :, :] * 19595 + x[..., 1, :, :] * 38470 + x[..., 2, :, :] * 7471 + 32768) >> 16
    return y.to(torch.uint8).unsqueeze(-3)


def read_cutout(path: str | os.PathLike, grey: bool = False, grey_method: str = "luminance", decoder: str = "torchvision"):
    """Read a cutout as a (C, H, W) torch tensor, as fast as the format allows.

    JPEGs are decoded by ``torchvision.io.decode_jpeg`` (libjpeg-turbo; 10-20 %
    faster than Pillow here, with identical pixels); anything it cannot decode goes
    through Pillow (:func:`read_pixels`), which names the reason. FITS cutouts go
    through :func:`load_fits`. The pixels equal those of :func:`load_image`.

    Parameters
    ----------
    path : str or path-like
    grey : bool, default False
        One grey channel (``grey_method`` "luminance": Pillow's "L"; "mean": the
        channel mean).
    grey_method : {"luminance", "mean"}
    decoder : {"torchvision", "pillow"}, default "torchvision"
        JPEG decoder (both give the same pixels; see ``benchmarks/bench_predict.py``).

    Returns
    -------
    torch.Tensor
        uint8 for 8-bit images, float32 in [0, 1] for 16-bit and FITS ones.

    Raises
    ------
    ImageReadError
        As :func:`load_image`.
    """
    import torch

    path = Path(path)
    if is_fits(path):
        image = load_fits(path, grey=False)
        tensor = torch.from_numpy(image if image.flags.writeable else image.copy()).permute(2, 0, 1)
        if grey:
            from spiralarms.data.transforms import to_greyscale

            tensor = to_greyscale(tensor, grey_method)
        return tensor
    _check_file(path)
    tensor = None
    try:
        data = path.read_bytes()
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file: {exc.strerror or exc}") from None
    if decoder == "torchvision" and data.startswith(_JPEG_MAGIC) and _torchvision_jpeg() is not None:
        try:
            tensor = _torchvision_jpeg()(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        except RuntimeError:
            tensor = None  # Pillow below gives the reason, or reads what libjpeg-turbo would not
    if tensor is None:
        pixels = read_pixels(path, grey=grey and grey_method == "luminance")
        if pixels.dtype == np.uint16:  # scaled as load_image scales 16-bit samples
            pixels = np.multiply(pixels, np.float32(1.0 / 65535.0), dtype=np.float32)
        # Pillow's arrays are read-only: torch would warn on every such file.
        tensor = torch.from_numpy(np.require(pixels, requirements=("C", "W"))).permute(2, 0, 1)
        if grey and grey_method == "luminance":
            return tensor
    if grey:
        if grey_method == "luminance" and tensor.dtype == torch.uint8:
            return luminance_uint8(tensor)
        from spiralarms.data.transforms import to_greyscale

        floats = tensor.float() * (1.0 / 255.0) if tensor.dtype == torch.uint8 else tensor
        return to_greyscale(floats, grey_method)
    return tensor


@functools.cache
def _torchvision_jpeg():
    """torchvision's libjpeg-turbo decoder as ``f(bytes tensor) -> (3, H, W) uint8``, or None.

    torchvision 0.29 marks its image codecs deprecated in favour of TorchCodec; they
    still run, and are the fastest CPU decoder here. Where they are gone, Pillow
    decodes instead (the pixels are the same).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:
        return None

    def decode(data):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return decode_jpeg(data, mode=ImageReadMode.RGB)

    return decode


def read_pixels(path: str | os.PathLike, grey: bool = False) -> np.ndarray:
    """Open and fully decode an image with Pillow: (H, W, C) uint8, or uint16 for 16-bit files.

    Raises
    ------
    ImageReadError
        Naming the file and a short reason.
    """
    return _decode(path, grey)


def _decode(path: str | os.PathLike, grey: bool) -> np.ndarray:
    """Open and fully decode ``path``; raise ImageReadError with a short reason."""
    path = Path(path)
    _check_file(path)
    try:
        img = Image.open(path)
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except UnidentifiedImageError:
        magic = _format_from_magic(path)
        if magic is not None:
            raise ImageReadError(path, f"truncated or corrupt {magic}: unreadable header") from None
        raise ImageReadError(path, "not an image (unrecognised format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, f"image too large: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # The file exists and is not empty, so a failure while reading the header
        # (e.g. "Truncated File Read") means it is damaged.
        what = _format_from_magic(path) or "image"
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageReadError(path, f"truncated or corrupt {what}: {message}") from None
    with img:
        fmt = img.format or "image"
        try:
            img.load()  # decode now: a truncated file fails here, not later in a worker
        except Image.DecompressionBombError as exc:
            raise ImageReadError(path, f"image too large: {exc}") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
            # Pillow reports broken streams as OSError ("image file is truncated"),
            # SyntaxError (bad chunks) or ValueError; all mean the file is damaged.
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise ImageReadError(path, f"truncated or corrupt {fmt}: {message}") from None
        if img.mode == "F":
            raise ImageReadError(path, "floating-point images are not supported (use 8 or 16 bits)")
        try:
            return _pixels(img, grey)
        except ValueError:  # Pillow cannot convert some rare modes (LAB, HSV, ...) to RGB
            raise ImageReadError(path, f"unsupported image mode {img.mode}") from None


def load_image(path: str | os.PathLike, grey: bool = False) -> np.ndarray:
    """Read an image file as a float32 array with values in [0, 1].

    Parameters
    ----------
    path : str or path-like
        A JPEG or PNG file (any format Pillow reads works). RGB, greyscale ("L"),
        palette, RGBA (composited on black), CMYK and 16-bit PNG are accepted.
    grey : bool, default False
        Return one luminance channel (ITU-R 601, Pillow's ``"L"`` conversion, the
        weights of TensorFlow's ``rgb_to_grayscale``) instead of three RGB channels.
        A greyscale file read with ``grey=False`` is repeated into three channels.

    Returns
    -------
    numpy.ndarray
        Shape (H, W, C), C = 3 (RGB) or 1 (``grey=True``), dtype float32, values in
        [0, 1] (8-bit samples divided by 255, 16-bit by 65535).

    Raises
    ------
    ImageReadError
        If the file is missing, empty, unreadable, not an image, truncated or corrupt;
        the message names the file and the reason.
    """
    if is_fits(path):
        return load_fits(path, grey=grey)
    arr = _decode(path, grey)
    scale = np.float32(1.0 / np.iinfo(arr.dtype).max)
    return np.multiply(arr, scale, dtype=np.float32)


def load_image_uint8(path: str | os.PathLike, grey: bool = False) -> np.ndarray:
    """Read an image file as a uint8 array (for compact stores and fast paths).

    Parameters
    ----------
    path : str or path-like
        The image file (see :func:`load_image`).
    grey : bool, default False
        One luminance channel instead of three RGB channels.

    Returns
    -------
    numpy.ndarray
        Shape (H, W, C), dtype uint8; 16-bit input is rounded to 8 bits.

    Raises
    ------
    ImageReadError
        As :func:`load_image`.
    """
    arr = _decode(path, grey)
    if arr.dtype == np.uint16:
        # 65535 / 255 = 257 exactly, so this maps 0 -> 0 and 65535 -> 255.
        return np.rint(arr / 257.0).astype(np.uint8)
    return arr


def check_image(path: str | os.PathLike) -> str | None:
    """Say why an image file cannot be read, or ``None`` if it decodes.

    Parameters
    ----------
    path : str or path-like
        The image file.

    Returns
    -------
    str or None
        The reason (as in :class:`ImageReadError`), or ``None`` for a readable image.
    """
    try:
        _decode(path, grey=False)
    except ImageReadError as exc:
        return exc.reason
    return None


def scan_images(
    paths: Iterable[str | os.PathLike], workers: int = 1, progress: bool = False
) -> pd.DataFrame:
    """Try to decode every file and report which ones fail, keeping every row.

    Parameters
    ----------
    paths : iterable of str or path-like
        The image files, in the order wanted in the report.
    workers : int, default 1
        Threads that decode in parallel (Pillow releases the GIL while decoding).
    progress : bool, default False
        Show a progress bar (tqdm) on standard error.

    Returns
    -------
    pandas.DataFrame
        One row per input path, in input order, with columns ``file`` (str, as given),
        ``ok`` (bool) and ``error`` (the reason, missing where ``ok``).

    Raises
    ------
    SpiralArmsError
        If ``workers`` is not a positive integer.
    """
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise SpiralArmsError(f"workers must be a positive integer, got {workers!r}")
    files = [str(p) for p in paths]
    if workers == 1:
        results: Iterable[str | None] = map(check_image, files)
        reasons = _with_progress(results, len(files), progress)
    else:
        with ThreadPoolExecutor(max_workers=int(workers)) as pool:
            reasons = _with_progress(pool.map(check_image, files), len(files), progress)
    return pd.DataFrame(
        {
            "file": pd.Series(files, dtype=object),
            "ok": pd.Series([r is None for r in reasons], dtype=bool),
            "error": pd.Series(reasons, dtype=object),
        }
    )


def _with_progress(results: Iterable[str | None], total: int, progress: bool) -> list[str | None]:
    """Collect ``results`` into a list, optionally behind a tqdm bar."""
    if progress:
        from spiralarms.runtime import progress_bar

        results = progress_bar(results, total=total, desc="scanning images", unit="img")
    return list(results)
