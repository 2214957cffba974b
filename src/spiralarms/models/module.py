"""The LightningModule: the paper's loss, optimiser and validation metrics, and prediction.

Categorical cross-entropy on the logits, Adam at a constant learning rate (no
schedule; Keras' default epsilon 1e-7, as the paper's Keras code had), and per epoch
``train_loss``, ``val_loss``, ``val_accuracy`` and ``val_macro_f1``.

A batch is ``(x, y)`` where ``x`` is either images ``(N, C, H, W)`` (the full model
runs) or cached pooled features ``(N, C)`` (only the head runs,
:mod:`spiralarms.training.embedding_cache`). A frozen backbone has no trainable
parameters, so the optimiser holds the head alone and both paths train the same
weights.

The module is built from its :class:`~spiralarms.models.card.ModelCard`, which Lightning
saves as its hyperparameters: ``ArmClassifierModule.load_from_checkpoint(path)``
rebuilds the network from the checkpoint alone (random initialisation, then the
trained weights; nothing is downloaded), and loads tensors only
(``weights_only=True``). :meth:`ArmClassifierModule.predict_step` is the one place
where spiralarms turns pixels into probabilities; every command predicts through it
(:mod:`spiralarms.predictions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from spiralarms import __version__
from spiralarms.data.transforms import tta_views
from spiralarms.errors import SpiralArmsError
from spiralarms.models.card import ModelCard
from spiralarms.models.classifier import ArmClassifier
from spiralarms.models.losses import LOSSES, classification_loss

__all__ = ["ArmClassifierModule", "ADAM_EPS"]

#: Adam epsilon of Keras (the paper's framework); PyTorch's default is 1e-8.
ADAM_EPS = 1e-7

# uint8 pixels become [0, 1] floats with this float32 factor, the one image loading
# uses (spiralarms.data.images.load_image), so both paths give identical inputs.
_SCALE = 1.0 / 255.0


class ArmClassifierModule(L.LightningModule):
    """Train an :class:`~spiralarms.models.classifier.ArmClassifier`, and predict with it.

    Parameters
    ----------
    card : ModelCard or mapping
        What the model is (classes, backbone, head width, crop, grey, normalisation);
        saved as the checkpoint's hyperparameters.
    lr : float, default 1e-4
        Constant Adam learning rate.
    loss : {"cross_entropy", "weighted", "focal"}, default "cross_entropy"
        Training loss (:mod:`spiralarms.models.losses`); the paper's is
        cross-entropy. Targets may be class indices or class probabilities (soft
        labels from the vote fractions).
    class_weights : sequence of float, optional
        Per-class weights of the ``"weighted"`` and ``"focal"`` losses.
    focal_gamma : float, default 2.0
    model : ArmClassifier, optional
        An already built network (training builds it with pretrained weights). By
        default the network is built from ``card`` with random weights, to be
        overwritten by a checkpoint's state dict (:meth:`load_from_checkpoint`).

    Attributes
    ----------
    card : ModelCard
    classes : tuple of str
    tta : int
        Test-time augmentation views used by :meth:`predict_step` (1 = off).
    channels_last : bool
        Feed images to the network in channels-last memory layout (faster
        convolutions on CPUs and tensor cores).
    validation_probabilities : torch.Tensor or None
        Softmax outputs ``(N, k)`` of the last complete validation epoch (this
        process's share under DDP), in loader order.
    validation_targets : torch.Tensor or None
        The matching class indices ``(N,)``.
    """

    def __init__(
        self,
        card: ModelCard | Mapping[str, Any],
        lr: float = 1e-4,
        model: ArmClassifier | None = None,
        loss: str = "cross_entropy",
        class_weights: Sequence[float] | None = None,
        focal_gamma: float = 2.0,
    ):
        super().__init__()
        self.card = ModelCard.parse(card)
        if model is None:
            from spiralarms.models.backbones import build_from_card

            model = build_from_card(self.card)
        if model.head.output.out_features != len(self.card.classes):
            raise SpiralArmsError(
                f"model has {model.head.output.out_features} outputs for {len(self.card.classes)} classes"
            )
        self.model = model
        self.classes = tuple(self.card.classes)
        self.lr = float(lr)
        self.tta = 1
        self.channels_last = False
        self.static_batch: int | None = None
        if loss not in LOSSES:
            raise SpiralArmsError(f"train.loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if class_weights is not None and len(class_weights) != len(self.classes):
            raise SpiralArmsError(f"{len(class_weights)} class weights for {len(self.classes)} classes")
        self.loss_name, self.focal_gamma = loss, float(focal_gamma)
        weights = torch.tensor(list(class_weights), dtype=torch.float32) if class_weights is not None else None
        self.register_buffer("class_weights", weights, persistent=False)
        self.save_hyperparameters(
            {"card": self.card.to_dict(), "lr": self.lr, "loss": loss,
             "class_weights": None if class_weights is None else [float(w) for w in class_weights],
             "focal_gamma": self.focal_gamma}
        )
        n = len(self.classes)
        self.val_accuracy = MulticlassAccuracy(num_classes=n, average="micro")
        self.val_macro_f1 = MulticlassF1Score(num_classes=n, average="macro")
        self.validation_probabilities: torch.Tensor | None = None
        self.validation_targets: torch.Tensor | None = None
        self._val_probs: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    @classmethod
    def from_model(
        cls, model: ArmClassifier, classes: Sequence[str], lr: float = 1e-4, *, loss: str = "cross_entropy",
        class_weights: Sequence[float] | None = None, focal_gamma: float = 2.0, **card_fields: Any
    ) -> "ArmClassifierModule":
        """Wrap a built network, describing it in a card.

        Parameters
        ----------
        model : ArmClassifier
        classes : sequence of str
        lr : float, default 1e-4
        **card_fields
            Further :class:`ModelCard` fields (``backbone``, ``crop``, ``grey``, ...);
            ``hidden``, ``frozen``, the normalisation and the weight source are read
            from ``model``.
        """
        mean, std = model.normalization
        fields = {
            "backbone": "unknown",
            "weights_source": model.weights_source,
            "spiralarms_version": __version__,
            "mean": mean,
            "std": std,
            **card_fields,
            "classes": [str(c) for c in classes],
            "hidden": int(model.head.hidden.out_features),
            "frozen": bool(model.frozen),
        }
        return cls(ModelCard.parse(fields), lr=lr, model=model, loss=loss, class_weights=class_weights,
                   focal_gamma=focal_gamma)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=None, **kwargs):
        """Rebuild a trained module from a checkpoint: tensors and plain values only.

        Lightning's loader, always with ``weights_only=True``: a file that needs
        unpickling of arbitrary objects is refused instead of run.
        """
        kwargs.pop("weights_only", None)
        return super().load_from_checkpoint(
            checkpoint_path,
            map_location=map_location if map_location is not None else "cpu",
            hparams_file=hparams_file,
            strict=strict,
            weights_only=True,
            **kwargs,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from images ``(N, C, H, W)`` or cached pooled features ``(N, C)``."""
        return self.model.head(x) if x.ndim == 2 else self.model(x)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return classification_loss(logits, y, self.loss_name, weight=self.class_weights, gamma=self.focal_gamma)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch[0], batch[1]
        loss = self._loss(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_probs, self._val_targets = [], []

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = self._loss(logits, y)
        y = y.argmax(dim=1) if y.ndim == 2 else y
        preds = logits.argmax(dim=1)
        self.val_accuracy.update(preds, y)
        self.val_macro_f1.update(preds, y)
        self.log("val_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log("val_accuracy", self.val_accuracy, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val_macro_f1", self.val_macro_f1, on_step=False, on_epoch=True)
        self._val_probs.append(torch.softmax(logits.detach().float(), dim=1).cpu())
        self._val_targets.append(y.detach().cpu())

    def on_validation_epoch_end(self) -> None:
        if self.trainer is not None and self.trainer.sanity_checking:
            return
        if self._val_probs:
            self.validation_probabilities = torch.cat(self._val_probs)
            self.validation_targets = torch.cat(self._val_targets)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.parameters() if p.requires_grad]
        # PyTorch's fused kernel: the same update to float rounding, one pass over each
        # tensor (about 3x faster per step than the default loop for the dense head on
        # a CPU, where the default is neither foreach nor fused).
        fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        return torch.optim.Adam(params, lr=self.lr, eps=ADAM_EPS, fused=fused or None)

    def configure_prediction(
        self,
        *,
        tta: int = 1,
        channels_last: bool = False,
        fold_batch_norm: bool = False,
        compile: bool = False,
        batch_size: int | None = None,
    ) -> "ArmClassifierModule":
        """Set how :meth:`predict_step` runs; return ``self``.

        Parameters
        ----------
        tta : int, default 1
            Average the probabilities over this many exact rotations and flips of
            each image (1 = off, the paper's setting; up to 8), run as one batch.
        channels_last : bool, default False
            Convert the network and its inputs to channels-last memory layout.
        fold_batch_norm : bool, default False
            Fold the backbone's batch norms into the convolutions before them
            (:func:`~spiralarms.models.fusion.fold_batch_norms`): same probabilities
            to float rounding, faster. The network is changed in place and no longer
            trains as before; use it on a module loaded for prediction.
        compile : bool, default False
            ``torch.compile`` the network (after folding and the layout change).
        batch_size : int, optional
            With ``compile``: survey batches (:meth:`predict_step`) smaller than this
            (the last one, or one with unreadable rows) are padded to it with blank
            images whose outputs are dropped, so one compiled graph serves every batch
            instead of a recompilation for each new size.
        """
        if isinstance(tta, bool) or not isinstance(tta, int) or not 1 <= tta <= 8:
            raise SpiralArmsError(f"tta must be an integer from 1 to 8, got {tta!r}")
        self.tta = tta
        self.channels_last = bool(channels_last)
        if fold_batch_norm:
            from spiralarms.models.fusion import fold_batch_norms

            self.eval()
            fold_batch_norms(self.model)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
            raise SpiralArmsError(f"batch_size must be a positive integer, got {batch_size!r}")
        if compile:
            self.model = torch.compile(self.model)
        self.static_batch = batch_size if compile else None
        return self

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, k)`` (float32) for images or pooled features.

        Images may be uint8 (scaled by 1/255 here, on the device) or float in [0, 1].
        The card's temperature divides the logits; with :attr:`tta` > 1 the
        probabilities of the views are averaged.
        """
        if x.ndim == 2:  # cached pooled features
            return torch.softmax(self.model.head(x).float() / self.card.temperature, dim=1)
        if x.dtype == torch.uint8:
            x = x.float() * _SCALE
        n = len(x)
        if self.tta > 1:
            x = tta_views(x, self.tta).flatten(0, 1)  # (tta * N, C, H, W): one forward pass
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        probs = torch.softmax(self.model(x).float() / self.card.temperature, dim=1)
        return probs.view(-1, n, probs.shape[-1]).mean(0) if self.tta > 1 else probs

    def predict_step(self, batch, batch_idx: int = 0, dataloader_idx: int = 0):
        """Probabilities of one batch.

        ``batch`` is either ``(x, ...)`` from a training-style loader (returns the
        ``(N, k)`` probabilities), or a survey batch from
        :mod:`spiralarms.predictions` (a dict with ``images`` of the readable rows,
        ``index``, ``ok`` and ``error`` per row), for which it returns the dict with
        ``probs`` ``(n, k)`` added: NaN in rows that could not be read, which never
        reach the network.
        """
        if not isinstance(batch, Mapping):
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            return self.predict_proba(x)
        ok = batch["ok"]
        probs = torch.full((len(ok), len(self.classes)), float("nan"), dtype=torch.float32, device=ok.device)
        images = batch["images"]
        n = len(images)
        if n:
            if self.static_batch is not None and n < self.static_batch:
                blank = images.new_zeros((self.static_batch - n, *images.shape[1:]))
                images = torch.cat([images, blank])
            probs[ok] = self.predict_proba(images)[:n]
        return {"index": batch["index"], "probs": probs, "error": batch["error"]}
