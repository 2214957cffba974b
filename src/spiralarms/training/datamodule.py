"""Lightning data modules: catalogue images, or cached backbone features.

- :class:`ImageDataModule`: any training (augmenting) and validation datasets of
  ``(image, label)``; shuffling and augmentation are seeded per epoch
  (:mod:`spiralarms.training.sampling`).
- :class:`GalaxyDataModule`: the paper's pipeline over a selected catalogue: the
  per-class cap and the stratified 70:30 split
  (:func:`~spiralarms.data.splits.split_catalog`), then
  :class:`~spiralarms.data.dataset.GalaxyDataset` with the training augmentation or
  the eval transform.
- :class:`FeatureDataModule`: cached pooled features
  (:mod:`spiralarms.training.embedding_cache`), for training the head alone.

All three have ``set_epoch``; :class:`EpochSync` calls it at the start of every
training epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from spiralarms.config import AugmentConfig, DataConfig
from spiralarms.data.dataset import GalaxyDataset
from spiralarms.data.splits import split_catalog
from spiralarms.data.store import PreparedStore, is_prepared_store
from spiralarms.data.transforms import build_eval_transform, build_train_transform
from spiralarms.errors import SpiralArmsError
from spiralarms.training.embedding_cache import CachedFeatures, FeatureViewDataset, collate_features
from spiralarms.catalog.schema import TRAINING_ID_COLUMNS
from spiralarms.training.recipes import SoftTargets
from spiralarms.training.sampling import EpochBalancedSampler, EpochShuffleSampler, SeededAugmentation

__all__ = ["ImageDataModule", "GalaxyDataModule", "FeatureDataModule", "EpochSync", "ID_COLUMNS", "STRATA_COLUMN"]

#: Column of the six-class T11 label (``select_clean_sample`` writes it): the strata of
#: the cap and the split, so that merged runs share the six-class run's split.
STRATA_COLUMN = "label_original"

#: Columns tried, in order, as the galaxy id in ``split.csv``.
ID_COLUMNS: tuple[str, ...] = TRAINING_ID_COLUMNS


class EpochSync(L.Callback):
    """Tell the data module which epoch starts (for epoch-seeded draws)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is not None and hasattr(datamodule, "set_epoch"):
            datamodule.set_epoch(trainer.current_epoch)


class EpochSeededDataModule(L.LightningDataModule):
    """Shuffling (and view or augmentation choice) drawn from ``(seed, epoch)`` alone.

    A resumed run then sees the same batches as an uninterrupted one. Subclasses set
    ``train_dataset`` (with a ``set_epoch`` method), ``batch_size`` and ``seed``.
    """

    epoch: int = 0
    _sampler: EpochShuffleSampler | EpochBalancedSampler | None = None
    _balanced_labels: np.ndarray | None = None

    def use_recipe(self, labels, *, balanced: bool = False, soft_targets=None) -> None:
        """Class-balanced draws and soft targets for the training items (``train.sampler``, ``train.soft_labels``).

        Parameters
        ----------
        labels : array-like of int
            Class index of every training item, in dataset order.
        balanced : bool
            Draw classes equally often (:class:`EpochBalancedSampler`) instead of a shuffle.
        soft_targets : array-like, (N, k), optional
            Vote fractions to train against instead of ``labels``.
        """
        self._balanced_labels = np.asarray(labels, dtype=np.int64) if balanced else None
        if soft_targets is not None:
            self.train_dataset = SoftTargets(self.train_dataset, soft_targets)

    def set_epoch(self, epoch: int) -> None:
        """Draw the shuffling and the per-epoch training items of ``epoch``."""
        self.epoch = int(epoch)
        self.train_dataset.set_epoch(self.epoch)
        if self._sampler is not None:
            self._sampler.set_epoch(self.epoch)

    def epoch_sampler(self) -> EpochShuffleSampler:
        """A fresh sampler over the training items, at the current epoch."""
        if self._balanced_labels is not None:
            self._sampler = EpochBalancedSampler(self._balanced_labels, self.seed)
        else:
            self._sampler = EpochShuffleSampler(self.train_dataset, self.seed)
        self._sampler.set_epoch(self.epoch)
        return self._sampler


class ImageDataModule(EpochSeededDataModule):
    """Training and validation images, with epoch-seeded shuffling and augmentation.

    Parameters
    ----------
    train_dataset : Dataset
        ``(image, label)`` items with the random training transform (drawing from
        torch's global generator); wrapped in :class:`SeededAugmentation`.
    val_dataset : Dataset
        ``(image, label)`` items with the eval transform.
    batch_size : int, default 16
    seed : int, default 0
    num_workers : int, default 0
    pin_memory : bool, default False
    """

    def __init__(
        self,
        train_dataset: Dataset,
        val_dataset: Dataset,
        *,
        batch_size: int = 16,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
    ):
        super().__init__()
        self.train_dataset = SeededAugmentation(train_dataset, seed)
        self.val_dataset = val_dataset
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_dataset,
            batch_size=self.batch_size,
            sampler=self.epoch_sampler(),
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )


class GalaxyDataModule(ImageDataModule):
    """The paper's data pipeline over a selected catalogue.

    The table is split at construction, deterministic in the split seed
    (``data.split_seed``, else ``data.seed``): every class capped at ``data.cap``
    galaxies, then a stratified ``1 - val_fraction : val_fraction`` split
    (``data.cap_scope="dataset"``, the paper), or the split first and the cap on the
    training pool only (``"train"``). The cap and the strata are the six T11 classes
    (``label_original``) where the table has them, so a class merge caps and splits
    the same galaxies as the six-class run with the same split seed.

    Parameters
    ----------
    table : pandas.DataFrame
        The clean sample: a ``label`` column (class names), an absolute ``file``
        column (:func:`~spiralarms.catalog.readers.resolve_image_paths`) and, after a
        merge, ``label_original`` (the six-class label).
    classes : sequence of str
        Class names in order.
    data : DataConfig
        Split, crop, grey, seed and workers.
    batch_size : int, default 16
    pin_memory : bool, default False

    Attributes
    ----------
    train_table, val_table : pandas.DataFrame
        The rows of each split.
    train_eval_dataset : GalaxyDataset
        The training images with the eval transform (for the embedding cache).
    """

    def __init__(
        self,
        table: pd.DataFrame,
        classes: Sequence[str],
        data: DataConfig,
        batch_size: int = 16,
        pin_memory: bool = False,
        augment: AugmentConfig | None = None,
    ):
        augment = augment if augment is not None else AugmentConfig()
        self.classes = tuple(classes)
        self.data_config = data
        self.augment_config = augment
        self.train_table, self.val_table = split_catalog(
            table,
            val_fraction=data.val_fraction,
            seed=data.effective_split_seed,
            cap=data.cap,
            label_column="label",
            cap_scope=data.cap_scope,
            strata_column=STRATA_COLUMN if STRATA_COLUMN in table.columns else "label",
        )
        self.train_transform = build_train_transform(
            crop=data.crop,
            grey=data.grey,
            rotation=augment.rotation,
            zoom=augment.zoom,
            flips=augment.flips,
            augment_before_crop=augment.order == "frame",
            grey_method=augment.grey_method,
        )
        self.eval_transform = build_eval_transform(crop=data.crop, grey=data.grey, grey_method=augment.grey_method)
        # A prepared store (spiralarms prepare) serves decoded crops instead of JPEGs.
        self.store = PreparedStore(data.catalog) if data.catalog and is_prepared_store(data.catalog) else None
        if self.store is not None and data.grey and augment.grey_method != "luminance":
            raise SpiralArmsError(
                f"{data.catalog}: a prepared store holds luminance grey crops; "
                f"augment.grey_method={augment.grey_method} needs the image files (data.catalog of the table)"
            )
        super().__init__(
            self._dataset(self.train_table, self.train_transform),
            self._dataset(self.val_table, self.eval_transform),
            batch_size=batch_size,
            seed=data.seed,
            num_workers=data.num_workers,
            pin_memory=pin_memory,
        )
        self.train_eval_dataset = self._dataset(self.train_table, self.eval_transform)

    def _dataset(self, part: pd.DataFrame, transform) -> Dataset:
        """Images of ``part`` from the prepared store, or decoded from their files."""
        if self.store is not None:
            dataset = self.store.as_dataset(transform, rows=part["store_row"].to_numpy())
            # Labels from the table, not the store: a caller may relabel it (a class
            # merge, the binary 2-vs-3 subset of the crop sweep).
            index = {name: i for i, name in enumerate(self.classes)}
            dataset.labels = np.array([index[str(c)] for c in part["label"]], dtype=np.int64)
            dataset.classes = self.classes
            return dataset
        # Luminance grey is read by the decoder; other methods grey the RGB tensor.
        read_grey = self.data_config.grey and self.augment_config.grey_method == "luminance"
        return GalaxyDataset(part, self.classes, transform, grey=read_grey)

    @property
    def train_labels(self) -> np.ndarray:
        """Class index of every training galaxy, in training-set order."""
        return np.asarray(self.train_eval_dataset.labels, dtype=np.int64)

    @property
    def train_augment_dataset(self) -> GalaxyDataset:
        """The training images with the random training transform (unseeded)."""
        return self.train_dataset.dataset

    def split_table(self) -> pd.DataFrame:
        """Which galaxy went where: columns ``id``, ``label``, ``split``, ``file``."""
        parts = []
        for name, part in (("train", self.train_table), ("val", self.val_table)):
            id_column = next((c for c in ID_COLUMNS if c in part.columns), None)
            ids = part[id_column].to_numpy() if id_column is not None else part.index.to_numpy()
            parts.append(
                pd.DataFrame(
                    {
                        "id": ids,
                        "label": part["label"].astype(str).to_numpy(),
                        "split": name,
                        "file": part["file"].astype(str).to_numpy(),
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Galaxies per class in each split, every class listed."""
        out = {}
        for name, part in (("train", self.train_table), ("val", self.val_table)):
            counts = part["label"].astype(str).value_counts()
            out[name] = {c: int(counts.get(c, 0)) for c in self.classes}
        return out


class FeatureDataModule(EpochSeededDataModule):
    """Cached pooled features: training cycles through the views, one per epoch.

    Parameters
    ----------
    train : CachedFeatures
        Training features, ``(V, N, C)``; epoch ``e`` uses view ``e mod V``.
    val : CachedFeatures
        Validation features (the eval view; the first view is used).
    batch_size : int, default 16
        Training batch size; validation uses batches of up to ``val_batch_size``
        (the metrics do not depend on it, the per-batch overhead does).
    seed : int, default 0
        Shuffling seed (same permutations as :class:`ImageDataModule`).
    device : torch.device or str, optional
        Keep the features on this device (the one that trains the head), so batches
        are sliced there without copies.
    val_batch_size : int, default 1024
    """

    def __init__(
        self,
        train: CachedFeatures,
        val: CachedFeatures,
        *,
        batch_size: int = 16,
        seed: int = 0,
        device: torch.device | str | None = None,
        val_batch_size: int = 1024,
    ):
        super().__init__()
        self.train_dataset = FeatureViewDataset(train, device=device)
        self.val_dataset = FeatureViewDataset(val, device=device)
        self.batch_size = int(batch_size)
        self.val_batch_size = max(int(val_batch_size), self.batch_size)
        self.seed = int(seed)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_dataset, batch_size=self.batch_size, sampler=self.epoch_sampler(), collate_fn=collate_features
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_dataset, batch_size=self.val_batch_size, shuffle=False, collate_fn=collate_features
        )
