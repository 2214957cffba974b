"""Load a trained classifier from wherever it lives, and export it for sharing.

A model is found from any of:

- a training checkpoint (``best.ckpt``, ``last.ckpt``);
- a run folder (its ``checkpoints/best.ckpt``);
- an exported model folder (``model.safetensors`` + ``config.json``), as written by
  :func:`export_model` and as the Hugging Face hub serves it;
- ``hf-hub:owner/name[@revision]``: such a folder on the Hugging Face hub, taken from
  the local cache when it is there (offline), downloaded where there is network.

Everything is read as tensors and plain values: checkpoints with
``torch.load(weights_only=True)``, exported weights with safetensors. A file that
would need arbitrary unpickling is refused, never run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from spiralarms.errors import SpiralArmsError, first_line
from spiralarms.models.card import ModelCard, card_from_legacy, weights_fingerprint
from spiralarms.models.module import ArmClassifierModule
from spiralarms.io.atomic import atomic_dir
from spiralarms.io.run_folder import RunFolder

__all__ = [
    "LoadedModel",
    "load_model",
    "load_classifier",
    "read_checkpoint",
    "card_of_checkpoint",
    "export_model",
    "MODEL_FILE",
    "CONFIG_FILE",
    "HUB_PREFIX",
]

#: Files of an exported model folder (the Hugging Face layout).
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
README_FILE = "README.md"
#: Prefix of a hub model name.
HUB_PREFIX = "hf-hub:"
#: Key of the model description in format-1 checkpoints (spiralarms 0.1).
_LEGACY_KEY = "spiralarms"


@dataclass
class LoadedModel:
    """A trained classifier and what it is.

    Attributes
    ----------
    module : ArmClassifierModule
        In eval mode, on the CPU.
    card : ModelCard
    fingerprint : str
        Digest of the weights and of the card fields that change predictions.
    source : str
        The file or hub name it was read from.
    epoch : int or None
        Training epoch of a checkpoint.
    """

    module: ArmClassifierModule
    card: ModelCard
    fingerprint: str
    source: str
    epoch: int | None = None


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint file onto the CPU, tensors and plain values only.

    Parameters
    ----------
    path : path

    Raises
    ------
    SpiralArmsError
        If the file is missing, is not a checkpoint, or holds Python objects that
        only a full unpickling could rebuild (which can run code: refused).
    """
    path = Path(path)
    if not path.is_file():
        raise SpiralArmsError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        text = first_line(exc)
        if "Unsupported operand" in str(exc):  # bytes that are no pickle at all, not a refused object
            raise SpiralArmsError(f"{path}: not a readable checkpoint: {_why_unreadable(path, exc, 'pickle')}") from None
        if "weights_only" in text or "Unsupported global" in text or "GLOBAL" in text:
            raise SpiralArmsError(
                f"{path}: refused: it holds Python objects beyond tensors and plain values, and "
                "unpickling them could run code; re-save its state_dict and hyper_parameters as plain values"
            ) from None
        raise SpiralArmsError(f"{path}: not a readable checkpoint: {_why_unreadable(path, exc, text)}") from None


def _why_unreadable(path: Path, exc: Exception, text: str) -> str:
    """What a user can act on, where torch's own message is an internal detail.

    Unpickling a file that is not a pickle raises e.g. ``KeyError: '105'`` (the
    first byte read as an opcode), and a truncated zip archive an internal miniz
    message.
    """
    if path.stat().st_size == 0:
        return "the file is empty"
    if isinstance(exc, EOFError):
        return "the file ends early (truncated or not fully copied?)"
    if "zip archive" in text or "central directory" in text:
        return "a damaged zip archive (truncated or not fully copied?)"
    if isinstance(exc, (KeyError, ValueError)) or "magic number" in text or "pickle" in text.lower():
        return "not a PyTorch checkpoint (expected a file written by torch.save or Lightning)"
    return text


def card_of_checkpoint(checkpoint: dict[str, Any], source: str = "checkpoint") -> ModelCard:
    """The model card of a loaded checkpoint (current or format-1 layout).

    Raises
    ------
    SpiralArmsError
        If the checkpoint was not written by spiralarms training.
    """
    if not isinstance(checkpoint, dict):
        raise SpiralArmsError(f"{source}: not a spiralarms checkpoint")
    hparams = checkpoint.get("hyper_parameters") or {}
    if isinstance(hparams, dict) and "card" in hparams:
        return ModelCard.parse(hparams["card"], source=source)
    legacy = checkpoint.get(_LEGACY_KEY)
    if isinstance(legacy, dict):
        return card_from_legacy(legacy, source=source)
    raise SpiralArmsError(f"{source}: not a spiralarms checkpoint (no model card)")


def _module_from(card: ModelCard, state: dict[str, torch.Tensor], source: str) -> ArmClassifierModule:
    """Build the card's network and load its trained weights, exactly."""
    module = ArmClassifierModule(card)
    try:
        module.model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise SpiralArmsError(f"{source}: weights do not fit backbone {card.backbone!r}: {first}") from None
    return module.eval()


def _load_checkpoint(path: Path, given: str) -> LoadedModel:
    checkpoint = read_checkpoint(path)
    card = card_of_checkpoint(checkpoint, source=str(path))
    state = {k[len("model.") :]: v for k, v in checkpoint.get("state_dict", {}).items() if k.startswith("model.")}
    module = _module_from(card, state, str(path))
    epoch = checkpoint.get("epoch")
    return LoadedModel(module, card, weights_fingerprint(state, card), given, None if epoch is None else int(epoch))


def _load_export(folder: Path, given: str) -> LoadedModel:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config = folder / CONFIG_FILE
    try:
        values = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpiralArmsError(f"{config}: not a readable model config ({first_line(exc)})") from None
    card = ModelCard.parse(values.get("card") if isinstance(values, dict) else None, source=str(config))
    try:
        state = load_file(str(folder / MODEL_FILE))
    except (OSError, SafetensorError) as exc:
        raise SpiralArmsError(f"{folder / MODEL_FILE}: not readable safetensors ({first_line(exc)})") from None
    module = _module_from(card, state, str(folder / MODEL_FILE))
    return LoadedModel(module, card, weights_fingerprint(state, card), given)


def _hub_folder(name: str) -> Path:
    """A hub model's files: the local cache first, then (with network) a download."""
    import huggingface_hub
    from huggingface_hub import constants as hf_constants

    repo, _, revision = name.partition("@")
    owner, slash, model = repo.partition("/")
    if not (owner and slash and model) or "/" in model:
        raise SpiralArmsError(f"{HUB_PREFIX}{name}: expected {HUB_PREFIX}owner/name (or owner/name@revision)")
    patterns = [CONFIG_FILE, MODEL_FILE, README_FILE]
    try:
        return Path(
            huggingface_hub.snapshot_download(repo, revision=revision or None, allow_patterns=patterns, local_files_only=True)
        )
    except Exception:  # not cached (LocalEntryNotFoundError and kin)
        pass
    if hf_constants.HF_HUB_OFFLINE:
        raise SpiralArmsError(
            f"{HUB_PREFIX}{name}: not in the Hugging Face cache ({hf_constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE is set; "
            "download it where there is network, or give the exported folder"
        )
    try:
        return Path(huggingface_hub.snapshot_download(repo, revision=revision or None, allow_patterns=patterns, etag_timeout=10))
    except Exception as exc:  # network, proxy and hub errors come in many types
        raise SpiralArmsError(
            f"{HUB_PREFIX}{name}: not in the Hugging Face cache and cannot be downloaded ({first_line(exc)})"
        ) from None


def load_model(source: str | os.PathLike) -> LoadedModel:
    """Load a trained classifier from a checkpoint, run folder, exported folder or the hub.

    Parameters
    ----------
    source : str or path-like
        A ``.ckpt`` file, a run folder, an exported model folder, or
        ``hf-hub:owner/name[@revision]``.

    Returns
    -------
    LoadedModel

    Raises
    ------
    SpiralArmsError
        One line naming the source: missing, not a model, unsafe to load, or weights
        that do not fit the described network.
    """
    given = str(source)
    if given.startswith(HUB_PREFIX):
        folder = _hub_folder(given[len(HUB_PREFIX) :])
        if not (folder / CONFIG_FILE).is_file() or not (folder / MODEL_FILE).is_file():
            raise SpiralArmsError(f"{given}: the hub repository has no {CONFIG_FILE} and {MODEL_FILE}")
        return _load_export(folder, given)
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / CONFIG_FILE).is_file() and (path / MODEL_FILE).is_file():
            return _load_export(path, given)
        best = RunFolder(path).best_checkpoint
        if best.is_file():
            return _load_checkpoint(best, given)
        raise SpiralArmsError(
            f"{path}: neither a run folder (checkpoints/best.ckpt) nor an exported model ({MODEL_FILE}, {CONFIG_FILE})"
        )
    if not path.exists():
        raise SpiralArmsError(f"{path}: no such checkpoint, run folder or model folder")
    return _load_checkpoint(path, given)


def load_classifier(source: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """The bare network and its card as a dict, for code that runs it directly.

    Parameters
    ----------
    source : str or path-like
        As for :func:`load_model`.
    map_location : str or torch.device, default "cpu"

    Returns
    -------
    model : ArmClassifier
        In eval mode on ``map_location``.
    info : dict
        The card's fields (``classes``, ``crop``, ``grey``, ``backbone``, ...) plus
        ``epoch`` and ``checkpoint`` (the source).
    """
    loaded = load_model(source)
    info = {**loaded.card.to_dict(), "epoch": loaded.epoch, "checkpoint": loaded.source}
    return loaded.module.model.to(map_location).eval(), info


def _readme(card: ModelCard, metrics: dict | None, name: str) -> str:
    """A Hugging Face model card (YAML front matter, then Markdown)."""
    lines = [
        "---",
        "library_name: spiralarms",
        "pipeline_tag: image-classification",
        "tags:",
        "- astronomy",
        "- galaxy-zoo",
        "- spiral-arms",
        "- timm",
        "---",
        "",
        f"# {name}: spiral arm number classifier",
        "",
        "Classifies a galaxy cutout by its number of spiral arms (Galaxy Zoo 2 task T11), "
        "trained with [spiralarms](https://pypi.org/project/spiralarms/) following Lee, Soo & Sharoni.",
        "",
        "| field | value |",
        "|---|---|",
        f"| classes | {', '.join(card.classes)} |",
        f"| backbone | `{card.backbone}` ({'frozen' if card.frozen else 'fine-tuned'}; starting weights {card.weights_source}) |",
        f"| input | {'one grey channel' if card.grey else 'RGB'}, centre crop {card.crop or 'none'} px, pixels in [0, 1] |",
        f"| head | global average pooling, dense {card.hidden} ReLU, dense {len(card.classes)} |",
        f"| temperature | {card.temperature:g} |",
        f"| spiralarms | {card.spiralarms_version} |",
    ]
    if card.training is not None:
        lines.append(f"| training data | {card.training.catalog or 'unknown'} ({card.training.n_train} train, {card.training.n_val} validation) |")
    if metrics:
        lines += ["", "## Validation metrics", "", f"Macro F1 {metrics.get('macro_f1', float('nan')):.3f}, accuracy {metrics.get('accuracy', float('nan')):.3f}.", ""]
        lines += ["| class | precision | recall | F1 | support |", "|---|--:|--:|--:|--:|"]
        for cls, row in (metrics.get("per_class") or {}).items():
            lines.append(f"| {cls} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    lines += [
        "",
        "## Use",
        "",
        "```bash",
        "pip install spiralarms",
        f"spiralarms predict hf-hub:OWNER/{name} CUTOUT_FOLDER --out predictions.parquet",
        "```",
        "",
        "```python",
        "import spiralarms",
        f"spiralarms.predict('hf-hub:OWNER/{name}', 'CUTOUT_FOLDER', 'predictions.parquet')",
        "```",
        "",
    ]
    return "\n".join(lines)


def export_model(source: str | os.PathLike, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a trained model as a hub-ready folder.

    The folder holds ``model.safetensors`` (the network's weights), ``config.json``
    (the model card under ``"card"``) and ``README.md`` (a Hugging Face model card
    with the validation metrics when the run has them). Upload it with
    ``huggingface-cli upload OWNER/NAME DIR``; ``spiralarms predict`` reads the
    folder, or ``hf-hub:OWNER/NAME``, unchanged.

    Parameters
    ----------
    source : str or path-like
        A run folder or checkpoint (anything :func:`load_model` takes).
    out_dir : path
        The folder to write; written under a temporary name and renamed when whole.
    overwrite : bool, default False
        Replace an existing exported model there.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    SpiralArmsError
        If ``out_dir`` exists (and ``overwrite`` is off, or it is not an exported model).
    """
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise SpiralArmsError(f"{out_dir}: exists and is not a folder")
        if any(out_dir.iterdir()):
            # Checked first: --overwrite would not help, so the message must not offer it.
            if not (out_dir / CONFIG_FILE).is_file():
                raise SpiralArmsError(f"{out_dir}: exists and is not an exported model folder; give a new or empty folder")
            if not overwrite:
                raise SpiralArmsError(f"{out_dir}: holds an exported model; use --overwrite to replace it")
    loaded = load_model(source)
    metrics = None
    run_dir = Path(source)
    for candidate in (RunFolder(run_dir).metrics, RunFolder(run_dir.parent.parent).metrics):
        if candidate.is_file():
            try:
                metrics = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                metrics = None
            break
    state = {k: v.detach().contiguous() for k, v in loaded.module.model.state_dict().items()}
    config = {"library_name": "spiralarms", "card": loaded.card.to_dict(), "fingerprint": loaded.fingerprint}
    with atomic_dir(out_dir) as tmp:
        save_file(state, str(tmp / MODEL_FILE), metadata={"format": "pt"})
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (tmp / README_FILE).write_text(_readme(loaded.card, metrics, out_dir.name), encoding="utf-8")
    return out_dir
