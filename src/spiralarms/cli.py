"""The ``spiralarms`` command line (contract in SPEC.md: flags, JSON and exit codes).

Every command takes ``--help``; bad input ends in a one-line ``error: ...`` on
standard error and exit status 1 (typer's own usage errors exit with 2).
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from spiralarms import __version__
from spiralarms.errors import SpiralArmsError

app = typer.Typer(
    name="spiralarms",
    help="Classify spiral galaxies by their number of spiral arms (Lee, Soo & Sharoni).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str) -> None:
    """Print a one-line error to stderr and exit with status 1."""
    message = " ".join(str(message).split())  # one line, whatever the exception held
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def user_errors(func):
    """Turn the errors a user can cause into a one-line message and exit 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        warnings.formatwarning = _one_line_warning
        try:
            return func(*args, **kwargs)
        except SpiralArmsError as exc:
            _fail(str(exc))
        except FileNotFoundError as exc:
            _fail(f"{exc.filename or exc}: no such file or directory")
        except PermissionError as exc:
            _fail(f"{exc.filename or exc}: permission denied")
        except OSError as exc:  # the filesystem said no: full disk, not a folder, read-only, ...
            where = exc.filename or "output"
            if exc.errno == 28:
                _fail(f"{where}: no space left on the device")
            _fail(f"{where}: {exc.strerror or exc}")
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(code=130) from None

    return wrapper


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as one line, ``warning: ...``, without the source line."""
    return "warning: " + " ".join(str(message).split()) + "\n"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"spiralarms {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Classify spiral galaxies by their number of spiral arms (Lee, Soo & Sharoni)."""


@app.command()
@user_errors
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder: images/<dr7objid>.jpg and catalog.csv are written here.")],
    n_per_class: Annotated[int, typer.Option("--n-per-class", min=1, help="Galaxies per T11 class (1, 2, 3, 4, 5+, ?).")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same bytes.")] = 0,
    size: Annotated[int, typer.Option(min=32, help="Image side in pixels (GZ2 cutouts are 424).")] = 424,
    masks: Annotated[bool, typer.Option("--masks/--no-masks", help="Also write galaxy/arm masks (masks/<id>.npz).")] = False,
    preset: Annotated[
        Optional[str], typer.Option(help="Renderer preset: crisp (the default) or sdss (fitted to SDSS cutouts); docs/synthetic.md.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Render synthetic spiral galaxies with a known arm number, in the GZ2 schema."""
    from spiralarms.data.synthetic import synthesize_dataset

    catalog = synthesize_dataset(
        out, n_per_class=n_per_class, seed=seed, size=size, write_masks=masks, progress=not json_out, preset=preset
    )
    counts = catalog["true_class"].value_counts().reindex(_classes(), fill_value=0)
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "out": str(out),
                    "n_images": int(len(catalog)),
                    "catalog": str(Path(out) / "catalog.csv"),
                    "counts": {k: int(v) for k, v in counts.items()},
                }
            )
        )
    else:
        typer.echo(f"wrote {len(catalog)} galaxies to {out}/images and {out}/catalog.csv")


def _classes(merge: str | None = None) -> tuple[str, ...]:
    from spiralarms.catalog.classes import arm_classes

    return arm_classes(merge)


@app.command()
@user_errors
def select(
    catalog: Annotated[Path, typer.Argument(help="GZ2 or Kaggle catalogue (CSV, CSV.gz, Parquet or FITS).")],
    schema: Annotated[str, typer.Option(help="Catalogue schema: gz2, kaggle or auto (from the columns).")] = "auto",
    merge: Annotated[Optional[str], typer.Option(help="Merge classes: 3,4 or 4,5+.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the selected galaxies with their label (CSV or Parquet by suffix).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object (SPEC contract).")] = False,
) -> None:
    """Apply the paper's clean-sample cuts (section 2.1) and label each galaxy."""
    from spiralarms.catalog.readers import read_catalog, write_table
    from spiralarms.catalog.selection import select_clean_sample

    if schema not in ("auto", "gz2", "kaggle"):
        raise SpiralArmsError(f"--schema {schema!r}: choose gz2, kaggle or auto")
    _classes(merge)  # a bad --merge fails before the catalogue is read
    table, resolved_schema = read_catalog(catalog, schema=schema, return_schema=True)
    selection = select_clean_sample(table, schema=resolved_schema, merge=merge)
    if out is not None:
        write_table(selection.selected, out)
    if json_out:
        typer.echo(json.dumps(selection.summary()))
        return
    _print_selection(catalog, resolved_schema, selection, out)


def _print_selection(catalog: Path, schema: str, selection, out: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from spiralarms.catalog.selection import CUT_DESCRIPTIONS

    console = Console()
    table = Table(title=f"Clean sample ({schema} schema)")
    table.add_column("class", justify="left")
    table.add_column("galaxies", justify="right")
    table.add_column("share", justify="right")
    n_sel = max(selection.n_selected, 1)
    for name, count in selection.counts.items():
        table.add_row(name, str(count), f"{100 * count / n_sel:.1f} %")
    table.add_row("total", str(selection.n_selected), "", style="bold")
    console.print(table)
    console.print(
        f"{catalog}: {selection.n_input} rows read, {selection.n_selected} selected, "
        f"{selection.n_missing} not selectable (missing values in a column a cut reads)"
    )
    for cut, n_removed in selection.removed_by_cut.items():
        console.print(f"  cut {cut} ({CUT_DESCRIPTIONS[schema][cut]}): removed {n_removed}")
    for note in selection.notes:
        console.print(f"  note: {note}")
    if out is not None:
        console.print(f"wrote {out}")


@app.command()
@user_errors
def train(
    config: Annotated[
        Optional[str],
        typer.Option(help="YAML config file, or a shipped config's name: b0-zoobot, v2m-imagenet, demo-lite0."),
    ] = None,
    catalog: Annotated[
        Optional[Path], typer.Option(help="GZ2/Kaggle catalogue or a prepared store (sets data.catalog).")
    ] = None,
    weights: Annotated[
        Optional[Path], typer.Option(help="Local backbone weights file (sets model.weights), e.g. Zoobot's encoder.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Run folder (checkpoints, resolved config, metrics.json).")] = Path("runs/run"),
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a config key, e.g. --set train.max_epochs=10 (repeatable)."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from the run folder's last checkpoint.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print metrics.json to stdout.")] = False,
) -> None:
    """Train a classifier (the paper's B0 or V2M recipe, or any backbone) into a run folder."""
    from spiralarms.config import load_config
    from spiralarms.training import train as train_run

    overrides = list(set_ or [])
    if catalog is not None:
        overrides.append(f"data.catalog={catalog}")
    if weights is not None:
        overrides.append(f"model.weights={weights}")
    resolved = load_config(config, overrides=overrides)
    if json_out:
        resolved.train.progress = False
    _quiet_lightning()
    result = train_run(resolved, out, resume=resume)
    if json_out:
        typer.echo(json.dumps(result.metrics))
        return
    from spiralarms.evaluation.evaluation_report import metrics_markdown

    typer.echo(metrics_markdown(result.metrics))
    typer.echo(f"run folder: {out} (best checkpoint {result.checkpoint})")


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("spiralarms-demo"),
    n_per_class: Annotated[int, typer.Option("--n-per-class", min=5, help="Synthetic galaxies per class.")] = 250,
    seed: Annotated[int, typer.Option(help="Seed of the galaxies, split and training.")] = 0,
    preset: Annotated[
        Optional[str], typer.Option(help="Renderer preset of the galaxies: crisp (the default) or sdss (docs/synthetic.md).")
    ] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Override a config key (repeatable).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary at the end.")] = False,
) -> None:
    """The main job on the embedded default: synthetic galaxies -> cuts -> training -> evaluation -> report."""
    from spiralarms.demo import run_demo

    _quiet_lightning()
    result = run_demo(
        out,
        n_per_class=n_per_class,
        seed=seed,
        preset=preset,
        overrides=tuple(set_ or ()),
        progress=not json_out,
        log=(lambda *_: None) if json_out else typer.echo,
    )
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "out": str(result.out),
                    "macro_f1": result.metrics["macro_f1"],
                    "accuracy": result.metrics["accuracy"],
                    "seconds": result.wall_seconds,
                }
            )
        )


def _quietly(func):
    """Run a command with Lightning's start-up tips kept off the terminal."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        _quiet_lightning()
        return func(*args, **kwargs)

    return wrapper


def _quiet_lightning() -> None:
    """Keep Lightning's start-up tips off the terminal; warnings and errors still show."""
    import logging

    from spiralarms.logs import LIGHTNING_LOGGERS

    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@app.command()
@user_errors
def evaluate(
    run: Annotated[Path, typer.Argument(help="A run folder written by 'spiralarms train'.")],
    out: Annotated[Optional[Path], typer.Option(help="Where to write (default: the run folder).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 64,
    workers: Annotated[int, typer.Option(min=0, help="Image-decoding worker processes.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print metrics.json to stdout.")] = False,
) -> None:
    """Evaluate a run on its validation set: metrics.json, confusion matrices, Markdown table."""
    from spiralarms.evaluation.evaluate import evaluate_run

    metrics = evaluate_run(run, out, batch_size=batch_size, num_workers=workers, progress=not json_out)
    if json_out:
        typer.echo(json.dumps(metrics))
        return
    from spiralarms.evaluation.evaluation_report import metrics_markdown

    typer.echo(metrics_markdown(metrics))
    typer.echo(f"wrote metrics.json, metrics.md and confusion matrices to {out or run}")


class Accelerator(str, Enum):
    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"
    cuda = "cuda"
    mps = "mps"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "32-true"
    bf16_mixed = "bf16-mixed"
    fp16_mixed = "16-mixed"
    bf16 = "bf16-true"
    fp16 = "16-true"


class Decoder(str, Enum):
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


@app.command()
@user_errors
def predict(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="A checkpoint (.ckpt), a run folder, an exported model folder, or hf-hub:owner/name.")],
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="A folder of cutouts (JPEG, PNG, FITS), a catalogue (CSV, Parquet, FITS) with a file or id column, or a prepared store.")],
    out: Annotated[Path, typer.Option(help="Output: a .parquet or .csv file, or a folder (no table suffix) for a Parquet dataset.")],
    batch_size: Annotated[int, typer.Option(min=1, help="Cutouts per forward pass.")] = 64,
    workers: Annotated[Optional[int], typer.Option(min=0, help="Decoding worker processes (default: half the cores on a CPU, up to 8 per GPU).")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Rows per part file (the unit of writing and of resumption).")] = 4096,
    tta: Annotated[int, typer.Option(min=1, max=8, help="Test-time augmentation: exact rotations and flips averaged (1 = off, the paper's setting).")] = 1,
    image_dir: Annotated[Optional[Path], typer.Option(help="Folder of the images named by a catalogue's ids or mapping.")] = None,
    mapping: Annotated[Optional[Path], typer.Option(help="GZ2 filename mapping table (objid, sample, asset_id).")] = None,
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
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the network first (slow start; for long runs).")] = False,
    decoder: Annotated[Decoder, typer.Option(help="JPEG decoder: auto takes nvJPEG on a GPU, torchvision (libjpeg-turbo) on a CPU.")] = Decoder.auto,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Reuse the finished parts of an interrupted run of the same model, input and settings.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an output made by another model, input or settings.")] = False,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Let an old checkpoint of your own unpickle Python objects (can run code: never for files from others).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Predict arm-number probabilities for every input; unreadable inputs keep their row with an error."""
    from spiralarms.predictions import load_model
    from spiralarms.predictions import predict as run_prediction

    _quiet_lightning()
    summary = run_prediction(
        load_model(model, allow_pickle=allow_pickle) if allow_pickle else model,
        input_path,
        out,
        batch_size=batch_size,
        num_workers=workers,
        shard_rows=chunk_size,
        tta=tta,
        image_dir=str(image_dir) if image_dir is not None else None,
        mapping=str(mapping) if mapping is not None else None,
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
        compile=compile_model,
        decoder=decoder.value,
        overwrite=overwrite or not resume,
        progress=not json_out,
    )
    if not summary.is_global_zero:
        return
    if json_out:
        typer.echo(json.dumps(summary.to_dict()))
        return
    state = "already up to date: " if summary.up_to_date else "wrote "
    typer.echo(
        f"{state}{summary.n_inputs} rows in {summary.out} ({summary.n_errors} unreadable, kept with their error"
        + (f"; {summary.n_resumed} resumed" if summary.n_resumed and not summary.up_to_date else "")
        + ")"
    )
    typer.echo("  " + ", ".join(f"m={k}: {v}" for k, v in summary.counts.items()))


@app.command()
@user_errors
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
        typer.echo(json.dumps({"out": str(folder), "fingerprint": loaded.fingerprint, "card": loaded.card.to_dict()}))
        return
    typer.echo(f"wrote {folder}/model.safetensors, config.json and README.md; predict with it: spiralarms predict {folder} INPUT --out FILE")


def _register_plain_commands() -> None:
    """Commands written as plain functions in their own modules, wrapped here."""
    from spiralarms.cli_data import make_data_app, prepare
    from spiralarms.cli_explain import explain
    from spiralarms.cli_mass import mass, mpajhu_fetch
    from spiralarms.cli_reproduce import reproduce

    app.add_typer(make_data_app(user_errors), name="data", help="Fetch and index real data: GZ2 (Willett 2013 or Hart 2016 votes + Zenodo images) or Kaggle.")
    app.command()(user_errors(prepare))
    app.command("explain")(user_errors(explain))
    app.command("reproduce")(user_errors(_quietly(reproduce)))
    app.command("mass")(user_errors(mass))
    app.command("fetch-mpajhu")(user_errors(mpajhu_fetch))


_register_plain_commands()


def run() -> None:  # pragma: no cover - entry point for python -m spiralarms
    app(prog_name="spiralarms")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
