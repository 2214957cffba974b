"""Centre crop, greyscale, evaluation transform and the paper's training augmentation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from spiralarms.data.transforms import (
    CenterCrop,
    ReflectZoom,
    affine_reflect,
    build_eval_transform,
    build_train_transform,
    center_crop,
    to_greyscale,
    to_tensor,
    tta_views,
)
from spiralarms.errors import SpiralArmsError

SIDE = 424


def centre_marked(side: int = SIDE, crop: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """An image that is 0 outside the central crop and a known pattern inside it."""
    rng = np.random.default_rng(0)
    pattern = rng.uniform(0.2, 1.0, size=(crop, crop, 3)).astype(np.float32)
    image = np.zeros((side, side, 3), dtype=np.float32)
    start = (side - crop) // 2
    image[start : start + crop, start : start + crop] = pattern
    return image, pattern


def radial(side: int = SIDE, sigma: float = 50.0, radius: float | None = None) -> np.ndarray:
    """A centred radially symmetric image: a Gaussian, or a flat disc of ``radius``."""
    c = (side - 1) / 2.0
    yy, xx = np.mgrid[0:side, 0:side]
    r = np.hypot(yy - c, xx - c)
    image = (r <= radius).astype(np.float32) if radius is not None else np.exp(-0.5 * (r / sigma) ** 2)
    return np.repeat(image[:, :, None], 3, axis=2).astype(np.float32)


# ---------------------------------------------------------------- centre crop


def test_center_crop_numpy_takes_the_centre() -> None:
    image, pattern = centre_marked()
    crop = center_crop(image, 224)
    assert crop.shape == (224, 224, 3)
    np.testing.assert_array_equal(crop, pattern)
    assert center_crop(image[:, :, 0], 224).shape == (224, 224)


def test_center_crop_tensor_chw_and_batch() -> None:
    image, pattern = centre_marked()
    chw = torch.from_numpy(image.transpose(2, 0, 1).copy())
    crop = center_crop(chw, 224)
    assert tuple(crop.shape) == (3, 224, 224)
    np.testing.assert_array_equal(crop.numpy().transpose(1, 2, 0), pattern)
    batch = torch.stack([chw, chw])
    assert tuple(center_crop(batch, 100).shape) == (2, 3, 100, 100)


def test_center_crop_odd_margin_follows_torchvision_rounding() -> None:
    image = np.arange(5, dtype=np.float32)[None, :].repeat(5, axis=0)
    # (5 - 2) / 2 = 1.5 rounds to 2 (round half to even), as torchvision does
    np.testing.assert_array_equal(center_crop(image, 2)[0], [2.0, 3.0])
    np.testing.assert_array_equal(center_crop(image, 3)[0], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("size", [425, 0, -3, True, 22.5])
def test_center_crop_refuses_bad_sizes(size) -> None:
    with pytest.raises(SpiralArmsError):
        center_crop(np.zeros((SIDE, SIDE, 3), dtype=np.float32), size)


def test_center_crop_refuses_wrong_dimensions() -> None:
    with pytest.raises(SpiralArmsError):
        center_crop(np.zeros((2, 8, 8, 3)), 4)
    with pytest.raises(SpiralArmsError, match="larger than the image"):
        center_crop(torch.zeros(3, 100, 300), 200)


# ---------------------------------------------------------------- greyscale and tensors


def test_to_greyscale_luminance_and_mean() -> None:
    image = np.zeros((2, 3, 3), dtype=np.float32)
    image[0, 0] = (1, 0, 0)
    image[0, 1] = (0, 1, 0)
    image[0, 2] = (0, 0, 1)
    grey = to_greyscale(image)
    assert grey.shape == (2, 3, 1) and grey.dtype == np.float32
    np.testing.assert_allclose(grey[0, :, 0], [0.299, 0.587, 0.114], atol=1e-3)
    np.testing.assert_allclose(to_greyscale(image, "mean")[0, :, 0], [1 / 3] * 3, atol=1e-6)
    tensor_grey = to_greyscale(to_tensor(image))
    assert tuple(tensor_grey.shape) == (1, 2, 3)
    np.testing.assert_allclose(tensor_grey.numpy()[0], grey[:, :, 0], atol=1e-3)
    single = np.ones((4, 4, 1), dtype=np.float32)
    assert to_greyscale(single) is single
    with pytest.raises(SpiralArmsError, match="method"):
        to_greyscale(image, "average")


def test_to_tensor_layout_and_dtypes() -> None:
    as_uint8 = np.full((5, 6, 3), 255, dtype=np.uint8)
    tensor = to_tensor(as_uint8)
    assert tuple(tensor.shape) == (3, 5, 6) and tensor.dtype == torch.float32
    assert torch.all(tensor == 1.0)
    assert tuple(to_tensor(np.zeros((5, 6), dtype=np.float32)).shape) == (1, 5, 6)
    with pytest.raises(SpiralArmsError, match="dtype"):
        to_tensor(np.zeros((5, 6, 3), dtype=np.int32))


# ---------------------------------------------------------------- evaluation transform


@pytest.mark.parametrize("grey, channels", [(False, 3), (True, 1)])
def test_eval_transform_is_a_deterministic_centre_crop(grey: bool, channels: int) -> None:
    image, pattern = centre_marked()
    transform = build_eval_transform(crop=224, grey=grey)
    out = transform(image)
    assert tuple(out.shape) == (channels, 224, 224) and out.dtype == torch.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    torch.testing.assert_close(out, transform(image), rtol=0, atol=0)
    expected = to_greyscale(pattern) if grey else pattern
    np.testing.assert_allclose(out.numpy().transpose(1, 2, 0), expected, atol=1e-6)


def test_eval_transform_without_crop_keeps_the_frame() -> None:
    assert tuple(build_eval_transform(crop=None)(np.zeros((50, 40, 3), np.float32)).shape) == (3, 50, 40)


# ---------------------------------------------------------------- training augmentation


def test_train_transform_range_shape_and_seeding() -> None:
    image = np.random.default_rng(1).uniform(0, 1, size=(SIDE, SIDE, 3)).astype(np.float32)
    image[0, 0] = 1.0
    transform = build_train_transform()
    torch.manual_seed(0)
    first = transform(image)
    torch.manual_seed(0)
    again = transform(image)
    torch.manual_seed(1)
    other = transform(image)
    assert tuple(first.shape) == (3, 224, 224) and first.dtype == torch.float32
    for out in (first, other):
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.allclose(first, other)


def test_train_transform_grey_has_one_channel() -> None:
    out = build_train_transform(grey=True)(radial())
    assert tuple(out.shape) == (1, 224, 224)


def test_radially_symmetric_image_is_unchanged_by_rotation_and_flips() -> None:
    image = radial(sigma=50.0)
    reference = build_eval_transform()(image)
    transform = build_train_transform(zoom=0.0)
    torch.manual_seed(3)
    for _ in range(10):
        assert float((transform(image) - reference).abs().max()) < 0.005


def test_zoom_scales_the_apparent_size_within_twenty_percent() -> None:
    radius = 60.0
    image = radial(radius=radius)
    transform = build_train_transform(rotation=0.0, zoom=0.2, flips=False)
    base_area = float(build_eval_transform()(image)[0].sum())
    torch.manual_seed(0)
    # apparent size = sqrt(area ratio) of a flat disc
    scales = np.array([np.sqrt(float(transform(image)[0].sum()) / base_area) for _ in range(150)])
    assert np.all(scales >= 0.8 - 0.01) and np.all(scales <= 1.2 + 0.01)
    assert (scales < 0.9).any() and (scales > 1.1).any()  # both zoom out and in, across the range
    assert abs(float(np.mean(scales)) - 1.0) < 0.05  # centred on 1: uniform in [0.8, 1.2]


def test_augmenting_before_the_crop_keeps_real_sky_in_the_corners() -> None:
    # a bright disc on sky 0.5, just inside the crop: cropping first brings it into the
    # rotated corners by reflection (Keras' fill); augmenting the frame first does not
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] - (SIDE - 1) / 2
    image = np.where(np.hypot(yy, xx) < 100, 1.0, 0.5).astype(np.float32)[:, :, None].repeat(3, axis=2)
    before = build_train_transform(augment_before_crop=True, zoom=0.0)
    after = build_train_transform(augment_before_crop=False, zoom=0.0)
    corner = (slice(0, 20), slice(0, 20))
    torch.manual_seed(0)
    assert all(float(before(image)[0][corner].max()) == pytest.approx(0.5, abs=1e-4) for _ in range(10))
    torch.manual_seed(0)
    assert any(float(after(image)[0][corner].max()) > 0.9 for _ in range(10))
    # never the constant 0 that torchvision would fill with
    flat = np.full((SIDE, SIDE, 3), 0.5, dtype=np.float32)
    torch.manual_seed(0)
    assert all(float(after(flat).min()) > 0.49 for _ in range(10))


def test_paper_order_is_crop_rotate_flip_zoom_with_reflect_fill() -> None:
    after = build_train_transform(augment_before_crop=False)
    names = [type(t).__name__ for t in after.transforms]
    assert names == ["ToTensor", "CenterCrop", "ReflectRotation", "RandomHorizontalFlip", "RandomVerticalFlip",
                     "ReflectZoom", "Clamp"]


def test_affine_reflect_mirrors_about_the_last_pixel_edge_as_keras() -> None:
    """Keras' fill_mode="reflect": (d c b a | a b c d | d c b a)."""
    row = torch.tensor([0.0, 1.0, 2.0, 3.0])
    image = row.repeat(4, 1)[None]  # (1, 4, 4), columns a b c d
    # zoom out by 2: output pixels sample the input at -3, -1, 1, 3 half-pixels from the
    # centre, i.e. pixel positions -1.5, 0.5, 2.5, 4.5; -1.5 mirrors to 0.5 and 4.5 to 2.5
    out = affine_reflect(image, zoom=2.0)
    torch.testing.assert_close(out[0, 1], torch.tensor([0.5, 0.5, 2.5, 2.5]))
    # identity and a quarter turn need no interpolation
    torch.testing.assert_close(affine_reflect(image), image)
    turned = affine_reflect(image, angle=90.0)
    assert torch.allclose(turned, torch.rot90(image, 1, dims=(-2, -1)), atol=1e-5) or torch.allclose(
        turned, torch.rot90(image, -1, dims=(-2, -1)), atol=1e-5)
    # a 45-degree turn of a 4x4 crop reaches outside it: filled from the image, not 0
    assert float(affine_reflect(image + 1.0, angle=45.0).min()) >= 1.0 - 1e-5


def test_reflect_zoom_draws_keras_factors() -> None:
    image = radial(radius=60)
    crop = CenterCrop(224)(to_tensor(image))
    base_area = float(crop[0].sum())
    torch.manual_seed(0)
    zoom = ReflectZoom(0.2)
    # zoom factor f samples f times farther out: a disc looks 1/f as large
    sizes = np.array([np.sqrt(float(zoom(crop)[0].sum()) / base_area) for _ in range(100)])
    assert np.all(sizes >= 1 / 1.2 - 0.02) and np.all(sizes <= 1 / 0.8 + 0.02)
    assert (sizes < 0.9).any() and (sizes > 1.1).any()


def test_flips_only_give_the_four_exact_flips() -> None:
    image = np.random.default_rng(2).uniform(0, 1, size=(64, 64, 3)).astype(np.float32)
    transform = build_train_transform(crop=None, rotation=0.0, zoom=0.0, flips=True)
    base = to_tensor(image)
    flips = [base, base.flip(-1), base.flip(-2), base.flip(-1).flip(-2)]
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        out = transform(image)
        matches = [k for k, f in enumerate(flips) if torch.equal(out, f)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == {0, 1, 2, 3}


@pytest.mark.parametrize("crop", [224, 225, 100, None])
@pytest.mark.parametrize("grey", [False, True])
def test_affine_over_the_crop_equals_torchvision_on_the_full_frame(crop, grey) -> None:
    """The default augmentation interpolates the crop alone, yet gives torchvision's
    RandomAffine -> flips -> centre crop values and draws, value for value."""
    from torchvision.transforms import v2

    from spiralarms.data.transforms import Clamp, ToGreyscale, ToTensor

    image = np.random.default_rng(3).uniform(0, 1, size=(SIDE, SIDE, 3)).astype(np.float32)
    reference = v2.Compose(
        [ToTensor(), *([ToGreyscale()] if grey else []),
         v2.RandomAffine(degrees=180.0, scale=(0.8, 1.2), interpolation=v2.InterpolationMode.BILINEAR, fill=0.0),
         v2.RandomHorizontalFlip(p=0.5), v2.RandomVerticalFlip(p=0.5), *([CenterCrop(crop)] if crop else []), Clamp()]
    )
    fast = build_train_transform(crop=crop, grey=grey)
    assert "AffineFlipCrop" in repr(fast)
    for seed in range(12):  # 12 draws cover every flip combination
        torch.manual_seed(seed)
        expected, next_expected = reference(image), torch.rand(1)
        torch.manual_seed(seed)
        got, next_got = fast(image), torch.rand(1)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
        assert torch.equal(next_got, next_expected)  # the same number of draws from the generator


def test_affine_over_the_crop_refuses_a_crop_larger_than_the_image() -> None:
    with pytest.raises(SpiralArmsError, match="larger than the image"):
        build_train_transform(crop=100)(np.zeros((64, 64, 3), np.float32))


@pytest.mark.parametrize("kwargs", [{"zoom": 1.0}, {"zoom": -0.1}, {"rotation": -5.0}, {"rotation": 200.0}])
def test_train_transform_refuses_bad_parameters(kwargs) -> None:
    with pytest.raises(SpiralArmsError):
        build_train_transform(**kwargs)


def test_transforms_pickle_for_dataloader_workers() -> None:
    image = radial()
    for transform in (build_eval_transform(grey=True), build_train_transform()):
        clone = pickle.loads(pickle.dumps(transform))
        torch.manual_seed(5)
        a = clone(image)
        torch.manual_seed(5)
        b = transform(image)
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------- test-time augmentation


def test_tta_views_are_the_eight_exact_symmetries() -> None:
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    views = tta_views(image, 8)
    assert tuple(views.shape) == (8, 3, 16, 16)
    torch.testing.assert_close(views[0], image, rtol=0, atol=0)
    flat = views.reshape(8, -1)
    assert len({tuple(v.tolist()) for v in flat}) == 8  # all distinct
    for view in views:  # same pixels, moved
        torch.testing.assert_close(view.flatten().sort().values, image.flatten().sort().values, rtol=0, atol=0)
    assert tuple(tta_views(torch.stack([image, image]), 2).shape) == (2, 2, 3, 16, 16)


@pytest.mark.parametrize("n", [0, 9, True])
def test_tta_views_refuses_bad_counts(n) -> None:
    with pytest.raises(SpiralArmsError):
        tta_views(torch.zeros(1, 4, 4), n)


def test_tta_views_refuses_non_square() -> None:
    with pytest.raises(SpiralArmsError, match="square"):
        tta_views(torch.zeros(1, 4, 5))
