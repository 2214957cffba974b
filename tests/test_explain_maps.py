"""Explanation maps: Grad-CAM++ (pytorch-grad-cam), SmoothGrad (captum), feature maps, layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spiralarms.errors import SpiralArmsError
from spiralarms.explain import feature_layers, feature_maps, gradcam_pp, last_conv_stage, smoothgrad
from spiralarms.models.backbones import build_classifier


@pytest.fixture(autouse=True)
def one_thread():
    """Two OpenMP threads on a loaded two-core machine are ~100x slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class QuadrantBackbone(nn.Module):
    """A conv layer whose feature maps are kept only in the top-left quadrant."""

    num_features = 4

    def __init__(self, channels: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, stride=2, padding=1)
        nn.init.constant_(self.conv.weight, 1.0 / (9 * channels))  # local mean brightness
        nn.init.zeros_(self.conv.bias)
        self.act = nn.ReLU()
        self.keep = QuadrantMask()

    def forward_features(self, x):
        return self.keep(self.act(self.conv(x)))


class QuadrantMask(nn.Module):
    def forward(self, x):
        h, w = x.shape[-2:]
        mask = torch.zeros_like(x)
        mask[..., : h // 2, : w // 2] = 1
        return x * mask


class QuadrantNet(nn.Module):
    """Class 0 score = brightness of the top-left quadrant; class 1 = its opposite."""

    def __init__(self, channels: int = 3):
        super().__init__()
        self.backbone = QuadrantBackbone(channels)
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[8.0] * 4, [-8.0] * 4]))
            self.head.bias.copy_(torch.tensor([0.0, 1.0]))

    def forward(self, x):
        return self.head(self.backbone.forward_features(x).mean(dim=(2, 3)))


def quadrant(size: int = 64) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[: size // 2, : size // 2] = True
    return mask


def noisy_images(n: int = 3, channels: int = 3, size: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g)


def energy_in(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return (maps * mask).sum(axis=(1, 2)) / maps.sum(axis=(1, 2))


def snapshot(model: nn.Module):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        {n: p.requires_grad for n, p in model.named_parameters()},
        {n: m.training for n, m in model.named_modules()},
        {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
    )


def assert_unchanged(model: nn.Module, before) -> None:
    state, flags, modes, grads = before
    after_state, after_flags, after_modes, after_grads = snapshot(model)
    assert after_flags == flags
    assert after_modes == modes
    for k, v in state.items():
        assert torch.equal(after_state[k], v), k
    for n, g in grads.items():
        assert (after_grads[n] is None) == (g is None), n
        if g is not None:
            assert torch.equal(after_grads[n], g), n


def assert_valid_maps(maps: np.ndarray, n: int, size: int) -> None:
    assert maps.shape == (n, size, size)
    assert maps.dtype == np.float32
    assert np.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0


# --- where the evidence is -------------------------------------------------------------


def test_toy_model_maps_put_their_energy_where_the_decision_is_made():
    model = QuadrantNet()
    images = noisy_images()
    cams = gradcam_pp(model, images)
    grads = smoothgrad(model, images, samples=8)
    assert_valid_maps(cams, 3, 64)
    assert_valid_maps(grads, 3, 64)
    assert (energy_in(cams, quadrant()) > 0.9).all()  # the quadrant covers 0.25 of the image
    assert (energy_in(grads, quadrant()) > 0.9).all()
    assert last_conv_stage(model, images)[0] == "backbone.keep"


def test_explicit_layer_and_target_are_used():
    model = QuadrantNet()
    images = noisy_images(2)
    by_name = gradcam_pp(model, images, target=0, layer="backbone.keep")
    by_module = gradcam_pp(model, images, target=[0, 0], layer=model.backbone.keep)
    np.testing.assert_allclose(by_name, by_module, atol=1e-6)
    # Class 1's score falls with brightness: no positive gradient, an all-zero map.
    assert gradcam_pp(model, images, target=1, layer="backbone.keep").max() == 0.0


def test_smoothgrad_without_noise_is_the_normalised_input_gradient():
    model = QuadrantNet()
    image = noisy_images(1)
    x = image.clone().requires_grad_(True)
    model(x)[0, 0].backward()
    expected = x.grad.abs().amax(dim=1)[0].numpy()
    expected /= expected.max()
    got = smoothgrad(model, image, target=0, noise=0.0, samples=3)[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_smoothgrad_is_seeded_and_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    model = build_classifier("test_efficientnet", 3, hidden=16, frozen=True, pretrained=False)
    images = noisy_images(2)
    state = torch.random.get_rng_state()
    a = smoothgrad(model, images, samples=4, seed=3)
    b = smoothgrad(model, images, samples=4, seed=3, batch_size=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_allclose(a, b, atol=1e-6)
    c = smoothgrad(model, images, samples=4, seed=4)
    assert not np.allclose(a, c)


# --- real backbones: frozen or fine-tuned, grey or colour ---------------------------------


@pytest.mark.parametrize("grey", [False, True])
@pytest.mark.parametrize("frozen", [True, False])
def test_classifier_maps_leave_the_model_untouched(frozen, grey):
    torch.manual_seed(0)
    model = build_classifier("test_efficientnet", 3, hidden=16, frozen=frozen, grey=grey, pretrained=False)
    model.train()  # explanations run in eval mode and give the mode back
    if not frozen:
        for p in model.parameters():
            p.grad = torch.ones_like(p)  # a caller's pending gradients survive
    before = snapshot(model)
    images = noisy_images(2, channels=1 if grey else 3)
    cams = gradcam_pp(model, images)
    grads = smoothgrad(model, images, samples=4)
    assert_unchanged(model, before)
    assert_valid_maps(cams, 2, 64)
    assert_valid_maps(grads, 2, 64)
    assert (cams.reshape(2, -1).max(axis=1) > 0).all()
    assert grads.reshape(2, -1).max(axis=1) == pytest.approx(1.0)


def test_gradients_reach_a_frozen_backbone_under_no_grad():
    torch.manual_seed(0)
    model = build_classifier("test_efficientnet", 3, hidden=16, frozen=True, pretrained=False).eval()
    images = noisy_images(1)
    with torch.no_grad():  # a caller's no_grad block does not silence the maps
        cams = gradcam_pp(model, images)
        grads = smoothgrad(model, images, samples=2)
    assert cams.max() > 0 and grads.max() > 0


def test_efficientnet_layers_are_the_top_activation_and_three_depths():
    torch.manual_seed(0)
    model = build_classifier("tf_efficientnet_lite0", 3, hidden=16, frozen=True, pretrained=False)
    image = noisy_images(1)[0]
    assert last_conv_stage(model, image)[0] == "backbone.bn2"
    layers = feature_layers(model, image)
    assert list(layers) == ["lower", "middle", "upper"]
    assert layers["lower"] == "backbone.conv_stem"
    assert layers["upper"] == "backbone.conv_head"
    assert layers["middle"].startswith("backbone.blocks.")
    maps = feature_maps(model, image)
    assert list(maps) == list(layers.values())
    shapes = [m.shape for m in maps.values()]
    assert shapes[0] == (32, 32, 32)  # stem: stride 2
    assert shapes[-1] == (1280, 2, 2)  # conv_head: stride 32
    assert shapes[0][1] > shapes[1][1] > shapes[2][1]
    assert all(np.isfinite(m).all() and m.dtype == np.float32 for m in maps.values())


def test_feature_maps_take_module_names_and_squeeze_excitation_is_skipped():
    torch.manual_seed(0)
    model = build_classifier("test_efficientnet", 3, hidden=16, frozen=True, pretrained=False)
    image = noisy_images(1)[0]
    maps = feature_maps(model, image, layers=("upper", "backbone.conv_stem"))
    assert list(maps) == ["backbone.conv_head", "backbone.conv_stem"]
    assert "conv_reduce" not in feature_layers(model, image, ("middle",))["middle"]


# --- validation ---------------------------------------------------------------------------


def test_bad_inputs_are_one_line_errors():
    model = QuadrantNet()
    images = noisy_images(2)
    with pytest.raises(SpiralArmsError, match=r"\[0, 1\]"):
        gradcam_pp(model, images * 255)
    with pytest.raises(SpiralArmsError, match="shape"):
        smoothgrad(model, images[0, 0])
    with pytest.raises(SpiralArmsError, match="class indices"):
        gradcam_pp(model, images, target=5)
    with pytest.raises(SpiralArmsError, match="2 class indices"):
        smoothgrad(model, images, target=[0, 1, 0])
    with pytest.raises(SpiralArmsError, match="no such submodule"):
        gradcam_pp(model, images, layer="backbone.nope")
    with pytest.raises(SpiralArmsError, match="noise"):
        smoothgrad(model, images, noise=-0.1)
    with pytest.raises(SpiralArmsError, match="samples"):
        smoothgrad(model, images, samples=0)
    with pytest.raises(SpiralArmsError, match="one image"):
        feature_maps(model, images)
