"""Experiment configuration: defaults, YAML, dotted overrides, saving and hashing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spiralarms.config import (
    RUNTIME_KEYS,
    ExperimentConfig,
    config_hash,
    flatten,
    load_config,
    save_config,
)
from spiralarms.errors import SpiralArmsError

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "spiralarms" / "configs"


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_papers_settings():
    cfg = load_config()
    assert (cfg.data.crop, cfg.data.val_fraction, cfg.data.cap, cfg.data.seed) == (224, 0.3, 300, 0)
    assert cfg.data.grey is False and cfg.data.merge is None
    # the paper caps the whole set, then splits; the split seed follows data.seed
    assert cfg.data.cap_scope == "dataset" and cfg.data.split_seed is None
    assert cfg.data.effective_split_seed == 0
    assert load_config(None, ["data.seed=3"]).data.effective_split_seed == 3
    assert load_config(None, ["data.seed=3", "data.split_seed=1"]).data.effective_split_seed == 1
    assert (cfg.model.backbone, cfg.model.hidden, cfg.model.frozen) == ("lite0-imagenet", 1024, None)
    t = cfg.train
    assert (t.batch_size, t.lr, t.max_epochs, t.patience, t.monitor) == (16, 1e-4, 50, 30, "val_accuracy")
    assert t.embedding_cache is True and t.cache_views == 4
    assert (t.accelerator, t.devices, t.strategy, t.num_nodes) == ("auto", "auto", "auto", 1)
    assert (t.precision, t.deterministic) == ("32-true", True)


def test_yaml_and_overrides_are_typed_by_field(tmp_path):
    path = write(
        tmp_path,
        "data:\n  crop: 128\n  merge: 3,4\n  cap: null\nmodel:\n  frozen: true\ntrain:\n  lr: 1e-3\n",
    )
    cfg = load_config(path, ["train.max_epochs=5", "train.lr=2.5e-4", "data.grey=yes", "model.frozen=none"])
    assert cfg.data.crop == 128 and cfg.data.merge == "3,4" and cfg.data.cap is None
    assert cfg.train.max_epochs == 5 and isinstance(cfg.train.max_epochs, int)
    assert cfg.train.lr == pytest.approx(2.5e-4) and isinstance(cfg.train.lr, float)
    assert cfg.data.grey is True and cfg.model.frozen is None


def test_yaml_float_in_exponent_form_is_a_float(tmp_path):
    # PyYAML reads "1e-4" (no dot) as a string; the field type makes it a float.
    cfg = load_config(write(tmp_path, "train:\n  lr: 1e-4\n"))
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)


def test_devices_accepts_count_string_and_list(tmp_path):
    assert load_config(None, ["train.devices=2"]).train.devices == 2
    assert load_config(None, ["train.devices=0,1"]).train.devices == "0,1"
    assert load_config(write(tmp_path, "train:\n  devices: [0, 1]\n")).train.devices == [0, 1]
    with pytest.raises(SpiralArmsError, match="train.devices"):
        load_config(None, ["train.devices=0"])


def test_unknown_yaml_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "train:\n  max_epoch: 5\n")
    with pytest.raises(SpiralArmsError) as err:
        load_config(path)
    message = str(err.value)
    assert "train.max_epoch" in message and str(path) in message and "train.max_epochs" in message
    assert "\n" not in message


def test_unknown_section_names_it(tmp_path):
    with pytest.raises(SpiralArmsError, match="'trian'.*did you mean 'train'"):
        load_config(write(tmp_path, "trian:\n  lr: 0.1\n"))


def test_bad_override_key_and_value_are_named():
    with pytest.raises(SpiralArmsError, match="unknown key 'train.epochs'"):
        load_config(None, ["train.epochs=3"])
    with pytest.raises(SpiralArmsError, match="train.max_epochs must be an integer, got 'many'"):
        load_config(None, ["train.max_epochs=many"])
    with pytest.raises(SpiralArmsError, match="section.key=value"):
        load_config(None, ["train.max_epochs"])
    with pytest.raises(SpiralArmsError, match="data.crop must be an integer"):
        load_config(None, ["data.crop=22.5"])
    with pytest.raises(SpiralArmsError, match="train.lr must be a number, got 'null'"):
        load_config(None, ["train.lr=null"])
    with pytest.raises(SpiralArmsError, match="train.lr must not be null"):
        ExperimentConfig().set("train.lr", None)


def test_out_of_range_values_are_refused():
    for override, key in [
        ("data.val_fraction=1.5", "data.val_fraction"),
        ("data.cap=0", "data.cap"),
        ("train.lr=-1", "train.lr"),
        ("train.monitor=train_loss", "train.monitor"),
        ("data.schema=sdss", "data.schema"),
        ("train.cache_views=-1", "train.cache_views"),
        ("data.merge=1,3", "data.merge"),
        ("data.cap_scope=val", "data.cap_scope"),
        ("data.split_seed=-1", "data.split_seed"),
    ]:
        with pytest.raises(SpiralArmsError, match=key.replace(".", r"\.")):
            load_config(None, [override])


def test_yaml_problems_are_one_line_errors(tmp_path):
    with pytest.raises(SpiralArmsError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(SpiralArmsError, match="not valid YAML"):
        load_config(write(tmp_path, "train: [unclosed\n"))
    with pytest.raises(SpiralArmsError, match="section 'train' must be a mapping"):
        load_config(write(tmp_path, "train: 5\n"))
    binary = tmp_path / "catalog.parquet"
    binary.write_bytes(b"PAR1\xa0\xff\x00" * 8)  # a catalogue given as --config by mistake
    with pytest.raises(SpiralArmsError, match="catalog.parquet: not a YAML config file"):
        load_config(binary)
    assert load_config(write(tmp_path, "")).to_dict() == ExperimentConfig().to_dict()


def test_save_and_load_round_trip(tmp_path):
    cfg = load_config(None, ["data.merge=4,5+", "data.cap=null", "train.devices=3", "model.weights=/w/b0.pt"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert path.read_text().startswith("# spiralarms resolved configuration")
    again = load_config(path)
    assert again.to_dict() == cfg.to_dict()
    assert set(yaml.safe_load(path.read_text())) == {"data", "model", "augment", "train"}


def test_config_hash_is_stable_and_ignores_runtime_keys():
    cfg = load_config(None, ["train.max_epochs=7"])
    h = config_hash(cfg)
    assert len(h) == 12 and h == config_hash(load_config(None, ["train.max_epochs=7"]))
    assert config_hash(load_config(None, ["train.max_epochs=8"])) != h
    assert config_hash(load_config(None, ["train.max_epochs=7", "train.progress=false", "data.num_workers=4"])) == h
    assert set(RUNTIME_KEYS) <= set(flatten(cfg))
    code = (
        "from spiralarms.config import load_config, config_hash; "
        "print(config_hash(load_config(None, ['train.max_epochs=7'])))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == h


def test_shipped_configs_are_found_by_name(tmp_path, monkeypatch):
    from spiralarms.config import available_configs

    assert {"b0-zoobot", "v2m-imagenet", "demo-lite0"} <= set(available_configs())
    monkeypatch.chdir(tmp_path)  # names do not depend on the working directory
    assert load_config("demo-lite0").to_dict() == load_config(CONFIGS / "demo-lite0.yaml").to_dict()
    assert load_config("b0-zoobot.yaml").model.backbone == "zoobot-b0"
    with pytest.raises(SpiralArmsError, match="no such config file; shipped configurations: .*demo-lite0"):
        load_config("b1-zoobot")
    (tmp_path / "demo-lite0.yaml").write_text("train:\n  max_epochs: 3\n")
    assert load_config("demo-lite0.yaml").train.max_epochs == 3, "an existing file comes first"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("b0-zoobot.yaml", {"model.backbone": "zoobot-b0", "data.grey": True, "model.frozen": True}),
        ("v2m-imagenet.yaml", {"model.backbone": "v2m-imagenet", "data.grey": False, "model.frozen": False}),
        ("demo-lite0.yaml", {"model.backbone": "lite0-imagenet", "model.frozen": True, "train.embedding_cache": True}),
    ],
)
def test_shipped_configs_load(name, expected):
    path = CONFIGS / name
    assert path.read_text().startswith("#"), "each config starts with a comment header"
    values = flatten(load_config(path))
    for key, value in expected.items():
        assert values[key] == value, key
    assert values["data.crop"] == 224 and values["data.cap"] == 300 and values["data.val_fraction"] == 0.3
    assert values["train.batch_size"] == 16 and values["train.lr"] == pytest.approx(1e-4)
    assert values["train.max_epochs"] == 50 and values["train.patience"] == 30


def test_augment_section_reaches_the_training_transform(tiny_galaxies):
    """augment.* changes what the model sees: no augmentation is deterministic, 'mean' greys by the mean."""
    import numpy as np
    import torch

    from spiralarms.training import GalaxyDataModule
    from spiralarms.training.train import load_selection

    base = [f"data.catalog={tiny_galaxies / 'catalog.csv'}", "data.crop=64", "data.grey=true"]
    table, classes = load_selection(load_config(None, base))

    still = load_config(None, base + ["augment.rotation=0", "augment.zoom=0", "augment.flips=false"])
    module = GalaxyDataModule(table, classes, still.data, augment=still.augment)
    first = module.train_dataset[0][0]
    module.set_epoch(1)
    assert torch.equal(first, module.train_dataset[0][0])
    assert torch.allclose(first, module.train_eval_dataset[0][0], atol=1e-6)

    moving = load_config(None, base)
    module = GalaxyDataModule(table, classes, moving.data, augment=moving.augment)
    views = []
    for epoch in range(3):
        module.set_epoch(epoch)
        views.append(module.train_dataset[0][0])
    assert not all(torch.equal(views[0], v) for v in views[1:])  # seeded per epoch

    mean = load_config(None, base + ["augment.grey_method=mean"])
    module = GalaxyDataModule(table, classes, mean.data, augment=mean.augment)
    assert "method='mean'" in repr(module.eval_transform)
    luminance = GalaxyDataModule(table, classes, still.data, augment=still.augment)
    grey_mean, grey_lum = module.train_eval_dataset[0][0], luminance.train_eval_dataset[0][0]
    assert grey_mean.shape == grey_lum.shape == (1, 64, 64)
    assert not np.allclose(grey_mean.numpy(), grey_lum.numpy(), atol=1e-3)
