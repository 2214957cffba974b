"""Answers to class imbalance and label noise beyond the paper's, as training options.

The paper answers imbalance by down-sampling (``data.cap``) and trains on the argmax
of the vote fractions. ``train.loss``, ``train.sampler`` and ``train.soft_labels``
keep every galaxy instead:

- ``loss: weighted``: cross-entropy with class weights ``n / (k n_c)`` from the
  training counts (:func:`~spiralarms.models.losses.class_weights_from_counts`);
- ``loss: focal``: focal loss, ``train.focal_gamma``;
- ``sampler: balanced``: each epoch draws classes equally often, with replacement;
- ``soft_labels: true``: cross-entropy against the T11 vote fractions.

Validation always uses the hard labels, so every recipe is scored on the same
galaxies and the same targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["SoftTargets"]


class SoftTargets(Dataset):
    """Training items whose targets are vote fractions instead of class indices.

    Wraps a training dataset of ``(input, label)`` items (images or cached
    features); ``labels`` (the hard labels, for the balanced sampler) and
    ``set_epoch`` pass through.

    Parameters
    ----------
    dataset : Dataset
    targets : array-like, (N, k)
        Per-item class probabilities, in dataset order.
    """

    def __init__(self, dataset: Dataset, targets):
        self.dataset = dataset
        self.targets = torch.as_tensor(np.asarray(targets, dtype=np.float32))
        if len(self.targets) != len(dataset):
            raise ValueError(f"{len(self.targets)} soft targets for {len(dataset)} items")
        labels = getattr(dataset, "labels", None)
        if labels is not None and hasattr(labels, "device"):
            self.targets = self.targets.to(labels.device)
        self.labels = labels

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch to the wrapped dataset (views and augmentation)."""
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset[index][0], self.targets[index]

    def __getitems__(self, indices: Sequence[int]):
        if hasattr(self.dataset, "__getitems__"):
            inputs, _ = self.dataset.__getitems__(indices)
            idx = torch.as_tensor(indices, dtype=torch.long, device=self.targets.device)
            return inputs, self.targets.index_select(0, idx)
        return [self[i] for i in indices]
