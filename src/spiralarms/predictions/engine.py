"""The prediction engine: a survey of cutouts in, one row of probabilities per cutout out.

:func:`predict` runs ``lightning.Trainer.predict`` with
:meth:`~spiralarms.models.module.ArmClassifierModule.predict_step`, a
:class:`PredictionDataModule` that lists the input once and reads it in DataLoader
workers, and a :class:`~spiralarms.predictions.writing.PartWriter` that streams
finished shards to Parquet. The same code runs on a laptop CPU, one GPU, several
GPUs (DDP) and several nodes (``torchrun``, SLURM ``srun``): Lightning's launchers
start the processes, each reads its own shards, and rank 0 lists the input and
writes the final table.

Steps of a run:

1. ``prepare_data`` (rank 0 only): list the input (:mod:`.sources`), compare the run's
   identity (input, model and settings fingerprints) with an earlier run in the same
   output (:mod:`.output`), keep the parts that are whole, and write the manifest.
2. ``setup`` (every rank): read the manifest; the shards still to do are split over
   ranks and workers.
3. ``Trainer.predict``: batches of cutouts -> probabilities -> part files.
4. rank 0: join the parts into the output table (or leave the Parquet dataset).
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import lightning as L
import pandas as pd
import torch
from pydantic import Field

from spiralarms.config import Settings
from spiralarms.errors import SpiralArmsError, SpiralArmsWarning
from spiralarms.io.atomic import refuse_input_as_output, write_text
from spiralarms.runtime import build_trainer, call_trainer, quiet_lightning
from spiralarms.models.fusion import inference_batch_size
from spiralarms.models.loading import LoadedModel, load_model
from spiralarms.predictions.output import Manifest, OutputLayout, RunIdentity
from spiralarms.predictions.reading import SurveyImages, decode_on_device, worker_init
from spiralarms.predictions.sources import Listing, build_listing
from spiralarms.predictions.writing import PartWriter, RowProgress

__all__ = ["PredictionSettings", "PredictionSummary", "PredictionDataModule", "predict", "resolve_precision", "DECODERS"]

#: JPEG decoders: ``auto`` takes nvJPEG on a GPU and torchvision's libjpeg-turbo on a CPU.
DECODERS = ("auto", "torchvision", "pillow", "nvjpeg")


class PredictionSettings(Settings):
    """How to run a prediction.

    Attributes
    ----------
    batch_size : int or None
        Cutouts per forward pass; ``None``: 16 on a CPU, 64 on a GPU
        (:func:`~spiralarms.models.fusion.inference_batch_size`).
    num_workers : int or None
        DataLoader processes that read cutouts; ``None``: none on a CPU (the main
        process reads each batch with a thread per intra-op thread, between forward
        passes that use every core), up to 8 per GPU.
    shard_rows : int
        Rows per part file: the unit of writing and of resumption.
    tta : int
        Test-time augmentation views (1 = off, the paper's setting; up to 8).
    crop : int or None
        Centre crop; ``None`` takes the model's (a different value is warned about).
    grey : bool or None
        Greyscale input; ``None`` takes the model's.
    min_confidence : float or None
        Leave ``label`` empty where the top probability is below this.
    accelerator, devices, num_nodes, strategy
        Passed to ``lightning.Trainer`` (``strategy="ddp"`` for several GPUs or nodes).
    precision : str or None
        ``None``: bf16 mixed precision on a GPU that has it (else fp16 mixed), fp32
        on a CPU.
    channels_last : bool
        Channels-last memory layout for the network and its inputs.
    fold_batch_norm : bool
        Fold batch norms into the convolutions before them (same probabilities to
        float rounding; about 1.2x faster for EfficientNet-B0 on a CPU).
    compile : bool
        ``torch.compile`` the network first; short batches are padded to
        ``batch_size`` so that one graph serves the whole run. The first compilation
        on a machine takes about a minute on 2 CPU cores (later ones read
        inductor's on-disk cache in seconds); it pays off on long runs.
    decoder : {"auto", "torchvision", "pillow", "nvjpeg"}
    recursive : bool
        Descend into sub-folders of a folder input.
    image_dir, mapping : str or None
        Where a catalogue's images are.
    id_column : str or None
        The catalogue column that gives each row its ``id`` (default: ``id``,
        ``dr7objid``, ``objid`` or ``GalaxyID``, whichever it has first).
    overwrite : bool
        Replace an earlier run's output that differs, instead of refusing.
    progress : bool
    """

    batch_size: int | None = Field(None, ge=1)
    num_workers: int | None = Field(None, ge=0)
    shard_rows: int = Field(4096, ge=1)
    tta: int = Field(1, ge=1, le=8)
    crop: int | None = Field(None, ge=1)
    grey: bool | None = None
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)
    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    num_nodes: int = Field(1, ge=1)
    strategy: str = "auto"
    precision: str | None = None
    channels_last: bool = True
    fold_batch_norm: bool = True
    compile: bool = False
    decoder: Literal["auto", "torchvision", "pillow", "nvjpeg"] = "auto"
    recursive: bool = False
    image_dir: str | None = None
    mapping: str | None = None
    id_column: str | None = None
    overwrite: bool = False
    progress: bool = True


@dataclass
class PredictionSummary:
    """What a prediction run did.

    Attributes
    ----------
    out : Path
        The output table or dataset folder.
    n_inputs : int
        Rows written (one per input).
    n_errors : int
        Rows whose image could not be read (``error`` not empty).
    n_resumed : int
        Rows taken from the parts of an earlier, interrupted run.
    counts : dict
        Predicted label counts, in class order (rows left unlabelled are not counted).
    up_to_date : bool
        Whether the output was already complete for this model, input and settings.
    seconds : float
        Wall time of the run.
    is_global_zero : bool
        False in the other processes of a distributed run (which print nothing).
    """

    out: Path
    n_inputs: int = 0
    n_errors: int = 0
    n_resumed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    up_to_date: bool = False
    seconds: float = 0.0
    is_global_zero: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        values = asdict(self)
        values["out"] = str(self.out)
        values.pop("is_global_zero")
        return values


def resolve_precision(accelerator: str, precision: str | None) -> str:
    """The Trainer precision: as given, else bf16/fp16 mixed on a GPU and fp32 on a CPU."""
    if precision not in (None, "auto"):
        return str(precision)
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if gpu and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def _uses_gpu(accelerator: str) -> bool:
    return torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")


def _default_workers(gpu: bool) -> int:
    # On a CPU the forward pass already uses every core: a worker process decoding
    # beside it preempts one of its OpenMP threads and stalls the others at the next
    # barrier (the forward ran ~12 % slower with one worker on 2 cores, for a decode
    # that costs ~6 % of the time). Reading in the main process, on all cores between
    # forward passes, costs less (see docs/predict.md).
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 8) if gpu else 0


class PredictionDataModule(L.LightningDataModule):
    """Lists the input once (rank 0), then serves each rank its shards.

    Parameters
    ----------
    input_path : path
        Folder, catalogue or prepared store.
    layout : OutputLayout
    identity : RunIdentity
        Model and settings parts of the run's identity (the input part is added here).
    settings : PredictionSettings
    crop, grey, grey_method, channels
        The pre-processing: centre crop, conversion to grey, and the model's input channels.
    """

    def __init__(self, input_path, layout: OutputLayout, identity: RunIdentity, settings: PredictionSettings, *,
                 crop: int | None, grey: bool, grey_method: str, channels: int, classes):
        super().__init__()
        self.prepare_data_per_node = False  # one listing, on a filesystem all nodes share
        # A rank may get no shard (fewer shards than processes): it then predicts nothing.
        self.allow_zero_length_dataloader_with_multiple_devices = True
        self.input_path = input_path if isinstance(input_path, pd.DataFrame) else Path(input_path)
        self.layout, self.identity, self.settings = layout, identity, settings
        self.crop, self.grey, self.grey_method, self.channels = crop, grey, grey_method, int(channels)
        self.classes = tuple(classes)
        self.listing: Listing | None = None
        self.todo: list[tuple[int, int, int]] = []
        self.done_rows = 0
        self.up_to_date = False
        self.created_work_dir = False
        self.lock = None

    def release(self) -> None:
        """Let other runs write this output (rank 0, once the run has ended)."""
        if self.lock is not None:
            self.lock.release()

    # -- rank 0 -------------------------------------------------------------------
    def prepare_data(self) -> None:
        """List the input and reconcile it with what the output already holds."""
        layout = self.layout
        # Before anything is read or removed: a second run into this output stops here.
        self.lock = layout.acquire()
        try:
            layout.error_path.unlink(missing_ok=True)
            self._prepare()
        except BaseException as exc:
            if layout.work_dir.is_dir():
                write_text(layout.error_path, str(exc) if isinstance(exc, SpiralArmsError) else repr(exc))
            raise

    def _prepare(self) -> None:
        layout, s = self.layout, self.settings
        earlier = layout.read_manifest() if layout.existing_output() else None
        if layout.existing_output() and earlier is None and not s.overwrite:
            raise SpiralArmsError(
                f"{layout.out}: exists and holds no record of the model and inputs that made it; "
                "use --overwrite to replace it"
            )
        self.created_work_dir = not layout.work_dir.exists()
        layout.work_dir.mkdir(parents=True, exist_ok=True)
        # A resumed run keeps the shards of the run it resumes (the shard size does
        # not change any result, only the part files).
        shard_rows = int(earlier.identity.settings.get("shard_rows", s.shard_rows)) if earlier else s.shard_rows
        listing = build_listing(
            self.input_path,
            layout.work_dir.parent / f".{layout.work_dir.name}.inputs.{os.getpid()}.parquet",
            shard_rows=shard_rows,
            recursive=s.recursive,
            image_dir=s.image_dir,
            mapping=s.mapping,
            id_column=s.id_column,
            progress=s.progress,
            exclude=layout.own_files(),
        )
        identity = self._identity(listing)
        if earlier is not None:
            differences = identity.differences(earlier.identity)
            if differences and not s.overwrite:
                listing.path.unlink(missing_ok=True)
                raise SpiralArmsError(
                    f"{layout.out}: holds predictions of another run; differs in {'; '.join(differences[:3])}; "
                    "use --overwrite to replace it, or another output"
                )
            if differences:
                layout.clear()
                layout.work_dir.mkdir(parents=True, exist_ok=True)
                earlier = None
        if earlier is not None and earlier.complete and layout.single and not (layout.work_dir / "_manifest.json").exists():
            # The finished table is there already: nothing to redo.
            listing.path.unlink(missing_ok=True)
            if self.created_work_dir:
                layout.work_dir.rmdir()
            return
        if earlier is not None and earlier.complete and not layout.single and all(
            layout.part_path(k).is_file() for k in range(earlier.n_shards)
        ):
            listing.path.unlink(missing_ok=True)  # a finished dataset folder, every part in place
            return
        os.replace(listing.path, layout.listing_path)
        listing = replace(listing, path=layout.listing_path)
        done = layout.valid_parts(listing.path, listing.n_shards, listing.shard_rows, listing.n_rows)
        resumed = sum(listing.shard_bounds(k)[1] - listing.shard_bounds(k)[0] for k in done)
        manifest = Manifest(
            identity=identity,
            columns=["id", "file", *[f"p_{c}" for c in self.classes], "label", "error"],
            n_shards=listing.n_shards,
            resumed_rows=resumed,
        )
        layout.write_manifest(manifest)

    def _identity(self, listing: Listing) -> RunIdentity:
        return RunIdentity(
            input={"kind": listing.kind, "source": listing.source, "n_rows": listing.n_rows,
                   "fingerprint": listing.fingerprint, "store": listing.store},
            model=self.identity.model,
            settings={**self.identity.settings, "shard_rows": listing.shard_rows},
        )

    # -- every rank ---------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Read the plan that rank 0 wrote: the listing and the shards left to do."""
        layout = self.layout
        if layout.error_path.is_file():
            raise SpiralArmsError(layout.error_path.read_text().strip())
        manifest = layout.read_manifest() if layout.work_dir.is_dir() else None
        if manifest is None or not layout.listing_path.is_file():
            self.up_to_date, self.todo = True, []
            return
        ident = manifest.identity.input
        self.listing = Listing(
            path=layout.listing_path, kind=ident["kind"], source=ident["source"], n_rows=int(ident["n_rows"]),
            shard_rows=int(manifest.identity.settings["shard_rows"]), fingerprint=ident["fingerprint"],
            store=ident.get("store"),
        )
        self.todo = [
            (k, *self.listing.shard_bounds(k))
            for k in range(self.listing.n_shards)
            if not layout.part_path(k).is_file()
        ]
        self.done_rows = self.listing.n_rows - sum(stop - start for _, start, stop in self.todo)

    def predict_dataloader(self):
        s = self.settings
        gpu = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        workers = s.num_workers if s.num_workers is not None else _default_workers(gpu)
        decoder = "pillow" if s.decoder == "pillow" else "torchvision"
        dataset = SurveyImages(
            self.layout.listing_path if self.listing is not None else "",
            self.todo,
            batch_size=s.batch_size,
            crop=self.crop,
            grey=self.grey,
            grey_method=self.grey_method,
            channels=self.channels,
            store=self.listing.store if self.listing is not None else None,
            decode_on_device=gpu and s.decoder in ("auto", "nvjpeg"),
            decoder=decoder,
            threads=1 if workers else torch.get_num_threads(),
        )
        if self.trainer is not None:
            dataset.rank, dataset.world_size = self.trainer.global_rank, self.trainer.world_size
        workers = min(workers, max(1, len(dataset.my_shards())))
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=None,
            num_workers=workers if self.todo else 0,
            pin_memory=gpu,
            prefetch_factor=4 if workers and self.todo else None,
            worker_init_fn=worker_init if workers else None,
        )

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, dict) and "jpeg" in batch:
            device = self.trainer.strategy.root_device
            return decode_on_device(batch, device, self.crop, self.grey, self.grey_method, self.channels)
        return batch


def _pre_processing(card, settings: PredictionSettings) -> tuple[int | None, bool]:
    """The crop and grey setting to use: the model's, or an explicit one (warned about).

    A colour model can be fed grey cutouts (repeated into three channels); a grey
    model cannot be fed colour.
    """
    crop, grey = card.crop, card.grey
    if settings.crop is not None and settings.crop != card.crop:
        warnings.warn(f"--crop {settings.crop} differs from the model's training crop {card.crop}", SpiralArmsWarning, stacklevel=3)
        crop = settings.crop
    if settings.grey is not None and settings.grey != card.grey:
        if card.grey:
            raise SpiralArmsError("--colour: the model was trained on one grey channel and cannot take colour cutouts")
        warnings.warn("--grey differs from the model's training input (colour); grey cutouts are repeated into RGB",
                      SpiralArmsWarning, stacklevel=3)
        grey = True
    return crop, grey


def predict(
    model: str | os.PathLike | LoadedModel,
    inputs: str | os.PathLike,
    out: str | os.PathLike,
    settings: PredictionSettings | None = None,
    **overrides: Any,
) -> PredictionSummary:
    """Predict the arm-number class of every cutout of a folder, catalogue or store.

    Parameters
    ----------
    model : path, str or LoadedModel
        A checkpoint, run folder, exported model folder or ``hf-hub:owner/name``
        (:func:`~spiralarms.models.loading.load_model`).
    inputs : path or pandas.DataFrame
        A folder of cutouts (JPEG, PNG, FITS), a catalogue (CSV, Parquet, FITS) with
        a path column or ids, a prepared store, or a table with ``id`` and ``file``.
    out : path
        A table file (``.parquet``, ``.csv``, ``.csv.gz``) or a folder for a Parquet
        dataset (see :mod:`spiralarms.predictions.output`). Columns: ``id``,
        ``file``, ``p_<class>``, ``label``, ``error``; one row per input, in input order.
    settings : PredictionSettings, optional
    **overrides
        Fields of :class:`PredictionSettings`, e.g. ``tta=8``, ``accelerator="gpu"``.

    Returns
    -------
    PredictionSummary

    Raises
    ------
    SpiralArmsError
        On bad input, an output that cannot be written, or an output that holds the
        predictions of another model, input or settings (unless ``overwrite``).
    """
    started = time.perf_counter()
    base = (settings or PredictionSettings()).to_dict()
    settings = PredictionSettings.from_mapping({**base, **overrides}, source="prediction settings")
    if settings.batch_size is None:
        settings.batch_size = inference_batch_size(_uses_gpu(settings.accelerator))
    if settings.decoder == "nvjpeg" and not _uses_gpu(settings.accelerator):
        warnings.warn("--decoder nvjpeg decodes on a GPU, and none is used: JPEGs are decoded by torchvision on the CPU",
                      SpiralArmsWarning, stacklevel=2)
    layout = OutputLayout(out)
    layout.check_target()
    refuse_input_as_output(out, inputs, settings.mapping)
    if not isinstance(inputs, pd.DataFrame) and not Path(inputs).expanduser().exists():
        raise SpiralArmsError(f"{inputs}: no such file or folder")
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    card = loaded.card
    crop, grey = _pre_processing(card, settings)
    precision = resolve_precision(settings.accelerator, settings.precision)
    if settings.fold_batch_norm and isinstance(model, LoadedModel):
        loaded = replace(loaded, module=copy.deepcopy(loaded.module))  # the caller's module stays trainable
    module = loaded.module.configure_prediction(
        tta=settings.tta, channels_last=settings.channels_last, fold_batch_norm=settings.fold_batch_norm,
        compile=settings.compile, batch_size=settings.batch_size,
    )
    identity = RunIdentity(
        input={},
        model={"fingerprint": loaded.fingerprint, "source": loaded.source, "backbone": card.backbone,
               "classes": list(card.classes)},
        settings={"crop": crop, "grey": grey, "grey_method": card.grey_method, "tta": settings.tta,
                  "precision": precision, "min_confidence": settings.min_confidence},
    )
    datamodule = PredictionDataModule(
        inputs, layout, identity, settings, crop=crop, grey=grey, grey_method=card.grey_method,
        channels=1 if card.grey else 3, classes=card.classes,
    )
    with quiet_lightning():
        return _run(layout, datamodule, module, settings, precision, card, started)


def _run(layout, datamodule, module, settings, precision, card, started) -> PredictionSummary:
    writer = _LazyPartWriter(datamodule, card.classes, settings.min_confidence)
    progress = _LazyProgress(datamodule, settings.progress)
    trainer = build_trainer(
        accelerator=settings.accelerator,
        devices=settings.devices,
        num_nodes=settings.num_nodes,
        strategy=settings.strategy,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        callbacks=[writer, progress],
    )
    try:
        call_trainer(trainer.predict, module, datamodule=datamodule, return_predictions=False)
        # Every rank has written its parts before rank 0 joins them. Here, not in the
        # writer's on_predict_end: Lightning skips the hooks of a rank that got no shard.
        trainer.strategy.barrier("spiralarms-predict-end")
    except BaseException:
        if trainer.is_global_zero:
            _remove_if_empty(layout, datamodule)
        datamodule.release()
        raise
    if not trainer.is_global_zero:
        return PredictionSummary(out=layout.out, is_global_zero=False)
    try:
        return _finalize(layout, time.perf_counter() - started)
    finally:
        datamodule.release()


def _remove_if_empty(layout: OutputLayout, datamodule: PredictionDataModule) -> None:
    """After a failure, remove a parts folder this run created and filled with no part."""
    if datamodule.created_work_dir and layout.single and layout.work_dir.is_dir():
        if not any(layout.work_dir.glob("part-*.parquet")):
            import shutil

            shutil.rmtree(layout.work_dir, ignore_errors=True)


def _finalize(layout: OutputLayout, seconds: float) -> PredictionSummary:
    """Join the parts (rank 0) and summarise; an already complete output is read as is."""
    working = layout.manifest_path.is_file()
    manifest = layout.read_manifest()
    if manifest is None:
        raise SpiralArmsError(f"{layout.out}: no prediction manifest after the run")
    up_to_date = not working or manifest.complete
    if working and not manifest.complete:
        missing = [k for k in range(manifest.n_shards) if not layout.part_path(k).is_file()]
        if missing:
            raise SpiralArmsError(
                f"{layout.work_dir}: {len(missing)} of {manifest.n_shards} shards unfinished (first {missing[0]}); "
                "rerun the same command to resume"
            )
        resumed = manifest.resumed_rows
        manifest = layout.finish(manifest)
        up_to_date = False
    else:
        resumed = manifest.identity.input.get("n_rows", 0) if up_to_date else manifest.resumed_rows
    classes = [c.removeprefix("p_") for c in manifest.columns if c.startswith("p_")]
    return PredictionSummary(
        out=layout.out,
        n_inputs=int(manifest.identity.input["n_rows"]),
        n_errors=manifest.n_errors,
        n_resumed=int(resumed),
        counts={c: int(manifest.counts.get(c, 0)) for c in classes},
        up_to_date=up_to_date,
        seconds=seconds,
    )


class _LazyPartWriter(PartWriter):
    """A PartWriter that takes its listing from the data module once it is set up."""

    def __init__(self, datamodule: PredictionDataModule, classes, min_confidence):
        self.datamodule = datamodule
        super().__init__(datamodule.layout, None, classes, min_confidence)

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.listing = self.datamodule.listing


class _LazyProgress(RowProgress):
    def __init__(self, datamodule: PredictionDataModule, enabled: bool):
        self.datamodule = datamodule
        super().__init__(0, 0, enabled)

    def on_predict_start(self, trainer, pl_module) -> None:
        dm = self.datamodule
        if dm.listing is None or not dm.todo:
            return
        if trainer.world_size == 1:
            self.total, self.initial = dm.listing.n_rows, dm.done_rows
        else:  # rank 0 counts its own share
            loaders = trainer.predict_dataloaders
            dataset = (loaders[0] if isinstance(loaders, (list, tuple)) else loaders).dataset
            self.total = sum(stop - start for _, start, stop in dataset.my_shards())
            self.initial, self.desc = 0, f"predict (rank 0 of {trainer.world_size})"
        super().on_predict_start(trainer, pl_module)
