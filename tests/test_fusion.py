"""Batch-norm folding for inference: same outputs, fewer layers, only exact conv -> BN pairs."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from spiralarms.models.backbones import build_classifier
from spiralarms.models.fusion import fold_batch_norms
from spiralarms.predictions import predict


def _randomise_batch_norms(model: nn.Module, seed: int = 0) -> None:
    """Give every batch norm statistics and affine weights far from the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=generator))
                m.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.1)
                m.weight.copy_(torch.randn(n, generator=generator))
                m.bias.copy_(torch.randn(n, generator=generator))


def _count_batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_folding_a_timm_backbone_keeps_its_logits_and_removes_every_batch_norm():
    torch.manual_seed(0)
    model = build_classifier("test_efficientnet", 6, pretrained=False).eval()
    _randomise_batch_norms(model)
    before = _count_batch_norms(model.backbone)
    reference = copy.deepcopy(model)
    x = torch.rand(4, 3, 64, 64)
    assert fold_batch_norms(model) == before > 5
    assert _count_batch_norms(model.backbone) == 0
    with torch.no_grad():
        expected, got = reference(x), model(x)
    assert expected.abs().max() > 0.1  # the check below compares real signals
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


class _Shared(nn.Module):
    """A convolution whose output feeds a batch norm and also a skip connection."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y + self.bn2(self.conv2(y))


def test_only_a_convolution_used_by_its_batch_norm_alone_is_folded():
    model = _Shared().eval()
    _randomise_batch_norms(model, seed=1)
    reference = copy.deepcopy(model)
    x = torch.rand(2, 3, 8, 8)
    assert fold_batch_norms(model) == 1  # conv2 -> bn2; conv's output has three users
    assert isinstance(model.bn, nn.BatchNorm2d) and isinstance(model.bn2, nn.Identity)
    torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


class _Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            x = x * 2
        return self.bn(self.conv(x))


def test_an_untraceable_network_is_left_unchanged():
    model = _Untraceable().eval()
    assert fold_batch_norms(model) == 0
    assert isinstance(model.bn, nn.BatchNorm2d)


def test_a_model_in_training_mode_is_refused():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(_Shared().train())


def test_prediction_with_folding_matches_prediction_without(tiny_run, tiny_galaxies, tmp_path):
    from spiralarms.models.loading import load_model

    loaded = load_model(tiny_run)
    bns = _count_batch_norms(loaded.module.model)
    images = tiny_galaxies / "images"
    folded = predict(loaded, images, tmp_path / "folded.parquet", batch_size=8, progress=False)
    plain = predict(loaded, images, tmp_path / "plain.parquet", batch_size=8, progress=False, fold_batch_norm=False)
    assert folded.n_inputs == plain.n_inputs > 0
    a, b = pd.read_parquet(tmp_path / "folded.parquet"), pd.read_parquet(tmp_path / "plain.parquet")
    cols = [c for c in a.columns if c.startswith("p_")]
    assert np.abs(a[cols].to_numpy() - b[cols].to_numpy()).max() < 1e-4
    assert (a["label"] == b["label"]).mean() > 0.99
    assert _count_batch_norms(loaded.module.model) == bns > 0  # the caller's module is not folded
