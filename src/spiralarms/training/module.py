"""The LightningModule: the paper's loss, optimiser and validation metrics.

Categorical cross-entropy on the logits, Adam at a constant learning rate (no
schedule; Keras' default epsilon 1e-7, as the paper's Keras code had), and per epoch
``train_loss``, ``val_loss``, ``val_accuracy`` and ``val_macro_f1``.

A batch is ``(x, y)`` where ``x`` is either images ``(N, C, H, W)`` (the full model
runs) or cached pooled features ``(N, C)`` (only the head runs,
:mod:`spiralarms.training.embedding_cache`). A frozen backbone has no trainable
parameters, so the optimiser holds the head alone and both paths train the same
weights.

Checkpoints are self-describing: ``on_save_checkpoint`` stores the class names and
the model description under the ``"spiralarms"`` key, which
:func:`spiralarms.training.checkpoint.load_classifier` reads to rebuild the network
without the experiment configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from spiralarms.models.classifier import ArmClassifier

__all__ = ["ArmClassifierModule", "CHECKPOINT_KEY", "CHECKPOINT_FORMAT", "ADAM_EPS"]

#: Key of the model description inside a Lightning checkpoint.
CHECKPOINT_KEY = "spiralarms"
#: Version of that description.
CHECKPOINT_FORMAT = 1
#: Adam epsilon of Keras (the paper's framework); PyTorch's default is 1e-8.
ADAM_EPS = 1e-7


class ArmClassifierModule(L.LightningModule):
    """Train an :class:`~spiralarms.models.classifier.ArmClassifier`.

    Parameters
    ----------
    model : ArmClassifier
    classes : sequence of str
        Class names, in the order of the model's outputs.
    lr : float, default 1e-4
        Constant Adam learning rate.
    model_info : mapping, optional
        How to rebuild the model (``backbone``, ``grey``, ``crop``, ``hidden``,
        ``frozen``, ...), stored in every checkpoint with ``classes`` and
        ``n_classes``.

    Attributes
    ----------
    validation_probabilities : torch.Tensor or None
        Softmax outputs ``(N, k)`` of the last complete validation epoch (this
        process's share under DDP), in loader order.
    validation_targets : torch.Tensor or None
        The matching class indices ``(N,)``.
    """

    def __init__(
        self,
        model: ArmClassifier,
        classes: Sequence[str],
        lr: float = 1e-4,
        model_info: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.model = model
        self.classes = tuple(str(c) for c in classes)
        self.lr = float(lr)
        self.model_info = dict(model_info or {})
        self.save_hyperparameters({"classes": list(self.classes), "lr": self.lr, "model_info": self.model_info})
        n = len(self.classes)
        self.val_accuracy = MulticlassAccuracy(num_classes=n, average="micro")
        self.val_macro_f1 = MulticlassF1Score(num_classes=n, average="macro")
        self.validation_probabilities: torch.Tensor | None = None
        self.validation_targets: torch.Tensor | None = None
        self._val_probs: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from images ``(N, C, H, W)`` or cached pooled features ``(N, C)``."""
        return self.model.head(x) if x.ndim == 2 else self.model(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch[0], batch[1]
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_probs, self._val_targets = [], []

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = F.cross_entropy(logits, y)
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
        return torch.optim.Adam(params, lr=self.lr, eps=ADAM_EPS)

    def describe(self) -> dict[str, Any]:
        """What a checkpoint stores under ``"spiralarms"``: enough to rebuild the model."""
        return {
            **self.model_info,
            "format": CHECKPOINT_FORMAT,
            "classes": list(self.classes),
            "n_classes": len(self.classes),
            "hidden": int(self.model.head.hidden.out_features),
            "frozen": bool(self.model.frozen),
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = self.describe()
