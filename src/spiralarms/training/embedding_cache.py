"""Embedding cache: a frozen backbone's pooled features, computed once per image view.

The paper's B0 model keeps its EfficientNet-B0 backbone frozen and trains only the
dense head, yet a plain training loop runs the backbone forward on every image in
every epoch. With the backbone frozen (eval mode, fixed batch-norm statistics), the
pooled features of a given input never change, so they can be computed once:

- validation images: the un-augmented (eval) view, exactly what the uncached path
  feeds the backbone, so validation is unchanged;
- training images: ``views`` augmented views per image (rotation, flips, zoom),
  drawn with a fixed seed, optionally plus the eval view.

The head then trains on the cached features: in epoch ``e`` every training image
contributes view ``e mod V`` (``V`` views in the pool). Per-epoch augmentation is
thus approximated by a fixed pool of ``V`` augmentations per image, reused in turn.
View ``v`` is drawn exactly as the uncached path draws epoch ``v``
(:class:`~spiralarms.training.sampling.SeededAugmentation`), so for the first ``V``
epochs the two paths see identical inputs and train identically (up to float
rounding); later epochs repeat the pool instead of drawing fresh augmentations.

Features are kept in memory as one ``(V, N, C)`` float32 tensor and, when a cache
folder is given, on disk as ``<name>-<key>.pt``, where the key hashes the backbone's
weights, the image list and labels, the transforms, the number of views and the seed:
a rerun or a resumed run finds and reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from spiralarms.errors import SpiralArmsError
from spiralarms.io.atomic import save_tensors
from spiralarms.models.classifier import ArmClassifier
from spiralarms.models.fusion import inference_copy
from spiralarms.training.sampling import SeededAugmentation

__all__ = [
    "CACHE_FORMAT",
    "CachedFeatures",
    "EmbeddingCache",
    "FeatureViewDataset",
    "backbone_fingerprint",
    "embed_dataset",
]

#: Version of the on-disk layout; part of every cache key.
CACHE_FORMAT = 1


@dataclass
class CachedFeatures:
    """Pooled backbone features of a set of images, in one or more views.

    Attributes
    ----------
    features : torch.Tensor
        ``(V, N, C)`` float32: view, image, channel.
    labels : torch.Tensor
        ``(N,)`` int64 class indices.
    views : tuple of str
        Name of each view: ``"aug0"``, ``"aug1"``, ... and/or ``"eval"``.
    key : str or None
        Cache key (``None`` when not cached on disk).
    path : Path or None
        The cache file, if any.
    reused : bool
        Whether the features were read from an existing cache file.
    seconds : float
        Time spent computing or reading them.
    """

    features: torch.Tensor
    labels: torch.Tensor
    views: tuple[str, ...]
    key: str | None = None
    path: Path | None = None
    reused: bool = False
    seconds: float = 0.0

    @property
    def n_views(self) -> int:
        """Views per image, ``V``."""
        return int(self.features.shape[0])

    def view_for_epoch(self, epoch: int) -> int:
        """Index of the view that training uses in ``epoch`` (views in turn)."""
        return int(epoch) % self.n_views


class FeatureViewDataset(Dataset):
    """``(features, label)`` items from cached views, one view per epoch.

    Item ``i`` in epoch ``e`` is ``features[e mod V, i]``. Batches are fetched with
    one indexing operation (``__getitems__``); use :func:`collate_features` as the
    loader's ``collate_fn``.

    Parameters
    ----------
    cached : CachedFeatures
    device : torch.device or str, optional
        Keep the features on this device (e.g. the GPU that trains the head), so
        batches need no copy; the loader must then use ``num_workers=0``.
    """

    def __init__(self, cached: CachedFeatures, device: torch.device | str | None = None):
        self.features = cached.features if device is None else cached.features.to(device)
        self.labels = cached.labels if device is None else cached.labels.to(device)
        self.n_views = cached.n_views
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the view of ``epoch`` from now on."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[self.epoch % self.n_views, index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(list(indices), dtype=torch.long, device=self.features.device)
        return self.features[self.epoch % self.n_views].index_select(0, idx), self.labels.index_select(0, idx)


def collate_features(batch):
    """Collate for :class:`FeatureViewDataset`: batches arrive already stacked."""
    if isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[0], torch.Tensor):
        return batch
    features, labels = zip(*batch)
    return torch.stack(features), torch.stack(labels)


def backbone_fingerprint(model: ArmClassifier) -> str:
    """SHA-256 of the backbone's weights, buffers and input normalisation.

    Two models with the same architecture and weights give the same fingerprint, so
    cached features are reused exactly when they would be recomputed identically.
    """
    digest = hashlib.sha256()
    modules = {"backbone": model.backbone, "normalize": model.normalize}
    for prefix, module in modules.items():
        tensors = dict(module.named_parameters())
        tensors.update(module.named_buffers())
        for name in sorted(tensors):
            t = tensors[name].detach().to("cpu").contiguous()
            digest.update(f"{prefix}.{name}:{tuple(t.shape)}:{t.dtype}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def embed_dataset(
    model: ArmClassifier,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    num_workers: int = 0,
    device: torch.device | str | None = None,
    progress: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled backbone features of every item of ``dataset``, in order.

    Parameters
    ----------
    model : ArmClassifier
        Its :meth:`~spiralarms.models.classifier.ArmClassifier.embed` is used, in
        eval mode, on a copy made for inference
        (:func:`~spiralarms.models.fusion.inference_copy`); the model is unchanged.
    dataset : Dataset
        ``(image, label)`` items, images ``(C, H, W)`` in [0, 1].
    batch_size, num_workers : int
        Loader settings.
    device : torch.device or str, optional
        Where to run the backbone; default: the model's device.
    progress : tqdm bar, optional
        Advanced by the number of images of each batch.

    Returns
    -------
    features : torch.Tensor
        ``(N, C)`` float32 on the CPU.
    labels : torch.Tensor
        ``(N,)`` int64.
    """
    original_device = next(model.parameters()).device
    device = torch.device(device) if device is not None else original_device
    # A folded, channels-last copy gives the same features to float rounding, about
    # twice as fast on a CPU; the model itself (and its fingerprint) stays as it is.
    net = inference_copy(model).to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    chunks, labels = [], []
    for images, targets in loader:
        x = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        chunks.append(net.embed(x).float().cpu())
        labels.append(torch.as_tensor(targets, dtype=torch.long))
        if progress is not None:
            progress.update(len(targets))
    if not chunks:
        return torch.empty(0, model.backbone.num_features), torch.empty(0, dtype=torch.long)
    return torch.cat(chunks), torch.cat(labels)


class EmbeddingCache:
    """Compute, store and reuse pooled features of a frozen backbone.

    Parameters
    ----------
    model : ArmClassifier
        Must have a frozen backbone (``model.frozen``): features of a trained
        backbone change every step and cannot be cached.
    cache_dir : str or path-like, optional
        Folder for ``<name>-<key>.pt`` files; ``None`` keeps features in memory only.
    batch_size : int, default 64
        Images per backbone forward pass.
    num_workers : int, default 0
        Loader workers for reading images.
    device : torch.device or str, optional
        Where to run the backbone; default: the model's device.
    progress : bool, default False
        Show a progress bar (tqdm) while computing features.

    Raises
    ------
    SpiralArmsError
        If the backbone is not frozen.
    """

    def __init__(
        self,
        model: ArmClassifier,
        cache_dir: str | os.PathLike | None = None,
        *,
        batch_size: int = 64,
        num_workers: int = 0,
        device: torch.device | str | None = None,
        progress: bool = False,
    ):
        if not getattr(model, "frozen", False):
            raise SpiralArmsError(
                "embedding cache needs a frozen backbone (model.frozen=true): a trained backbone's features "
                "change every step; set train.embedding_cache=false"
            )
        self.model = model
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.device = device
        self.progress = bool(progress)
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        """:func:`backbone_fingerprint` of the model (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = backbone_fingerprint(self.model)
        return self._fingerprint

    def key(
        self, identity: Mapping[str, Any], *, views: int, include_eval_view: bool, seed: int
    ) -> str:
        """Cache key: hash of the backbone weights, ``identity``, views and seed."""
        payload = {
            "format": CACHE_FORMAT,
            "backbone": self.fingerprint,
            "identity": identity,
            "views": int(views),
            "include_eval_view": bool(include_eval_view) or int(views) == 0,
            "seed": int(seed),
        }
        text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]

    def features(
        self,
        name: str,
        eval_dataset: Dataset,
        augment_dataset: Dataset | None = None,
        *,
        views: int = 0,
        include_eval_view: bool = False,
        seed: int = 0,
        identity: Mapping[str, Any] | None = None,
    ) -> CachedFeatures:
        """Features of one image set, from the cache file if present.

        Parameters
        ----------
        name : str
            Set name, part of the file name (``"train"``, ``"val"``).
        eval_dataset : Dataset
            ``(image, label)`` items with the deterministic eval transform.
        augment_dataset : Dataset, optional
            The same images, in the same order, with the random training transform
            (drawing from torch's global generator); needed when ``views > 0``.
        views : int, default 0
            Augmented views per image; 0 caches the eval view only.
        include_eval_view : bool, default False
            Add the eval view after the augmented ones.
        seed : int, default 0
            Augmentation seed: view ``v`` of item ``i`` is drawn as
            ``SeededAugmentation(augment_dataset, seed)`` draws it in epoch ``v``.
        identity : mapping, optional
            JSON-serialisable description of the items (files, labels, crop, grey,
            transforms). Required for the on-disk cache: without it the features stay
            in memory only, since nothing would tell a stale file from a good one.

        Returns
        -------
        CachedFeatures
            ``features`` of shape ``(V, N, C)``, with ``V = views`` (+1 with the eval
            view, or 1 when ``views == 0``).

        Raises
        ------
        SpiralArmsError
            If ``views`` is negative, or ``views > 0`` without ``augment_dataset``, or
            the two datasets differ in length.
        """
        views = int(views)
        if views < 0:
            raise SpiralArmsError(f"cache views must be >= 0, got {views}")
        if views > 0 and augment_dataset is None:
            raise SpiralArmsError("cache views > 0 need an augmenting dataset")
        if augment_dataset is not None and len(augment_dataset) != len(eval_dataset):
            raise SpiralArmsError(
                f"{name}: augmenting and eval datasets differ in length "
                f"({len(augment_dataset)} vs {len(eval_dataset)})"
            )
        names = tuple(f"aug{v}" for v in range(views))
        if include_eval_view or views == 0:
            names += ("eval",)
        start = time.perf_counter()
        path = key = None
        if identity is not None and self.cache_dir is not None:
            key = self.key(identity, views=views, include_eval_view=include_eval_view, seed=seed)
            path = self.cache_dir / f"{name}-{key}.pt"
            cached = self._read(path, names, len(eval_dataset))
            if cached is not None:
                features, labels = cached
                return CachedFeatures(features, labels, names, key, path, True, time.perf_counter() - start)

        bar = None
        if self.progress:
            from spiralarms.runtime import progress_bar

            bar = progress_bar(total=len(names) * len(eval_dataset), desc=f"{name} features", unit="img")
        stacks, labels = [], None
        try:
            seeded = SeededAugmentation(augment_dataset, seed) if augment_dataset is not None else None
            for view in names:
                if view == "eval":
                    dataset = eval_dataset
                else:
                    seeded.set_epoch(int(view[3:]))
                    dataset = seeded
                feats, labels = embed_dataset(
                    self.model,
                    dataset,
                    batch_size=self.batch_size,
                    num_workers=self.num_workers,
                    device=self.device,
                    progress=bar,
                )
                stacks.append(feats)
        finally:
            if bar is not None:
                bar.close()
        features = torch.stack(stacks)
        if path is not None:
            self._write(path, features, labels, names, key)
        return CachedFeatures(features, labels, names, key, path, False, time.perf_counter() - start)

    @staticmethod
    def _read(path: Path, names: tuple[str, ...], n_items: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Features and labels from ``path``, or ``None`` if absent or inconsistent."""
        if not path.is_file():
            return None
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            features, labels = blob["features"], blob["labels"]
        except Exception:  # a damaged file is recomputed, never trusted
            return None
        if tuple(blob.get("views", ())) != names or features.shape[:2] != (len(names), n_items):
            return None
        return features, labels

    @staticmethod
    def _write(path: Path, features: torch.Tensor, labels: torch.Tensor, names: tuple[str, ...], key: str) -> None:
        """Save atomically (temporary file, then rename): a killed run leaves no half file."""
        save_tensors({"features": features, "labels": labels, "views": list(names), "key": key}, path)
