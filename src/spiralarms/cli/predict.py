"""``spiralarms evaluate``, ``predict`` and ``export``: a trained model put to work."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from spiralarms.cli.common import echo_json
from spiralarms.runtime import lightning_banners_off
from spiralarms._words import counted

__all__ = ["Accelerator", "Decoder", "Precision", "evaluate", "export", "predict"]


def evaluate(
    run: Annotated[Path, typer.Argument(help="A run folder written by 'spiralarms train'.")],
    out: Annotated[Optional[Path], typer.Option(help="Where to write (default: the run folder).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Images per forward pass (default: 16 on a CPU, 64 on a GPU).")] = None,
    workers: Annotated[int, typer.Option(min=0, help="Image-decoding worker processes.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print metrics.json to stdout.")] = False,
) -> None:
    """Evaluate a run on its validation set: metrics.json, confusion matrices, Markdown table."""
    from spiralarms.evaluation.evaluate import evaluate_run

    metrics = evaluate_run(run, out, batch_size=batch_size, num_workers=workers, progress=not json_out)
    if json_out:
        echo_json(metrics)
        return
    from spiralarms.evaluation.evaluation_report import metrics_markdown

    typer.echo(metrics_markdown(metrics))
    typer.echo(f"wrote metrics.json, metrics.md and confusion matrices to {out or run}")


class Accelerator(str, Enum):
    """``--accelerator``: where to run."""

    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"
    cuda = "cuda"
    mps = "mps"


class Precision(str, Enum):
    """``--precision``: Lightning's precision names."""

    auto = "auto"
    fp32 = "32-true"
    bf16_mixed = "bf16-mixed"
    fp16_mixed = "16-mixed"
    bf16 = "bf16-true"
    fp16 = "16-true"


class Decoder(str, Enum):
    """``--decoder``: the JPEG decoder."""

    auto = "auto"
    torchvision = "torchvision"
    pillow = "pillow"
    nvjpeg = "nvjpeg"


def _devices(value: str) -> int | str:
    """``--devices``: "auto", a count (-1 for all) or a list of indices such as "0,1"."""
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        return text


def predict(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="A checkpoint (.ckpt), a run folder, an exported model folder, or hf-hub:owner/name.")],
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="A folder of cutouts (JPEG, PNG, FITS), a catalogue (CSV, Parquet, FITS) with a file or id column, a prepared store, or one cutout file.")],
    out: Annotated[Path, typer.Option(help="Output: a .parquet or .csv file, or a folder (no table suffix) for a Parquet dataset.")],
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Cutouts per forward pass (default: 16 on a CPU, 64 on a GPU).")] = None,
    workers: Annotated[Optional[int], typer.Option(min=0, help="Decoding worker processes (default: none on a CPU, where the main process reads with a thread per core between forward passes; up to 8 per GPU).")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Rows per part file (the unit of writing and of resumption).")] = 4096,
    tta: Annotated[int, typer.Option(min=1, max=8, help="Test-time augmentation: exact rotations and flips averaged (1 = off, the paper's setting).")] = 1,
    image_dir: Annotated[Optional[Path], typer.Option(help="Folder of the images named by a catalogue's ids or mapping.")] = None,
    mapping: Annotated[Optional[Path], typer.Option(help="GZ2 filename mapping table (objid, sample, asset_id).")] = None,
    id_column: Annotated[Optional[str], typer.Option(help="A catalogue's column to take the ids from (default: id, dr7objid, objid or GalaxyID).")] = None,
    recursive: Annotated[bool, typer.Option("--recursive", help="Descend into sub-folders of a folder input.")] = False,
    crop: Annotated[Optional[int], typer.Option(min=1, help="Centre crop (default: the model's; a different value is warned about).")] = None,
    grey: Annotated[Optional[bool], typer.Option("--grey/--colour", help="Grey or colour input (default: the model's).", show_default=False)] = None,
    min_confidence: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="Leave 'label' empty where the top probability is below this (probabilities are kept).")] = None,
    accelerator: Annotated[Accelerator, typer.Option(help="Where to run.")] = Accelerator.auto,
    devices: Annotated[str, typer.Option(help="Devices: auto, a count (-1 for all) or indices such as 0,1.")] = "auto",
    num_nodes: Annotated[int, typer.Option(min=1, help="Nodes of a cluster run (torchrun, SLURM srun).")] = 1,
    strategy: Annotated[str, typer.Option(help="Lightning strategy: auto, ddp, ddp_spawn, ...")] = "auto",
    precision: Annotated[Precision, typer.Option(help="auto: bf16 mixed on GPUs that have it, fp32 on CPUs.")] = Precision.auto,
    channels_last: Annotated[bool, typer.Option("--channels-last/--no-channels-last", help="Channels-last memory layout (faster convolutions).")] = True,
    fold_batch_norm: Annotated[bool, typer.Option("--fold-batch-norm/--no-fold-batch-norm", help="Fold batch norms into the convolutions before them (same probabilities to rounding, faster).")] = True,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the network first (slow start; for long runs).")] = False,
    decoder: Annotated[Decoder, typer.Option(help="JPEG decoder: auto takes nvJPEG on a GPU, torchvision (libjpeg-turbo) on a CPU.")] = Decoder.auto,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Reuse the finished parts of an interrupted run of the same model, input and settings.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an output made by another model, input or settings.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Predict arm-number probabilities for every input; unreadable inputs keep their row with an error."""
    from spiralarms.predictions import predict as run_prediction

    lightning_banners_off()
    summary = run_prediction(
        model,
        input_path,
        out,
        batch_size=batch_size,
        num_workers=workers,
        shard_rows=chunk_size,
        tta=tta,
        image_dir=str(image_dir) if image_dir is not None else None,
        mapping=str(mapping) if mapping is not None else None,
        id_column=id_column,
        recursive=recursive,
        crop=crop,
        grey=grey,
        min_confidence=min_confidence,
        accelerator=accelerator.value,
        devices=_devices(devices),
        num_nodes=num_nodes,
        strategy=strategy,
        precision=None if precision is Precision.auto else precision.value,
        channels_last=channels_last,
        fold_batch_norm=fold_batch_norm,
        compile=compile_model,
        decoder=decoder.value,
        overwrite=overwrite or not resume,
        progress=not json_out,
    )
    if not summary.is_global_zero:
        return
    if json_out:
        echo_json(summary.to_dict())
        return
    state = "already up to date: " if summary.up_to_date else "wrote "
    typer.echo(
        f"{state}{counted(summary.n_inputs, 'row')} in {summary.out} ({summary.n_errors} unreadable, kept with their error"
        + (f"; {summary.n_resumed} resumed" if summary.n_resumed and not summary.up_to_date else "")
        + ")"
    )
    labelled = sum(summary.counts.values())
    abstained = summary.n_inputs - summary.n_errors - labelled
    typer.echo("  " + ", ".join(f"m={k}: {v}" for k, v in summary.counts.items())
               + (f"; {abstained} below --min-confidence, label left empty" if abstained > 0 else ""))


def export(
    model: Annotated[str, typer.Argument(metavar="RUN", help="A run folder or checkpoint.")],
    out: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to write: model.safetensors, config.json, README.md.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an exported model already there.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Export a trained model as a hub-ready folder (upload it with huggingface-cli upload)."""
    from spiralarms.predictions import export_model, load_model

    folder = export_model(model, out, overwrite=overwrite)
    if json_out:
        loaded = load_model(folder)
        echo_json({"out": str(folder), "fingerprint": loaded.fingerprint, "card": loaded.card.to_dict()})
        return
    typer.echo(f"wrote {folder}/model.safetensors, config.json and README.md; predict with it: spiralarms predict {folder} INPUT --out FILE")
