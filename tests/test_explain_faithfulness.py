"""Faithfulness measures: mask energy fractions and deletion curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_explain_maps import QuadrantNet, assert_unchanged, noisy_images, snapshot

from spiralarms.errors import SpiralArmsError
from spiralarms.explain import deletion_curve, gradcam_pp, mask_energy_fraction, smoothgrad
from spiralarms.explain.faithfulness import blurred


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- mask energy fraction --------------------------------------------------------------


def test_mask_energy_fraction_on_a_hand_made_map():
    heat = np.ones((4, 4))
    heat[:2, :2] = 3.0  # 12 of the total 24 inside the top-left 2x2
    mask = np.zeros((4, 4), dtype=bool)
    mask[:2, :2] = True
    assert mask_energy_fraction(heat, mask) == pytest.approx(0.5)
    assert mask_energy_fraction(heat, ~mask) == pytest.approx(0.5)
    assert mask_energy_fraction(heat, mask.astype(int)) == pytest.approx(0.5)  # 0/1 accepted
    uniform = np.full((4, 4), 0.7)
    assert mask_energy_fraction(uniform, mask) == pytest.approx(mask.mean())  # chance level


def test_mask_energy_fraction_on_stacks():
    maps = np.zeros((3, 4, 4))
    maps[0, 0, 0] = 1.0  # all inside
    maps[1, 3, 3] = 1.0  # all outside
    mask = np.zeros((4, 4), dtype=bool)
    mask[:2, :2] = True
    out = mask_energy_fraction(maps, mask)
    assert out.shape == (3,)
    assert out[0] == 1.0 and out[1] == 0.0 and np.isnan(out[2])  # an empty map has no fraction
    per_map = np.stack([mask, ~mask, mask])
    np.testing.assert_array_equal(mask_energy_fraction(maps, per_map)[:2], [1.0, 1.0])


def test_mask_energy_fraction_rejects_bad_input():
    mask = np.ones((4, 4), dtype=bool)
    with pytest.raises(SpiralArmsError, match="does not fit"):
        mask_energy_fraction(np.ones((5, 5)), mask)
    with pytest.raises(SpiralArmsError, match="non-negative"):
        mask_energy_fraction(-np.ones((4, 4)), mask)
    with pytest.raises(SpiralArmsError, match="boolean"):
        mask_energy_fraction(np.ones((4, 4)), np.full((4, 4), 0.5))
    with pytest.raises(SpiralArmsError, match=r"\(H, W\)"):
        mask_energy_fraction(np.ones(4), mask)


# --- deletion curves ---------------------------------------------------------------------


def test_deleting_salient_pixels_first_beats_a_random_order_on_the_toy_model():
    model = QuadrantNet()
    images = noisy_images(2)
    cams = gradcam_pp(model, images)
    grads = smoothgrad(model, images, samples=4)
    before = snapshot(model)
    for i in range(2):
        for saliency in (cams[i], grads[i]):
            salient = deletion_curve(model, images[i], saliency, baseline="sky", steps=20)
            chance = deletion_curve(model, images[i], None, baseline="sky", steps=20, seed=i)
            assert salient.order == "salient" and chance.order == "random"
            assert salient.fraction.shape == salient.probability.shape == (21,)
            assert salient.fraction[0] == 0.0 and salient.fraction[-1] == 1.0
            # The toy's class-0 score only grows with brightness: removing light only lowers it.
            assert (np.diff(salient.probability) <= 1e-6).all()
            assert salient.probability[-1] == pytest.approx(chance.probability[-1])
            assert salient.auc < chance.auc - 0.1
    assert_unchanged(model, before)


def test_deletion_curve_starts_at_the_image_and_ends_at_the_baseline():
    model = QuadrantNet()
    image = noisy_images(1)[0]
    heat = np.random.default_rng(0).random((64, 64))
    curve = deletion_curve(model, image, heat, baseline="blur", blur_sigma=4.0, steps=5)
    with torch.no_grad():
        start = torch.softmax(model(image[None]), dim=1)[0, curve.target].item()
        end = torch.softmax(model(blurred(image, 4.0)[None]), dim=1)[0, curve.target].item()
    assert curve.target == 0  # the predicted class by default
    assert curve.probability[0] == pytest.approx(start, abs=1e-6)
    assert curve.probability[-1] == pytest.approx(end, abs=1e-6)
    np.testing.assert_allclose(curve.fraction, np.linspace(0, 1, 6), atol=1 / 64**2)  # whole pixels
    p, f = curve.probability, curve.fraction
    assert curve.auc == pytest.approx(sum((p[j] + p[j + 1]) / 2 * (f[j + 1] - f[j]) for j in range(5)))
    other = deletion_curve(model, image, heat, target=1, baseline="blur", steps=5)
    assert other.target == 1


def test_random_order_is_seeded():
    model = QuadrantNet()
    image = noisy_images(1)[0]
    a = deletion_curve(model, image, None, baseline="sky", steps=8, seed=1)
    b = deletion_curve(model, image, None, baseline="sky", steps=8, seed=1, batch_size=3)
    np.testing.assert_allclose(a.probability, b.probability, atol=1e-6)
    # Another seed is another order: a fixed order, whatever the seed, fails here.
    c = deletion_curve(model, image, None, baseline="sky", steps=8, seed=2)
    assert np.abs(a.probability[1:-1] - c.probability[1:-1]).max() > 1e-4


def test_deletion_curve_rejects_bad_input():
    model = QuadrantNet()
    image = noisy_images(1)[0]
    with pytest.raises(SpiralArmsError, match="baseline"):
        deletion_curve(model, image, None, baseline="grey")
    with pytest.raises(SpiralArmsError, match="does not fit"):
        deletion_curve(model, image, np.ones((8, 8)))
    with pytest.raises(SpiralArmsError, match="steps"):
        deletion_curve(model, image, None, steps=0)
    with pytest.raises(SpiralArmsError, match="one image"):
        deletion_curve(model, noisy_images(2), None)
