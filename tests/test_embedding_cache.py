"""Embedding cache: cached features equal the backbone's, and the cached path trains alike."""

from __future__ import annotations

import warnings

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import Dataset

from spiralarms.config import load_config
from spiralarms.data.transforms import build_eval_transform, build_train_transform
from spiralarms.errors import SpiralArmsError
from spiralarms.models.backbones import build_classifier
from spiralarms.models.module import ArmClassifierModule
from spiralarms.training import train
from spiralarms.training.datamodule import EpochSync, FeatureDataModule, ImageDataModule
from spiralarms.training.embedding_cache import (
    EmbeddingCache,
    FeatureViewDataset,
    backbone_fingerprint,
    collate_features,
)
from spiralarms.training.sampling import SeededAugmentation


class ArrayImages(Dataset):
    """(image, label) items from in-memory HWC images in [0, 1] through a transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), int(self.labels[i])


def easy_images(n: int, size: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes anyone can tell apart: a faint disc or a bright one, on noisy sky."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    disc = (np.hypot(yy, xx) < size / 4).astype(np.float32)
    images = np.empty((n, size, size, 3), dtype=np.float32)
    for i, label in enumerate(labels):
        brightness = 0.9 if label else 0.25
        sky = rng.normal(0.1, 0.03, (size, size, 3))
        images[i] = np.clip(sky + brightness * disc[..., None], 0, 1)
    return images, labels


def frozen_model(n_classes: int = 2, hidden: int = 16):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_classifier("test_efficientnet", n_classes, hidden=hidden, frozen=True, pretrained=False)


@pytest.fixture(scope="module")
def easy():
    images, labels = easy_images(32)
    crop = 32
    return {
        "train_aug": ArrayImages(images[:20], labels[:20], build_train_transform(crop=crop)),
        "train_eval": ArrayImages(images[:20], labels[:20], build_eval_transform(crop=crop)),
        "val": ArrayImages(images[20:], labels[20:], build_eval_transform(crop=crop)),
    }


def test_zero_views_cache_equals_embed_of_the_eval_view(easy):
    model = frozen_model()
    cached = EmbeddingCache(model).features("val", easy["val"])
    assert cached.views == ("eval",) and cached.features.shape == (1, 12, model.backbone.num_features)
    images = torch.stack([easy["val"][i][0] for i in range(12)])
    with torch.no_grad():
        expected = model.eval().embed(images)
    torch.testing.assert_close(cached.features[0], expected, rtol=1e-5, atol=1e-5)
    assert cached.labels.tolist() == [easy["val"][i][1] for i in range(12)]


def test_view_v_is_the_augmentation_the_uncached_path_draws_in_epoch_v(easy):
    model = frozen_model()
    cached = EmbeddingCache(model).features(
        "train", easy["train_eval"], easy["train_aug"], views=3, include_eval_view=True, seed=5
    )
    assert cached.views == ("aug0", "aug1", "aug2", "eval")
    seeded = SeededAugmentation(easy["train_aug"], seed=5)
    for view in (0, 2):
        seeded.set_epoch(view)
        images = torch.stack([seeded[i][0] for i in range(len(seeded))])
        with torch.no_grad():
            torch.testing.assert_close(cached.features[view], model.embed(images), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(cached.features[0], cached.features[1]), "views differ"
    assert [cached.view_for_epoch(e) for e in range(6)] == [0, 1, 2, 3, 0, 1]


def test_disk_cache_is_reused_and_keyed(easy, tmp_path):
    model = frozen_model()
    cache = EmbeddingCache(model, tmp_path)
    identity = {"files": [f"g{i}.jpg" for i in range(20)], "crop": 32}
    first = cache.features("train", easy["train_eval"], easy["train_aug"], views=2, seed=0, identity=identity)
    assert not first.reused and first.path.is_file() and first.path.parent == tmp_path
    again = EmbeddingCache(frozen_model(), tmp_path).features(
        "train", easy["train_eval"], easy["train_aug"], views=2, seed=0, identity=identity
    )
    assert again.reused and again.path == first.path
    torch.testing.assert_close(again.features, first.features)
    keys = {
        cache.key(identity, views=2, include_eval_view=False, seed=0),
        cache.key(identity, views=3, include_eval_view=False, seed=0),
        cache.key(identity, views=2, include_eval_view=True, seed=0),
        cache.key(identity, views=2, include_eval_view=False, seed=1),
        cache.key({**identity, "crop": 40}, views=2, include_eval_view=False, seed=0),
    }
    assert len(keys) == 5
    other = frozen_model()
    with torch.no_grad():
        other.backbone.conv_stem.weight.mul_(2)
    assert backbone_fingerprint(other) != backbone_fingerprint(model)
    assert EmbeddingCache(other, tmp_path).key(identity, views=2, include_eval_view=False, seed=0) not in keys
    first.path.write_bytes(b"damaged")
    redone = cache.features("train", easy["train_eval"], easy["train_aug"], views=2, seed=0, identity=identity)
    assert not redone.reused
    torch.testing.assert_close(redone.features, first.features)
    assert not list(tmp_path.glob(".*.tmp")), "no temporary files left"


def test_cache_refuses_a_trained_backbone_and_bad_views(easy):
    trained = build_classifier("test_efficientnet", 2, hidden=8, frozen=False, pretrained=False)
    with pytest.raises(SpiralArmsError, match="frozen backbone"):
        EmbeddingCache(trained)
    cache = EmbeddingCache(frozen_model())
    with pytest.raises(SpiralArmsError, match="augmenting dataset"):
        cache.features("train", easy["train_eval"], views=2)
    with pytest.raises(SpiralArmsError, match=">= 0"):
        cache.features("train", easy["train_eval"], easy["train_aug"], views=-1)


def test_feature_dataset_cycles_views_by_epoch_and_fetches_batches_at_once():
    from spiralarms.training.embedding_cache import CachedFeatures

    features = torch.arange(3 * 4 * 2, dtype=torch.float32).reshape(3, 4, 2)
    dataset = FeatureViewDataset(CachedFeatures(features, torch.tensor([0, 1, 0, 1]), ("a", "b", "c")))
    dataset.set_epoch(4)  # view 4 mod 3 = 1
    x, y = dataset.__getitems__([2, 0])
    torch.testing.assert_close(x, features[1, [2, 0]])
    assert y.tolist() == [0, 0]
    item = dataset[2]
    torch.testing.assert_close(item[0], features[1, 2])
    stacked = collate_features([dataset[0], dataset[1]])
    torch.testing.assert_close(stacked[0], features[1, :2])


def fit(module, datamodule, epochs: int, root) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        deterministic=True, default_root_dir=root, callbacks=[EpochSync()],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, datamodule=datamodule)
    return trainer


def test_head_on_cached_features_trains_like_the_frozen_model_on_images(easy, tmp_path):
    epochs = 4
    uncached = ArmClassifierModule.from_model(frozen_model(), ["faint", "bright"], lr=3e-3)
    images = ImageDataModule(easy["train_aug"], easy["val"], batch_size=4, seed=1)
    t_images = fit(uncached, images, epochs, tmp_path)

    cached_model = frozen_model()
    cache = EmbeddingCache(cached_model)
    train_features = cache.features("train", easy["train_eval"], easy["train_aug"], views=epochs, seed=1)
    val_features = cache.features("val", easy["val"])
    cached = ArmClassifierModule.from_model(cached_model, ["faint", "bright"], lr=3e-3)
    t_cached = fit(cached, FeatureDataModule(train_features, val_features, batch_size=4, seed=1), epochs, tmp_path)

    accuracy = float(t_images.callback_metrics["val_accuracy"])
    assert accuracy >= 0.9, "an easy problem is learnt"
    assert float(t_cached.callback_metrics["val_accuracy"]) == pytest.approx(accuracy)
    assert float(t_cached.callback_metrics["val_loss"]) == pytest.approx(
        float(t_images.callback_metrics["val_loss"]), rel=1e-4
    )
    for (name, a), b in zip(uncached.model.head.state_dict().items(), cached.model.head.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    backbone_after = dict(cached.model.backbone.state_dict())
    for name, value in frozen_model().backbone.state_dict().items():
        torch.testing.assert_close(backbone_after[name], value, msg=f"frozen backbone changed: {name}")


@pytest.mark.slow
def test_train_cached_and_uncached_runs_agree(tmp_path):
    from spiralarms.data.synthetic import synthesize_dataset  # a broken renderer fails, never skips

    synthesize_dataset(tmp_path / "synth", n_per_class=5, seed=1, size=64, progress=False, preset="crisp")
    overrides = [
        f"data.catalog={tmp_path / 'synth' / 'catalog.csv'}", "data.crop=48", "model.backbone=test_efficientnet",
        "model.pretrained=false", "model.hidden=32", "model.frozen=true", "train.max_epochs=3",
        "train.cache_views=3", "train.progress=false", "train.lr=1e-3", "train.accelerator=cpu",
    ]
    cached = train(load_config(None, overrides), tmp_path / "cached")
    uncached = train(load_config(None, [*overrides, "train.embedding_cache=false"]), tmp_path / "uncached")
    assert cached.summary["embedding_cache"]["used"] and not uncached.summary["embedding_cache"]["used"]
    columns = ["epoch", "train_loss", "val_loss", "val_accuracy", "val_macro_f1"]
    pd.testing.assert_frame_equal(cached.history[columns], uncached.history[columns], rtol=1e-4)
    assert cached.metrics["confusion_matrix"] == uncached.metrics["confusion_matrix"]
    again = train(load_config(None, overrides), tmp_path / "cached", resume=False)
    assert again.summary["embedding_cache"]["reused"] is True
    pd.testing.assert_frame_equal(again.history[columns], cached.history[columns])


def test_benchmark_script_runs(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_embedding_cache.py"
    spec = importlib.util.spec_from_file_location("bench_embedding_cache", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(
        ["--n-images", "12", "--crop", "32", "--backbone", "test_efficientnet", "--views", "2",
         "--epochs-cached", "3", "--accelerator", "cpu"]
    )
    assert result["uncached_seconds_per_epoch"] > 0 and result["cached_seconds_per_epoch"] > 0
    assert result["n_train"] + result["n_val"] == 12 and result["cached_epochs_timed"] == 2
    assert "speed-up" in capsys.readouterr().out
