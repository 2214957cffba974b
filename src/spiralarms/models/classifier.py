"""The paper's classifier: a CNN backbone and its dense head (section 3.4, Figure 4).

Head: global average pooling -> dense hidden layer with ReLU -> dense layer of k
classes; softmax turns the logits into probabilities. Weights are initialised with
Glorot (Xavier) uniform and zero biases, as Keras does by default.

The hidden width defaults to 1024. The paper's text says 1028 units, but its Table 2
parameter counts fit 1024 exactly: timm ``tf_efficientnetv2_m`` without its
classifier plus a 1024-unit head for six classes has 54,468,282 parameters when the
batch-norm running statistics are counted as Keras counts them, the paper's number;
1028 units would give 54,473,430. The width stays a parameter.
"""

from __future__ import annotations

import torch
from torch import nn

#: Hidden width of the head; see the module docstring for why 1024, not 1028.
DEFAULT_HIDDEN = 1024


class ArmClassifierHead(nn.Module):
    """Global average pooling, a dense ReLU layer and a dense output layer.

    Parameters
    ----------
    in_features : int
        Channels of the backbone's last feature map.
    n_classes : int
        Number of arm-number classes (6, or 5 after a merge).
    hidden : int, default 1024
        Width of the hidden dense layer.
    """

    def __init__(self, in_features: int, n_classes: int, hidden: int = DEFAULT_HIDDEN):
        super().__init__()
        if in_features < 1 or n_classes < 2 or hidden < 1:
            raise ValueError(
                f"ArmClassifierHead needs in_features >= 1, n_classes >= 2, hidden >= 1; "
                f"got {in_features}, {n_classes}, {hidden}"
            )
        self.hidden = nn.Linear(in_features, hidden)
        self.output = nn.Linear(hidden, n_classes)
        for layer in (self.hidden, self.output):
            nn.init.xavier_uniform_(layer.weight)  # Keras' glorot_uniform
            nn.init.zeros_(layer.bias)

    @staticmethod
    def pool(feature_maps: torch.Tensor) -> torch.Tensor:
        """Global average pooling of ``(N, C, H, W)`` maps to ``(N, C)`` features."""
        if feature_maps.ndim == 2:  # already pooled (embedding cache)
            return feature_maps
        return feature_maps.mean(dim=(2, 3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, k)`` from feature maps ``(N, C, H, W)`` or pooled ``(N, C)``."""
        return self.output(torch.relu(self.hidden(self.pool(features))))


class InputNormalization(nn.Module):
    """Map images in [0, 1] to what a backbone was trained on: ``(x - mean) / std``.

    Keeping this inside the network lets every loader hand over plain [0, 1] pixels
    (the paper's pre-processing) whatever the backbone.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ArmClassifier(nn.Module):
    """A backbone (feature extractor) with the paper's head.

    Parameters
    ----------
    backbone : nn.Module
        A timm model created with ``num_classes=0``; its ``forward_features``
        returns ``(N, C, H, W)`` feature maps and ``num_features`` gives ``C``.
    n_classes : int
        Number of classes.
    hidden : int, default 1024
        Hidden width of the head.
    frozen : bool, default False
        Freeze the backbone (feature extraction, the paper's B0 model): no gradient
        reaches its weights and its batch-norm statistics stay fixed, even in
        training mode.
    mean, std : tuple of float, optional
        Input normalisation of the backbone, applied to images in [0, 1]. ``None``
        feeds [0, 1] pixels unchanged (Zoobot's convention).
    """

    @property
    def normalization(self) -> tuple[list[float] | None, list[float] | None]:
        """The input normalisation ``(mean, std)`` as lists, or ``(None, None)``."""
        if isinstance(self.normalize, InputNormalization):
            return self.normalize.mean.flatten().tolist(), self.normalize.std.flatten().tolist()
        return None, None

    def __init__(
        self,
        backbone: nn.Module,
        n_classes: int,
        hidden: int = DEFAULT_HIDDEN,
        frozen: bool = False,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.normalize = InputNormalization(mean, std) if mean is not None else nn.Identity()
        self.head = ArmClassifierHead(backbone.num_features, n_classes, hidden)
        self.frozen = frozen
        #: Where the backbone's starting weights came from (set by the factories).
        self.weights_source = "unknown"
        if frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True) -> "ArmClassifier":
        """Set training mode; a frozen backbone stays in eval mode (fixed BN statistics)."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``(N, C)`` of images in [0, 1] (embedding cache input)."""
        return ArmClassifierHead.pool(self.feature_maps(images))

    def feature_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Last backbone feature maps ``(N, C, H, W)`` of images in [0, 1]."""
        return self.backbone.forward_features(self.normalize(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, k)``; apply softmax for the paper's probabilities."""
        return self.head(self.feature_maps(images))

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax class probabilities ``(N, k)``."""
        return torch.softmax(self(images), dim=1)


def count_parameters(model: nn.Module, keras_style: bool = True) -> int:
    """Number of parameters, counting batch-norm running statistics as Keras does.

    Keras lists a batch-norm layer's moving mean and variance as (non-trainable)
    parameters; PyTorch keeps them as buffers. ``keras_style=True`` adds them, which
    is how the paper's Table 2 counts were made.

    Parameters
    ----------
    model : nn.Module
    keras_style : bool, default True
        Add batch-norm ``running_mean`` and ``running_var`` buffers.

    Returns
    -------
    int
    """
    n = sum(p.numel() for p in model.parameters())
    if keras_style:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
                n += module.running_mean.numel() + module.running_var.numel()
    return n
