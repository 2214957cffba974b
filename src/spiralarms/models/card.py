"""The model card: everything prediction needs to know about a trained classifier.

A :class:`ModelCard` travels with the weights, the way timm's ``pretrained_cfg``
travels with a timm model: in every training checkpoint (as the LightningModule's
saved hyperparameters), and as ``config.json`` in an exported model folder
(:func:`spiralarms.predictions.export_model`). A caller never restates the classes,
the crop, the greyscale setting or the input normalisation: prediction reads them
from the card.

The card is a validated pydantic model; it is stored as plain JSON types only, so a
checkpoint that holds it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spiralarms.errors import SpiralArmsError

__all__ = ["ModelCard", "TrainingSummary", "CARD_FORMAT", "card_from_legacy", "weights_fingerprint"]

#: Version of the card's layout.
CARD_FORMAT = 2


class TrainingSummary(BaseModel):
    """Where a model's training data came from.

    Attributes
    ----------
    catalog : str or None
        The training catalogue or prepared store.
    n_train, n_val : int
        Galaxies in the training and validation sets.
    class_counts : dict
        ``{"train": {class: n}, "val": {class: n}}``.
    config_hash : str or None
        Digest of the resolved training configuration.
    """

    model_config = ConfigDict(extra="forbid")

    catalog: str | None = None
    n_train: int = 0
    n_val: int = 0
    class_counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    config_hash: str | None = None


class ModelCard(BaseModel):
    """What a trained arm-number classifier is and how to feed it.

    Attributes
    ----------
    classes : list of str
        Class names in the order of the model's outputs (``1``, ``2``, ... or merged).
    backbone : str
        Backbone name (:func:`spiralarms.models.backbones.list_backbones` or timm).
    weights_source : str
        Where the backbone's starting weights came from (``hf-hub:...``,
        ``package:...``, ``file:...``, ``random``); the trained weights are in the
        checkpoint itself.
    hidden : int
        Width of the head's hidden layer.
    frozen : bool
        Whether the backbone was frozen in training.
    grey : bool
        One grey channel in (luminance of the RGB cutout) instead of three.
    grey_method : {"luminance", "mean"}
        How colour becomes grey.
    crop : int or None
        Side of the centre crop the model was trained on (``None``: the whole frame).
    mean, std : list of float or None
        Input normalisation inside the network, applied to pixels in [0, 1].
    merge : str or None
        The class merge of the training labels.
    temperature : float
        Softmax temperature applied to the logits at prediction (1 = none).
    training : TrainingSummary or None
    spiralarms_version : str
    created : str
        ISO 8601 time of writing.
    """

    model_config = ConfigDict(extra="forbid")

    format: int = CARD_FORMAT
    classes: list[str]
    backbone: str
    weights_source: str = "unknown"
    hidden: int = Field(1024, ge=1)
    frozen: bool = False
    grey: bool = False
    grey_method: str = "luminance"
    crop: int | None = Field(224, ge=1)
    mean: list[float] | None = None
    std: list[float] | None = None
    merge: str | None = None
    temperature: float = Field(1.0, gt=0)
    training: TrainingSummary | None = None
    spiralarms_version: str = "unknown"
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @field_validator("classes", mode="before")
    @classmethod
    def _class_names(cls, value: Any) -> list[str]:
        names = [str(v) for v in value]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(f"needs at least two distinct class names, got {names}")
        return names

    @field_validator("grey_method")
    @classmethod
    def _grey_method(cls, value: str) -> str:
        if value not in ("luminance", "mean"):
            raise ValueError(f"must be 'luminance' or 'mean', got {value!r}")
        return value

    @classmethod
    def parse(cls, values: Mapping[str, Any], source: str = "model card") -> "ModelCard":
        """Validate a mapping (from a checkpoint or ``config.json``) into a card.

        Raises
        ------
        SpiralArmsError
            One line naming ``source`` and the first bad field.
        """
        if isinstance(values, ModelCard):
            return values
        if not isinstance(values, Mapping):
            raise SpiralArmsError(f"{source}: the model card is not a mapping")
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "card"
            raise SpiralArmsError(f"{source}: model card field {where!r}: {error['msg']}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (for checkpoints and ``config.json``)."""
        return self.model_dump(mode="json")

    def prediction_settings(self) -> dict[str, Any]:
        """The fields that change what a prediction gives for the same weights."""
        return {
            "classes": list(self.classes),
            "crop": self.crop,
            "grey": self.grey,
            "grey_method": self.grey_method,
            "mean": self.mean,
            "std": self.std,
            "temperature": self.temperature,
        }


def card_from_legacy(info: Mapping[str, Any], source: str = "checkpoint") -> ModelCard:
    """A card from the model description of format-1 checkpoints (spiralarms 0.1).

    Those stored ``backbone``, ``classes``, ``hidden``, ``frozen``, ``grey``,
    ``crop``, ``merge``, ``weights`` and ``spiralarms_version`` under the
    ``"spiralarms"`` key; the normalisation came from the backbone registry.
    """
    from spiralarms.models.backbones import backbone_normalization

    for key in ("backbone", "classes", "hidden", "frozen", "grey", "crop"):
        if key not in info:
            raise SpiralArmsError(f"{source}: checkpoint description lacks {key!r}")
    mean, std = backbone_normalization(str(info["backbone"]), grey=bool(info["grey"]))
    weights = info.get("weights")
    return ModelCard.parse(
        {
            "classes": [str(c) for c in info["classes"]],
            "backbone": str(info["backbone"]),
            "weights_source": f"file:{weights}" if weights else "unknown",
            "hidden": int(info["hidden"]),
            "frozen": bool(info["frozen"]),
            "grey": bool(info["grey"]),
            "crop": info["crop"],
            "mean": mean,
            "std": std,
            "merge": info.get("merge"),
            "training": {"config_hash": info.get("config_hash")},
            "spiralarms_version": str(info.get("spiralarms_version", "unknown")),
        },
        source=source,
    )


def weights_fingerprint(state_dict: Mapping[str, torch.Tensor], card: ModelCard | None = None) -> str:
    """A digest of a model's weights (and of the card fields that change its outputs).

    The same weights give the same digest whether they were read from a Lightning
    checkpoint or an exported ``model.safetensors``, so a resumed prediction can tell
    whether it runs the same model.

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
    card : ModelCard, optional
        Its :meth:`ModelCard.prediction_settings` are hashed too.

    Returns
    -------
    str
        16 hex digits of SHA-256.
    """
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    if card is not None:
        import json

        digest.update(json.dumps(card.prediction_settings(), sort_keys=True).encode())
    return digest.hexdigest()[:16]
