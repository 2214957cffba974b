"""Benchmark: head training per epoch with and without the embedding cache.

With a frozen backbone (the paper's B0), the uncached path runs the backbone forward
on every training and validation image in every epoch; the cached path computes the
pooled features once (``--views`` augmented views per training image plus the
validation images) and trains the head on them. This script times, in one run:

- uncached: seconds per epoch (training + validation), over ``--epochs-uncached``;
- cache build: the one-off cost of computing all views;
- cached: seconds per epoch, over ``--epochs-cached`` (first epoch left out as
  warm-up when more than one);

and prints the per-epoch speed-up (target: at least 50x) and the number of epochs
after which the cache has paid for itself.

The images are random 424x424 cutouts held in memory (no data files needed); the
backbone's speed does not depend on what the pixels show. ``--backbone`` defaults to
``lite0-imagenet``; if its pretrained weights are not installed, the same
architecture (timm ``tf_efficientnet_lite0``) is used with random weights.

Run::

    python benchmarks/bench_embedding_cache.py [--n-images 200] [--crop 224]

``--quick`` is a smoke run: 24 images, crop 64, the tiny random-weight
``test_efficientnet`` backbone, one uncached and two cached epochs, on the CPU.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from spiralarms.data.transforms import build_eval_transform, build_train_transform
from spiralarms.models.backbones import build_classifier
from spiralarms.training.datamodule import EpochSync, FeatureDataModule, ImageDataModule
from spiralarms.training.embedding_cache import EmbeddingCache
from spiralarms.models.module import ArmClassifierModule

N_CLASSES = 6


class MemoryImages(Dataset):
    """``(image, label)`` from uint8 HWC images in memory, through a transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i].astype(np.float32) / 255.0), int(self.labels[i])


class EpochTimer(L.Callback):
    """Wall time of each training epoch, its validation included."""

    def __init__(self):
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self._start)


def build_model(backbone: str, pretrained: bool = True):
    """The named backbone with its weights, or its architecture with random weights."""
    if not pretrained:
        return build_classifier(backbone, N_CLASSES, frozen=True, pretrained=False), f"{backbone} (random weights)"
    try:
        return build_classifier(backbone, N_CLASSES, frozen=True), f"{backbone} (pretrained)"
    except Exception as exc:  # weights not installed: same architecture, same speed
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:80]}"
    name = "tf_efficientnet_lite0" if backbone == "lite0-imagenet" else backbone
    model = build_classifier(name, N_CLASSES, frozen=True, pretrained=False)
    return model, f"{name} (random weights; {reason})"


def fit(module, datamodule, epochs: int, accelerator: str) -> list[float]:
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[EpochSync(), timer],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, datamodule=datamodule)
    return timer.seconds


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-images", type=int, default=200, help="galaxies (70%% train, 30%% validation)")
    parser.add_argument("--crop", type=int, default=224, help="centre crop of the 424-pixel cutouts")
    parser.add_argument("--backbone", default="lite0-imagenet", help="frozen backbone name")
    parser.add_argument("--views", type=int, default=4, help="cached augmented views per training image")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs-uncached", type=int, default=2)
    parser.add_argument("--epochs-cached", type=int, default=20)
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu or auto")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, random tiny backbone, 2 epochs")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_images, args.crop, args.backbone, args.views = 24, 64, "test_efficientnet", 2
        args.epochs_uncached, args.epochs_cached, args.accelerator = 1, 2, "cpu"

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n_images, 424, 424, 3), dtype=np.uint8)
    labels = np.arange(args.n_images) % N_CLASSES
    n_train = int(round(0.7 * args.n_images))
    train_aug = MemoryImages(images[:n_train], labels[:n_train], build_train_transform(crop=args.crop))
    train_eval = MemoryImages(images[:n_train], labels[:n_train], build_eval_transform(crop=args.crop))
    val = MemoryImages(images[n_train:], labels[n_train:], build_eval_transform(crop=args.crop))
    classes = [str(i) for i in range(N_CLASSES)]

    model, model_note = build_model(args.backbone, pretrained=not args.quick)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        uncached_model, _ = build_model(args.backbone, pretrained=not args.quick)
    uncached = ArmClassifierModule.from_model(uncached_model, classes)
    images_dm = ImageDataModule(train_aug, val, batch_size=args.batch_size, seed=0)
    uncached_epochs = fit(uncached, images_dm, args.epochs_uncached, args.accelerator)

    device = "cuda" if torch.cuda.is_available() and args.accelerator in ("auto", "gpu", "cuda") else "cpu"
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    cache = EmbeddingCache(model, batch_size=64, device=device)
    train_features = cache.features("train", train_eval, train_aug, views=args.views, seed=0)
    val_features = cache.features("val", val)
    build_seconds = time.perf_counter() - start
    cached = ArmClassifierModule.from_model(model, classes)
    features_dm = FeatureDataModule(train_features, val_features, batch_size=args.batch_size, seed=0, device=device)
    cached_epochs = fit(cached, features_dm, args.epochs_cached, args.accelerator)

    per_uncached = float(np.mean(uncached_epochs))
    measured = cached_epochs[1:] if len(cached_epochs) > 1 else cached_epochs
    per_cached = float(np.mean(measured))
    ratio = per_uncached / per_cached
    break_even = build_seconds / max(per_uncached - per_cached, 1e-12)
    result = {
        "backbone": model_note,
        "device": device,
        "threads": torch.get_num_threads(),
        "n_train": n_train,
        "n_val": args.n_images - n_train,
        "crop": args.crop,
        "views": args.views,
        "uncached_seconds_per_epoch": per_uncached,
        "cached_seconds_per_epoch": per_cached,
        "speedup_per_epoch": ratio,
        "cache_build_seconds": build_seconds,
        "break_even_epochs": break_even,
        "uncached_epochs_timed": len(uncached_epochs),
        "cached_epochs_timed": len(measured),
    }
    print(f"backbone      {model_note} on {device} ({torch.get_num_threads()} threads)")
    print(f"images        {n_train} train + {args.n_images - n_train} val, crop {args.crop}, {args.views} cached views")
    print(f"uncached      {per_uncached:9.3f} s/epoch  (backbone on every image; {len(uncached_epochs)} epoch(s))")
    print(f"cached        {per_cached:9.4f} s/epoch  (head on cached features; {len(measured)} epoch(s))")
    print(f"speed-up      {ratio:9.1f} x per epoch  (target >= 50x: {'met' if ratio >= 50 else 'NOT met'})")
    n_val = args.n_images - n_train
    print(f"cache build   {build_seconds:9.2f} s once  ({args.views} views x {n_train} + {n_val} images)")
    print(f"break-even    {break_even:9.1f} epochs")
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
