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

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from spiralarms.errors import ImageReadError, SpiralArmsError

__all__ = ["load_image", "load_image_uint8", "check_image", "scan_images"]

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


def _decode(path: str | os.PathLike, grey: bool) -> np.ndarray:
    """Open and fully decode ``path``; raise ImageReadError with a short reason."""
    path = Path(path)
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
        from tqdm.auto import tqdm

        results = tqdm(results, total=total, desc="scanning images", unit="img")
    return list(results)
