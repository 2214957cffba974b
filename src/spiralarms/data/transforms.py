"""Pre-processing and training augmentation of the paper (sections 2.2 and 2.3).

Pre-processing: centre crop (424 -> 224 by default; the paper sweeps the size),
optional greyscale (for the Zoobot backbone), pixel values in [0, 1].

Training augmentation only: rotation uniform in [-180, 180] degrees, random horizontal
and vertical flips, zoom in or out by up to 20 % (scale uniform in [0.8, 1.2]) about
the image centre. By default they act on the full frame before the centre crop; the
paper's order (crop, then rotation, flips and zoom, each as Keras' layer with its
``reflect`` fill) is ``augment_before_crop=False``. Validation and prediction use :func:`build_eval_transform`, which is
deterministic; test-time augmentation (:func:`tta_views`) is an option, off elsewhere
by default.

Both builders return a callable that takes an (H, W, C) float32 NumPy image in [0, 1]
(as :func:`~spiralarms.data.images.load_image` returns; uint8 is also accepted and
scaled by 1/255) and returns a (C, H, W) float32 torch tensor in [0, 1]. Random draws
come from torch's global generator: seed with ``torch.manual_seed`` for repeatable
output; a ``DataLoader`` gives each worker its own seed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from spiralarms.errors import SpiralArmsError

__all__ = [
    "center_crop",
    "to_greyscale",
    "to_tensor",
    "build_eval_transform",
    "build_train_transform",
    "tta_views",
    "CenterCrop",
    "ToGreyscale",
    "ToTensor",
    "Clamp",
    "ReflectRotation",
    "ReflectZoom",
    "AffineFlipCrop",
    "affine_reflect",
    "GREY_METHODS",
]

#: Greyscale conversions: ``"luminance"`` is ITU-R 601, 0.2989 R + 0.587 G + 0.114 B
#: (torchvision's and TensorFlow's ``rgb_to_grayscale``; Pillow's "L" uses 0.299 and
#: rounds to 8 bits); ``"mean"`` is the plain channel mean that Zoobot's own training
#: pipeline (galaxy-datasets' ``GrayscaleUnweighted``) uses.
GREY_METHODS: tuple[str, ...] = ("luminance", "mean")

# torchvision's weights, so that NumPy and tensor inputs give the same grey image.
_LUMINANCE = np.array([0.2989, 0.587, 0.114], dtype=np.float32)


def _check_size(size: int, name: str = "crop") -> int:
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise SpiralArmsError(f"{name} size must be a positive integer, got {size!r}")
    return int(size)


def center_crop(image: np.ndarray | torch.Tensor, size: int = 224) -> np.ndarray | torch.Tensor:
    """Crop a square of side ``size`` about the image centre.

    Parameters
    ----------
    image : numpy.ndarray or torch.Tensor
        A NumPy image (H, W) or (H, W, C), or a torch tensor (..., H, W), e.g. (C, H, W)
        or a batch (N, C, H, W).
    size : int, default 224
        Side of the crop in pixels (the paper: 424 -> 224).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        The crop, same type and layout as the input (a view where possible). When
        ``H - size`` is odd, the extra row goes below the crop (torchvision's rounding).

    Raises
    ------
    SpiralArmsError
        If ``size`` is not a positive integer, is larger than either image side, or the
        array has the wrong number of dimensions.
    """
    size = _check_size(size)
    if isinstance(image, torch.Tensor):
        if image.ndim < 2:
            raise SpiralArmsError(f"center_crop: expected a (..., H, W) tensor, got shape {tuple(image.shape)}")
        h, w = image.shape[-2:]
    elif isinstance(image, np.ndarray):
        if image.ndim not in (2, 3):
            raise SpiralArmsError(f"center_crop: expected an (H, W) or (H, W, C) array, got shape {image.shape}")
        h, w = image.shape[:2]
    else:
        raise SpiralArmsError(f"center_crop: expected a NumPy array or torch tensor, got {type(image).__name__}")
    # Hand-written slicing rather than torchvision's center_crop, which pads silently
    # when the crop is larger than the image and does not take HWC NumPy arrays.
    top, left = _crop_offsets(h, w, size)
    if isinstance(image, torch.Tensor):
        return image[..., top : top + size, left : left + size]
    return image[top : top + size, left : left + size]


def _crop_offsets(h: int, w: int, size: int) -> tuple[int, int]:
    """Top and left of a centred ``size`` square, with torchvision's rounding; refuses one larger than the image."""
    if size > h or size > w:
        raise SpiralArmsError(f"crop size {size} is larger than the image ({h}x{w})")
    return int(round((h - size) / 2.0)), int(round((w - size) / 2.0))


def to_greyscale(image: np.ndarray | torch.Tensor, method: str = "luminance") -> np.ndarray | torch.Tensor:
    """Convert an RGB image to one grey channel; a one-channel image is returned as is.

    Parameters
    ----------
    image : numpy.ndarray or torch.Tensor
        NumPy (H, W, C) or torch (..., C, H, W), C = 3 or 1, float values.
    method : {"luminance", "mean"}, default "luminance"
        ``"luminance"``: ITU-R 601 weights, as Pillow "L" and TensorFlow's
        ``rgb_to_grayscale``; ``"mean"``: plain channel mean (Zoobot's convention).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        NumPy (H, W, 1) or torch (..., 1, H, W), same dtype.

    Raises
    ------
    SpiralArmsError
        If ``method`` is unknown or the image does not have 1 or 3 channels.
    """
    if method not in GREY_METHODS:
        raise SpiralArmsError(f"unknown greyscale method {method!r}; choose from {', '.join(GREY_METHODS)}")
    if isinstance(image, torch.Tensor):
        if image.ndim < 3 or image.shape[-3] not in (1, 3):
            raise SpiralArmsError(f"to_greyscale: expected a (..., 1 or 3, H, W) tensor, got {tuple(image.shape)}")
        if image.shape[-3] == 1:
            return image
        if method == "mean":
            return image.mean(dim=-3, keepdim=True)
        return TF.rgb_to_grayscale(image, num_output_channels=1)
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] not in (1, 3):
        shape = getattr(image, "shape", type(image).__name__)
        raise SpiralArmsError(f"to_greyscale: expected an (H, W, 1 or 3) array, got {shape}")
    if image.shape[2] == 1:
        return image
    if method == "mean":
        return image.mean(axis=2, keepdims=True, dtype=np.float32).astype(image.dtype, copy=False)
    grey = np.tensordot(image.astype(np.float32, copy=False), _LUMINANCE, axes=([2], [0]))
    return grey[:, :, None].astype(image.dtype, copy=False)


def to_tensor(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Convert an (H, W, C) or (H, W) NumPy image to a (C, H, W) float32 tensor in [0, 1].

    Parameters
    ----------
    image : numpy.ndarray or torch.Tensor
        float in [0, 1] (as ``load_image`` returns) or uint8 (scaled by 1/255). A torch
        tensor is taken to be (C, H, W) already and only cast to float32.

    Returns
    -------
    torch.Tensor
        (C, H, W) float32.

    Raises
    ------
    SpiralArmsError
        If the array is not 2- or 3-dimensional or has an unsupported dtype.
    """
    if isinstance(image, torch.Tensor):
        if image.dtype == torch.uint8:
            return image.to(torch.float32).div_(255.0)
        return image.to(torch.float32)
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
        shape = getattr(image, "shape", type(image).__name__)
        raise SpiralArmsError(f"expected an (H, W, C) image array, got {shape}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.dtype == np.uint8:
        array = np.multiply(image, np.float32(1.0 / 255.0), dtype=np.float32)
    elif np.issubdtype(image.dtype, np.floating):
        array = image.astype(np.float32, copy=False)
    else:
        raise SpiralArmsError(f"expected a float or uint8 image, got dtype {image.dtype}")
    if not array.flags.writeable:
        array = array.copy()  # torch refuses to share read-only memory (a decoder's or a memory map's)
    # A (C, H, W) view, not a copy: the centre crop that follows then copies only the
    # crop (a full-frame transposed copy cost more than decoding the JPEG).
    return torch.from_numpy(array).permute(2, 0, 1)


class ToTensor:
    """Callable form of :func:`to_tensor` (picklable, for DataLoader workers)."""

    def __call__(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        return to_tensor(image)

    def __repr__(self) -> str:
        return "ToTensor()"


class CenterCrop:
    """Callable form of :func:`center_crop` that refuses crops larger than the image.

    Parameters
    ----------
    size : int
        Side of the crop in pixels.
    """

    def __init__(self, size: int):
        self.size = _check_size(size)

    def __call__(self, image: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        cropped = center_crop(image, self.size)
        # Copy the crop alone into contiguous memory (the input may be a strided view).
        return cropped.contiguous() if isinstance(cropped, torch.Tensor) else cropped

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


class ToGreyscale:
    """Callable form of :func:`to_greyscale`.

    Parameters
    ----------
    method : {"luminance", "mean"}
        See :func:`to_greyscale`.
    """

    def __init__(self, method: str = "luminance"):
        if method not in GREY_METHODS:
            raise SpiralArmsError(f"unknown greyscale method {method!r}; choose from {', '.join(GREY_METHODS)}")
        self.method = method

    def __call__(self, image: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        return to_greyscale(image, self.method)

    def __repr__(self) -> str:
        return f"ToGreyscale(method={self.method!r})"


class Clamp:
    """Clamp tensor values to [0, 1] (interpolation round-off must not leave the range)."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image.clamp_(0.0, 1.0)

    def __repr__(self) -> str:
        return "Clamp(0, 1)"


def affine_reflect(image: torch.Tensor, angle: float = 0.0, zoom: float = 1.0) -> torch.Tensor:
    """Rotate and zoom an image about its centre, filling by reflection, as Keras does.

    Keras' ``RandomRotation`` and ``RandomZoom`` layers (the paper's augmentation)
    fill the area brought in from outside the frame with ``fill_mode="reflect"``:
    the image mirrored about the edge of its last pixel (``d c b a | a b c d | d c b
    a``). That is :func:`torch.nn.functional.grid_sample` with
    ``padding_mode="reflection"`` and ``align_corners=False``; hand-written here
    because torchvision's affine transforms fill with a constant only.

    Parameters
    ----------
    image : torch.Tensor
        ``(C, H, W)`` float.
    angle : float, default 0.0
        Rotation in degrees about the centre.
    zoom : float, default 1.0
        Keras' zoom factor: each output pixel samples the input at ``zoom`` times its
        distance from the centre, so ``zoom > 1`` zooms out (the galaxy looks
        smaller) and ``zoom < 1`` zooms in.

    Returns
    -------
    torch.Tensor
        ``(C, H, W)``, bilinear (Keras' default interpolation).
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise SpiralArmsError(f"affine_reflect: expected a (C, H, W) tensor, got {tuple(getattr(image, 'shape', ()))}")
    h, w = image.shape[-2:]
    theta = np.deg2rad(float(angle))
    cos, sin = float(np.cos(theta)), float(np.sin(theta))
    # Output -> input in normalised coordinates ([-1, 1] across each side); the
    # aspect ratio keeps the rotation rigid on non-square images.
    matrix = torch.tensor(
        [[zoom * cos, -zoom * sin * h / w, 0.0], [zoom * sin * w / h, zoom * cos, 0.0]],
        dtype=torch.float32,
    )
    batch = image.unsqueeze(0).to(torch.float32)
    grid = torch.nn.functional.affine_grid(matrix.unsqueeze(0), list(batch.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out[0].to(image.dtype)


class ReflectRotation:
    """Keras' ``RandomRotation``: uniform in [-``degrees``, ``degrees``], reflect fill.

    Draws from torch's global generator, as torchvision's random transforms do.
    """

    def __init__(self, degrees: float):
        self.degrees = float(degrees)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        angle = float(torch.empty(1).uniform_(-self.degrees, self.degrees))
        return affine_reflect(image, angle=angle)

    def __repr__(self) -> str:
        return f"ReflectRotation(degrees={self.degrees}, fill='reflect')"


class ReflectZoom:
    """Keras' ``RandomZoom(height_factor=(-zoom, zoom))``: factor uniform in [1 - zoom, 1 + zoom], reflect fill.

    Draws from torch's global generator.
    """

    def __init__(self, zoom: float):
        self.zoom = float(zoom)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        factor = float(torch.empty(1).uniform_(1.0 - self.zoom, 1.0 + self.zoom))
        return affine_reflect(image, zoom=factor)

    def __repr__(self) -> str:
        return f"ReflectZoom(zoom={self.zoom}, fill='reflect')"


class AffineFlipCrop:
    """Random rotation and zoom about the centre, random flips, then the centre crop.

    The values and the random draws (torch's global generator, in the same order) of
    torchvision's ``RandomAffine(degrees, scale=..., bilinear, fill=0)``, then
    ``RandomHorizontalFlip``, ``RandomVerticalFlip`` and :class:`CenterCrop`, but
    the affine interpolates the crop's pixels alone instead of the whole frame
    (224 x 224 of 424 x 424: 3.6 times fewer). Hand-written because torchvision's
    affine always renders the full frame; the grid is torchvision's, sliced to the
    crop (flips become reversed grid columns and rows).

    Parameters
    ----------
    degrees : float
        Rotation uniform in [-``degrees``, ``degrees``].
    scale : tuple of float or None
        Zoom factor range, as ``RandomAffine``'s ``scale``; ``None``: no zoom.
    flips : bool
        Random horizontal and vertical flips, each with probability 1/2.
    crop : int or None
        Side of the centre crop; ``None`` keeps the frame.
    """

    def __init__(self, degrees: float, scale: tuple[float, float] | None, flips: bool, crop: int | None):
        self.degrees = float(degrees)
        self.scale = None if scale is None else (float(scale[0]), float(scale[1]))
        self.flips = bool(flips)
        self.crop = None if crop is None else _check_size(crop)

    def _draw(self) -> tuple[float, float, bool, bool]:
        # RandomAffine.make_params draws the angle, then the scale; then each flip draws
        # torch.rand(1) and flips unless it is >= 0.5.
        angle = torch.empty(1).uniform_(-self.degrees, self.degrees).item()
        scale = torch.empty(1).uniform_(*self.scale).item() if self.scale is not None else 1.0
        hflip = vflip = False
        if self.flips:
            hflip = not bool(torch.rand(1) >= 0.5)
            vflip = not bool(torch.rand(1) >= 0.5)
        return angle, scale, hflip, vflip

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        angle, scale, hflip, vflip = self._draw()
        h, w = image.shape[-2:]
        size_h, size_w = (h, w) if self.crop is None else (self.crop, self.crop)
        top, left = (0, 0) if self.crop is None else _crop_offsets(h, w, self.crop)
        # Output pixel -> input pixel about the centre: torchvision's inverse affine
        # matrix without shear or translation.
        rot = math.radians(angle)
        cos, sin = math.cos(rot) / scale, math.sin(rot) / scale
        theta = torch.tensor([[cos, sin, 0.0], [-sin, cos, 0.0]], dtype=torch.float32).reshape(1, 2, 3)
        rows = torch.arange(top, top + size_h)
        cols = torch.arange(left, left + size_w)
        if vflip:
            rows = (h - 1) - rows
        if hflip:
            cols = (w - 1) - cols
        x_full = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w)
        y_full = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h)
        base = torch.empty(1, size_h, size_w, 3)
        base[..., 0].copy_(x_full[cols])
        base[..., 1].copy_(y_full[rows].unsqueeze(-1))
        base[..., 2].fill_(1)
        rescaled = theta.transpose(1, 2).div_(torch.tensor([0.5 * w, 0.5 * h]))
        grid = base.view(1, size_h * size_w, 3).bmm(rescaled).view(1, size_h, size_w, 2)
        batch = image.to(torch.float32).unsqueeze(0)
        out = torch.nn.functional.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # torchvision's fill blend: a sampled mask of ones, x * mask for fill 0.
        ones = torch.ones(1, 1, h, w)
        mask = torch.nn.functional.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out[0].mul_(mask[0])

    def __repr__(self) -> str:
        return f"AffineFlipCrop(degrees={self.degrees}, scale={self.scale}, flips={self.flips}, crop={self.crop})"


def _front(grey: bool, grey_method: str) -> list[Callable]:
    steps: list[Callable] = [ToTensor()]
    if grey:
        steps.append(ToGreyscale(grey_method))
    return steps


def build_eval_transform(crop: int | None = 224, grey: bool = False, grey_method: str = "luminance") -> v2.Compose:
    """The deterministic pre-processing for validation and prediction.

    Parameters
    ----------
    crop : int or None, default 224
        Side of the centre crop (the paper: 224 out of 424); ``None`` keeps the frame.
    grey : bool, default False
        Convert to one grey channel (the Zoobot backbone takes greyscale).
    grey_method : {"luminance", "mean"}, default "luminance"
        See :func:`to_greyscale`.

    Returns
    -------
    torchvision.transforms.v2.Compose
        Callable: (H, W, C) image in [0, 1] -> (C', crop, crop) float32 tensor in
        [0, 1], C' = 1 if ``grey`` else C.
    """
    steps = _front(grey, grey_method)
    if crop is not None:
        steps.append(CenterCrop(crop))
    return v2.Compose(steps)


def build_train_transform(
    crop: int | None = 224,
    grey: bool = False,
    rotation: float = 180.0,
    zoom: float = 0.2,
    flips: bool = True,
    augment_before_crop: bool = True,
    grey_method: str = "luminance",
) -> v2.Compose:
    """The paper's training augmentation (section 2.3) followed by pre-processing.

    Default (``augment_before_crop=True``): rotation uniform in [-``rotation``,
    ``rotation``] degrees and zoom with scale uniform in [1 - ``zoom``, 1 + ``zoom``]
    are one ``RandomAffine`` about the centre of the full frame, then random
    horizontal and vertical flips (each with probability 1/2), then the centre crop,
    computed together over the crop's pixels alone by :class:`AffineFlipCrop` (the
    same values and draws as torchvision's transforms applied to the whole frame).
    The paper applies rotation, flip, zoom in turn; a single affine gives the same
    distribution (an isotropic zoom about the centre commutes with rotations and
    flips, and a flip turns a rotation by theta into one by -theta, which is equally
    likely) with one bilinear interpolation instead of two. ``RandomAffine(scale=...)``
    is chosen over ``RandomZoomOut`` (zooms out only, by padding) and
    ``RandomResizedCrop`` (moves the centre and changes the aspect ratio) because it
    zooms in and out about the centre. Areas brought in from outside the frame are
    filled with 0, but none reaches the crop (see ``augment_before_crop``).

    The paper's order (``augment_before_crop=False``, Figure 2 and Keras' layers):
    the centre crop, then :class:`ReflectRotation`, the flips, and
    :class:`ReflectZoom` (Keras' zoom factor uniform in [1 - ``zoom``, 1 + ``zoom``]),
    each interpolating once and filling by reflection as Keras' ``RandomRotation``
    and ``RandomZoom`` do by default.

    Bilinear values are clamped to [0, 1].

    Parameters
    ----------
    crop : int or None, default 224
        Side of the centre crop; ``None`` keeps the frame.
    grey : bool, default False
        Convert to one grey channel first.
    rotation : float, default 180.0
        Largest rotation in degrees (0 turns rotation off).
    zoom : float, default 0.2
        Largest relative zoom, in [0, 1) (0 turns zoom off).
    flips : bool, default True
        Random horizontal and vertical flips.
    augment_before_crop : bool, default True
        Augment the full frame about its centre, then crop. The paper's Figure 2
        crops first, so that rotating the 224 crop fills its corners (Keras: with
        reflected pixels); rotating the 424 frame and then cropping keeps real sky
        there (a 224 crop reaches 158 px from the centre, 198 px at zoom 0.8, inside
        the 212 px inscribed circle of a 424 frame). ``False`` follows Figure 2 and
        Keras literally: crop, rotate, flip, zoom, with reflect fill.
    grey_method : {"luminance", "mean"}, default "luminance"
        See :func:`to_greyscale`.

    Returns
    -------
    torchvision.transforms.v2.Compose
        Callable: (H, W, C) image in [0, 1] -> (C', crop, crop) float32 tensor in
        [0, 1]. Random draws come from torch's global generator
        (``torch.manual_seed`` makes them repeatable).

    Raises
    ------
    SpiralArmsError
        On a rotation outside [0, 180] degrees or a zoom outside [0, 1).
    """
    if not isinstance(rotation, numbers.Real) or not 0.0 <= float(rotation) <= 180.0:
        raise SpiralArmsError(f"rotation must be in [0, 180] degrees, got {rotation!r}")
    if not isinstance(zoom, numbers.Real) or not 0.0 <= float(zoom) < 1.0:
        raise SpiralArmsError(f"zoom must be in [0, 1), got {zoom!r}")
    flipping: list[Callable] = [v2.RandomHorizontalFlip(p=0.5), v2.RandomVerticalFlip(p=0.5)] if flips else []
    cropping: list[Callable] = [] if crop is None else [CenterCrop(crop)]
    steps = _front(grey, grey_method)
    if augment_before_crop and (rotation > 0 or zoom > 0):
        scale = (1.0 - float(zoom), 1.0 + float(zoom)) if zoom > 0 else None
        steps.append(AffineFlipCrop(float(rotation), scale, flips, crop))
    elif augment_before_crop:
        steps += flipping + cropping
    else:
        steps += cropping
        steps += [ReflectRotation(rotation)] if rotation > 0 else []
        steps += flipping
        steps += [ReflectZoom(zoom)] if zoom > 0 else []
    steps.append(Clamp())
    return v2.Compose(steps)


def tta_views(image: torch.Tensor, n: int = 8) -> torch.Tensor:
    """Test-time augmentation views: the exact rotations by 90 degrees and flips.

    The eight symmetries of the square (rotations by 0, 90, 180, 270 degrees, then the
    same after a horizontal flip) need no interpolation, so every view holds the
    original pixels. Off by default in prediction.

    Parameters
    ----------
    image : torch.Tensor
        (..., C, H, W) with H == W, a single image or a batch.
    n : int, default 8
        Number of views, 1 to 8; view 0 is the image itself.

    Returns
    -------
    torch.Tensor
        (n, ..., C, H, W): the views stacked along a new first dimension.

    Raises
    ------
    SpiralArmsError
        If ``n`` is not in 1..8 or the image is not square.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= 8:
        raise SpiralArmsError(f"tta_views: n must be an integer from 1 to 8, got {n!r}")
    if not isinstance(image, torch.Tensor) or image.ndim < 3 or image.shape[-1] != image.shape[-2]:
        shape = tuple(getattr(image, "shape", ()))
        raise SpiralArmsError(f"tta_views: expected a square (..., C, H, W) tensor, got shape {shape}")
    views = []
    for k in range(n):
        base = image.flip(-1) if k >= 4 else image
        views.append(torch.rot90(base, k % 4, dims=(-2, -1)))
    return torch.stack(views)
