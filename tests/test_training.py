"""Training: the Lightning module, run folders, resume, checkpoints and early stopping."""

from __future__ import annotations

import json
import os
import signal
import warnings

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from spiralarms.config import load_config
from spiralarms.errors import SpiralArmsError
from spiralarms.models.backbones import build_classifier
from spiralarms.models.loading import load_classifier, read_checkpoint
from spiralarms.models.module import ArmClassifierModule
from spiralarms.training import train
from spiralarms.models.module import ADAM_EPS
from spiralarms.training.sampling import EpochShuffleSampler, SeededAugmentation, derive_seed

TINY = [
    "data.crop=48",
    "model.backbone=test_efficientnet",
    "model.pretrained=false",
    "model.hidden=32",
    "model.frozen=true",
    "train.cache_views=2",
    "train.progress=false",
    "train.accelerator=cpu",
]


def tiny_model(frozen: bool = True, n_classes: int = 3):
    torch.manual_seed(0)
    return build_classifier("test_efficientnet", n_classes, hidden=16, frozen=frozen, pretrained=False)


@pytest.fixture(scope="module")
def synth_catalog(tmp_path_factory):
    """A small synthetic GZ2 catalogue with 64-pixel images (as `spiralarms synth` writes)."""
    from spiralarms.data.synthetic import synthesize_dataset  # a broken renderer fails, never skips

    out = tmp_path_factory.mktemp("synth")
    synthesize_dataset(out, n_per_class=6, seed=0, size=64, progress=False, preset="crisp")
    return out / "catalog.csv"


def config(catalog, *overrides):
    return load_config(None, [f"data.catalog={catalog}", *TINY, *overrides])


def frame(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=["epoch_seconds"]).reset_index(drop=True)


# --- the LightningModule ---------------------------------------------------------


def test_module_runs_images_or_cached_features_through_the_same_head():
    model = tiny_model()
    module = ArmClassifierModule.from_model(model, ["a", "b", "c"], lr=1e-3)
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        from_images = module(images)
        from_features = module(model.embed(images))
    torch.testing.assert_close(from_images, from_features, rtol=1e-5, atol=1e-6)


def test_optimizer_is_constant_lr_adam_over_trainable_parameters_only():
    frozen = ArmClassifierModule.from_model(tiny_model(frozen=True), ["a", "b", "c"], lr=3e-4)
    optimizer = frozen.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    (group,) = optimizer.param_groups
    assert group["lr"] == 3e-4 and group["eps"] == ADAM_EPS and group["weight_decay"] == 0
    head = {id(p) for p in frozen.model.head.parameters()}
    assert {id(p) for p in group["params"]} == head
    trained = ArmClassifierModule.from_model(tiny_model(frozen=False), ["a", "b", "c"])
    n_all = sum(1 for p in trained.parameters() if p.requires_grad)
    assert len(trained.configure_optimizers().param_groups[0]["params"]) == n_all > len(head)


def test_module_logs_metrics_and_keeps_validation_predictions(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(24, 8)
    y = (x[:, 0] > 0).long()
    model = tiny_model(n_classes=2)
    model.head = type(model.head)(8, 2, 16)
    module = ArmClassifierModule.from_model(model, ["neg", "pos"], lr=1e-2)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    trainer = L.Trainer(
        max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path, num_sanity_val_steps=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, loader, loader)
    for key in ("train_loss", "val_loss", "val_accuracy", "val_macro_f1"):
        assert key in trainer.callback_metrics
    assert module.validation_probabilities.shape == (24, 2)
    torch.testing.assert_close(module.validation_targets, y)
    accuracy = (module.validation_probabilities.argmax(1) == y).float().mean()
    assert float(trainer.callback_metrics["val_accuracy"]) == pytest.approx(float(accuracy))


# --- epoch-indexed randomness ------------------------------------------------------


def test_shuffling_and_augmentation_depend_only_on_seed_epoch_and_item():
    data = list(range(10))
    sampler = EpochShuffleSampler(data, seed=3)
    sampler.set_epoch(1)
    first = list(sampler)
    torch.manual_seed(123)  # the global generator plays no part
    assert list(sampler) == first and sorted(first) == data
    sampler.set_epoch(2)
    assert list(sampler) != first
    assert derive_seed(1, "a", 2) == derive_seed(1, "a", 2) != derive_seed(1, "a", 3)

    class Noise(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.rand(3)

    seeded = SeededAugmentation(Noise(), seed=0)
    seeded.set_epoch(5)
    before = torch.random.get_rng_state()
    a = seeded[2]
    assert torch.equal(torch.random.get_rng_state(), before), "caller's random state untouched"
    _ = seeded[1]
    assert torch.equal(seeded[2], a)
    seeded.set_epoch(6)
    assert not torch.equal(seeded[2], a)


# --- run folders -------------------------------------------------------------------


@pytest.mark.slow
def test_train_writes_a_complete_run_folder(synth_catalog, tmp_path):
    run = tmp_path / "run"
    result = train(config(synth_catalog, "train.max_epochs=3"), run)
    for name in ("config.yaml", "split.csv", "history.csv", "metrics.json", "train_summary.json",
                 "val_predictions.csv", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) >= {"classes", "per_class", "accuracy", "macro_f1", "confusion_matrix"}
    assert metrics["classes"] == list(result.classes) == ["1", "2", "3", "4", "5+", "?"]
    split = pd.read_csv(run / "split.csv")
    assert list(split.columns[:3]) == ["id", "label", "split"]
    assert not set(split.loc[split.split == "train", "id"]) & set(split.loc[split.split == "val", "id"])
    n_val = int((split.split == "val").sum())
    assert sum(sum(row) for row in metrics["confusion_matrix"]) == n_val
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    summary = result.summary
    assert summary["epochs_run"] == 3 and summary["embedding_cache"]["used"] is True
    assert sum(summary["n_train"].values()) + sum(summary["n_val"].values()) == len(split)
    assert load_config(run / "config.yaml").to_dict() == result.config.to_dict()
    assert history.loc[summary["best_epoch"], "val_accuracy"] == pytest.approx(history["val_accuracy"].max())

    # The final model is the best checkpoint, rebuilt without the configuration.
    model, info = load_classifier(run / "checkpoints" / "best.ckpt")
    assert info["classes"] == list(result.classes) and info["crop"] == 48 and info["grey"] is False
    assert info["backbone"] == "test_efficientnet" and info["epoch"] == summary["best_epoch"]
    predictions = pd.read_csv(run / "val_predictions.csv", dtype={"label": str, "pred": str})
    from spiralarms.data.dataset import GalaxyDataset
    from spiralarms.data.transforms import build_eval_transform

    val = split[split.split == "val"].reset_index(drop=True)
    dataset = GalaxyDataset(val, result.classes, build_eval_transform(crop=48))
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    probs = model.predict_proba(images).numpy()
    columns = [f"p_{c}" for c in result.classes]
    np.testing.assert_allclose(probs, predictions[columns].to_numpy(), atol=1e-5)
    assert metrics["accuracy"] == pytest.approx(float((predictions.label == predictions.pred).mean()))


@pytest.mark.slow
def test_resume_after_a_finished_shorter_run_equals_an_uninterrupted_run(synth_catalog, tmp_path):
    whole = train(config(synth_catalog, "train.max_epochs=4"), tmp_path / "whole")
    train(config(synth_catalog, "train.max_epochs=2"), tmp_path / "parts")
    resumed = train(config(synth_catalog, "train.max_epochs=4"), tmp_path / "parts")
    assert resumed.summary["resumed_from_epoch"] == 2 and resumed.summary["epochs_run"] == 4
    assert resumed.history["epoch"].tolist() == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(frame(resumed.history), frame(whole.history), rtol=1e-5)
    assert resumed.metrics["confusion_matrix"] == whole.metrics["confusion_matrix"]
    assert resumed.metrics["macro_f1"] == pytest.approx(whole.metrics["macro_f1"])
    a = torch.load(whole.checkpoint, weights_only=True)["state_dict"]
    b = torch.load(resumed.checkpoint, weights_only=True)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


class Kill(L.Callback):
    """Simulate a kill after the history row of ``epoch``, before its checkpoints."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_validation_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated kill")


@pytest.mark.slow
def test_resume_after_a_kill_repeats_no_epoch(synth_catalog, tmp_path):
    cfg = config(synth_catalog, "train.max_epochs=4", "train.embedding_cache=false")
    whole = train(cfg, tmp_path / "whole")
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(cfg, tmp_path / "killed", callbacks=[Kill(epoch=2)])
    history = pd.read_csv(tmp_path / "killed" / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]  # epoch 2 logged, its checkpoint not saved
    resumed = train(cfg, tmp_path / "killed")
    assert resumed.summary["resumed_from_epoch"] == 2
    assert resumed.history["epoch"].tolist() == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(frame(resumed.history), frame(whole.history), rtol=1e-5)


class CtrlC(L.Callback):
    """Ctrl-C (or a SIGTERM) at the end of ``epoch``'s training, after the checkpoints of the epochs before."""

    def __init__(self, epoch: int, sigterm: bool = False):
        self.epoch, self.sigterm = epoch, sigterm

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            if self.sigterm:
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.parametrize("sigterm", [False, True], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stays_a_keyboard_interrupt_and_the_run_resumes(synth_catalog, tmp_path, sigterm):
    """SIGTERM, under the command line's handler, stops training as Ctrl-C does, and says it was a SIGTERM."""
    from spiralarms.runtime import Terminated, stop_on_sigterm

    cfg = config(synth_catalog, "train.max_epochs=3", "train.embedding_cache=false")
    before, before_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    # Lightning turns Ctrl-C into sys.exit(1) and leaves SIGINT ignored.
    with pytest.raises(Terminated if sigterm else KeyboardInterrupt) as stopped, stop_on_sigterm():
        train(cfg, tmp_path / "cut", callbacks=[CtrlC(epoch=1, sigterm=sigterm)])
    assert isinstance(stopped.value, Terminated) is sigterm
    assert signal.getsignal(signal.SIGINT) is before and signal.getsignal(signal.SIGTERM) is before_term
    assert (tmp_path / "cut" / "checkpoints" / "last.ckpt").is_file()
    resumed = train(cfg, tmp_path / "cut")
    assert resumed.summary["resumed_from_epoch"] == 1 and resumed.history["epoch"].tolist() == [0, 1, 2]


@pytest.mark.slow
def test_results_do_not_depend_on_loader_workers_even_across_a_resume(synth_catalog, tmp_path):
    cfg = config(synth_catalog, "train.max_epochs=3", "train.embedding_cache=false")
    single = train(cfg, tmp_path / "single")
    workers = [*TINY, f"data.catalog={synth_catalog}", "train.embedding_cache=false", "data.num_workers=2"]
    train(load_config(None, [*workers, "train.max_epochs=2"]), tmp_path / "workers")
    resumed = train(load_config(None, [*workers, "train.max_epochs=3"]), tmp_path / "workers")
    assert resumed.summary["resumed_from_epoch"] == 2
    pd.testing.assert_frame_equal(frame(resumed.history), frame(single.history), rtol=1e-5)


@pytest.mark.slow
def test_resume_refuses_a_changed_configuration_and_resume_false_restarts(synth_catalog, tmp_path):
    run = tmp_path / "run"
    train(config(synth_catalog, "train.max_epochs=1"), run)
    with pytest.raises(SpiralArmsError, match=r"cannot resume.*data\.crop"):
        train(config(synth_catalog, "train.max_epochs=2", "data.crop=40"), run)
    fresh = train(config(synth_catalog, "train.max_epochs=1", "data.crop=40"), run, resume=False)
    assert fresh.summary["resumed_from_epoch"] is None and fresh.history["epoch"].tolist() == [0]
    assert load_config(run / "config.yaml").data.crop == 40


@pytest.mark.slow
def test_resume_refuses_other_galaxies_or_changed_images_and_the_cache_sees_them(synth_catalog, tmp_path):
    """A catalogue re-rendered or edited under the same path is other data: no resume, no stale features."""
    import os
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synth_catalog.parent, data)
    catalog = data / "catalog.csv"
    run = tmp_path / "run"
    first = train(config(catalog, "train.max_epochs=1"), run)
    assert first.summary["embedding_cache"]["reused"] is False
    again = train(config(catalog, "train.max_epochs=2"), run)  # the same data: resumes
    assert again.summary["resumed_from_epoch"] == 1 and again.summary["embedding_cache"]["reused"] is True

    table = pd.read_csv(catalog)
    table.iloc[1:].to_csv(catalog, index=False)  # one galaxy fewer
    with pytest.raises(SpiralArmsError, match=r"run: cannot resume, the galaxies, labels or split differ"):
        train(config(catalog, "train.max_epochs=3"), run)
    table.to_csv(catalog, index=False)

    image = data / table["file"].iloc[3]
    later = (run / "split.csv").stat().st_mtime_ns + 10**9
    os.utime(image, ns=(later, later))  # replaced after the run began
    with pytest.raises(SpiralArmsError, match=r"cannot resume, 1 image file\(s\) changed since the run began"):
        train(config(catalog, "train.max_epochs=3"), run)
    fresh = train(config(catalog, "train.max_epochs=1"), run, resume=False)
    assert fresh.summary["resumed_from_epoch"] is None
    assert fresh.summary["embedding_cache"]["reused"] is False  # its features are computed again


@pytest.mark.slow
def test_early_stopping_keeps_the_best_epoch(synth_catalog, tmp_path):
    result = train(config(synth_catalog, "train.max_epochs=30", "train.patience=1", "train.lr=1e-2"), tmp_path / "r")
    history = result.history
    assert result.summary["stopped_early"] and result.summary["epochs_run"] < 30
    best = int(history["val_accuracy"].to_numpy().argmax())  # first maximum: ties do not count as a gain
    assert result.summary["best_epoch"] == best
    assert len(history) == best + 2 == result.summary["epochs_run"]  # stopped after one epoch without a gain
    assert result.summary["best_score"] == pytest.approx(history["val_accuracy"].max())
    again = train(config(synth_catalog, "train.max_epochs=30", "train.patience=1", "train.lr=1e-2"), tmp_path / "r")
    assert again.summary["epochs_run"] == result.summary["epochs_run"], "a stopped run stays stopped"
    assert again.summary["stopped_early"] and again.metrics == result.metrics


@pytest.mark.slow
def test_trained_backbone_ignores_the_cache_and_updates_all_layers(synth_catalog, tmp_path):
    cfg = config(synth_catalog, "train.max_epochs=1", "model.frozen=false", "train.lr=1e-3")
    with pytest.warns(UserWarning, match="embedding_cache ignored"):
        result = train(cfg, tmp_path / "r")
    assert result.summary["embedding_cache"] == {"used": False}
    assert not (tmp_path / "r" / "cache").exists()
    trained, info = load_classifier(result.checkpoint)
    assert info["frozen"] is False
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # what train() seeds before building the model
        initial = build_classifier("test_efficientnet", 6, hidden=32, frozen=False, pretrained=False)
    changed = [
        name for name, p in trained.backbone.named_parameters()
        if not torch.equal(p, dict(initial.backbone.named_parameters())[name])
    ]
    assert changed, "backbone weights were trained"


@pytest.mark.slow
def test_train_leaves_process_state_as_it_found_it(synth_catalog, tmp_path):
    torch.manual_seed(42)
    state = torch.random.get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    train(config(synth_catalog, "train.max_epochs=1"), tmp_path / "r")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_train_on_a_given_table_and_classes(tmp_path, synth_catalog):
    from spiralarms.training.train import load_selection

    table, _ = load_selection(config(synth_catalog))
    binary = table[table["label"].isin(["2", "3"])]
    result = train(config(synth_catalog, "train.max_epochs=1", "data.cap=3"), tmp_path / "r", table=binary)
    assert result.classes == ("2", "3") and result.metrics["classes"] == ["2", "3"]
    assert max(result.summary["n_train"].values()) <= 3


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(SpiralArmsError, match="data.catalog"):
        train(load_config(None, TINY), tmp_path / "r")
    bogus = tmp_path / "bogus.ckpt"
    torch.save({"state_dict": {}}, bogus)
    with pytest.raises(SpiralArmsError, match="not a spiralarms checkpoint"):
        load_classifier(bogus)
    with pytest.raises(SpiralArmsError, match="no such checkpoint"):
        load_classifier(tmp_path / "missing.ckpt")


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "the file is empty"),
        (b"hi, not a checkpoint\n", "not a PyTorch checkpoint"),
        (b"\x80\x02}q\x00.", "not a PyTorch checkpoint"),  # a pickle header without torch's magic
        (bytes(range(200, 256)) * 4, "not a PyTorch checkpoint"),  # random bytes: no pickle opcode, not a refusal
    ],
)
def test_an_unreadable_checkpoint_says_why_in_words(tmp_path, content, reason):
    path = tmp_path / "model.ckpt"
    path.write_bytes(content)
    with pytest.raises(SpiralArmsError, match=f"model.ckpt: not a readable checkpoint: {reason}") as caught:
        read_checkpoint(path)
    assert "\n" not in str(caught.value)


def test_a_truncated_checkpoint_says_it_is_damaged(tmp_path):
    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, whole)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(SpiralArmsError, match="cut.ckpt: not a readable checkpoint: .*(damaged|ends early)"):
        read_checkpoint(cut)


def test_checkpoint_carries_the_model_card_and_loads_from_it_alone(tmp_path):
    module = ArmClassifierModule.from_model(tiny_model(), ["a", "b", "c"], backbone="test_efficientnet", crop=32)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        max_epochs=0, default_root_dir=tmp_path)
    trainer.strategy.connect(module)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    card = torch.load(path, weights_only=True)["hyper_parameters"]["card"]
    assert card["classes"] == ["a", "b", "c"] and card["hidden"] == 16 and card["frozen"] is True
    assert card["crop"] == 32 and card["backbone"] == "test_efficientnet"
    again = ArmClassifierModule.load_from_checkpoint(path)
    assert again.card == module.card
    for (name, a), b in zip(module.state_dict().items(), again.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
