"""Commands for real data: ``spiralarms data gz2``, ``spiralarms data kaggle``, ``spiralarms prepare``.

The command functions are plain (no error wrapper), so that :mod:`spiralarms.cli`
can wrap them with its ``user_errors`` decorator without an import cycle::

    from spiralarms.cli_data import make_data_app, prepare
    app.add_typer(make_data_app(user_errors), name="data")
    app.command()(user_errors(prepare))
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["gz2", "kaggle", "prepare", "make_data_app"]


def _echo_data_summary(summary: dict, json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(summary))
        return
    if summary["up_to_date"]:
        typer.echo(f"{summary['root']}: up to date (nothing fetched; delete catalog.parquet to rebuild it)")
    for name in summary["downloaded"]:
        record = summary["files"][name]
        typer.echo(f"downloaded {name}: {record['size']} bytes, sha256 {record['sha256']}")
    table = f" (vote table {summary['table']})" if summary.get("table") else ""
    typer.echo(
        f"{summary['catalog']}: {summary['rows']} galaxies{table}, {summary['images_found']} with an image, "
        f"{summary['missing']} without (listed in {summary['missing_list']})"
    )


def gz2(
    root: Annotated[
        Path,
        typer.Argument(help="Data folder: the files, images/, catalog.parquet, missing.csv and manifest.json go here."),
    ],
    source: Annotated[
        Optional[str],
        typer.Option(
            help="Mirror base URL (files at BASE/<name>) or a local folder holding the vote table "
            "(zoo2MainSpecz.csv.gz, or gz2_hart16.csv.gz with --table hart16), gz2_filename_mapping.csv and "
            "images_gz2.zip (used in place). Default: the public addresses."
        ),
    ] = None,
    table: Annotated[
        str,
        typer.Option(
            help="GZ2 vote table: willett13 (the paper's: Willett et al. 2013 zoo2MainSpecz, weighted and "
            "debiased fractions) or hart16 (Hart et al. 2016, the newer debiasing the paper does not use). "
            "Recorded in manifest.json."
        ),
    ] = "willett13",
    remove_zip: Annotated[
        bool,
        typer.Option("--remove-zip", help="Delete the downloaded images_gz2.zip once its images are extracted."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Fetch the Galaxy Zoo 2 vote table, images and filename mapping; write catalog.parquet."""
    from spiralarms.acquire.gz2 import fetch_gz2

    summary = fetch_gz2(root, source, table=table, progress=not json_out, remove_archive=remove_zip)
    _echo_data_summary(summary, json_out)


def kaggle(
    root: Annotated[
        Path, typer.Argument(help="Data folder: images/, catalog.parquet, missing.csv and manifest.json go here.")
    ],
    source: Annotated[
        Optional[Path],
        typer.Option(
            help="Folder with training_solutions_rev1.csv (or its .zip) and images_training_rev1/ (or its .zip), "
            "downloaded from Kaggle."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Import the Kaggle Galaxy Challenge training set from a local folder; write catalog.parquet."""
    from spiralarms.acquire.kaggle import import_kaggle

    summary = import_kaggle(root, source, progress=not json_out)
    _echo_data_summary(summary, json_out)


def prepare(
    catalog: Annotated[
        Path, typer.Argument(help="GZ2 or Kaggle catalogue, e.g. ROOT/catalog.parquet from 'spiralarms data'.")
    ],
    out: Annotated[Path, typer.Argument(help="Store folder (new, or an unfinished store to resume).")],
    crop: Annotated[
        int,
        typer.Option(min=1, help="Side of the stored centre crop (the paper: 224 of 424; 400 leaves room to augment)."),
    ] = 224,
    grey: Annotated[bool, typer.Option("--grey/--colour", help="Store one greyscale channel (Zoobot) or RGB.")] = False,
    merge: Annotated[Optional[str], typer.Option(help="Merge classes: 3,4 or 4,5+.")] = None,
    schema: Annotated[str, typer.Option(help="Catalogue schema: gz2, kaggle or auto.")] = "auto",
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes (default: one per core).")] = None,
    image_dir: Annotated[
        Optional[Path], typer.Option(help="Folder of the images named by the catalogue's ids or mapping.")
    ] = None,
    mapping: Annotated[
        Optional[Path], typer.Option(help="GZ2 filename mapping table (objid, sample, asset_id).")
    ] = None,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Images per chunk (the unit of parallel work and of resumption).")
    ] = 256,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Decode and centre-crop every selected image once into a memory-mapped store for fast training."""
    from spiralarms.data.store import prepare_store
    from spiralarms.errors import SpiralArmsError

    if schema not in ("auto", "gz2", "kaggle"):
        raise SpiralArmsError(f"--schema {schema!r}: choose gz2, kaggle or auto")
    summary = prepare_store(
        catalog,
        out,
        crop=crop,
        grey=grey,
        merge=merge,
        schema=schema,
        workers=workers,
        image_dir=image_dir,
        mapping=mapping,
        chunk_size=chunk_size,
        progress=not json_out,
    )
    if json_out:
        typer.echo(json.dumps(summary))
        return
    state = "up to date" if summary["up_to_date"] else f"{summary['images_per_second']} images/s"
    typer.echo(
        f"{summary['out']}: {summary['n']} images ({summary['n_ok']} usable, {summary['n_failed']} unreadable "
        f"or missing, listed in {summary['report']}), {summary['bytes'] / 1e6:.1f} MB, {state}"
    )
    typer.echo("  " + ", ".join(f"m={k}: {v}" for k, v in summary["counts"].items()))


def make_data_app(wrap: Callable | None = None) -> typer.Typer:
    """The ``data`` command group, each command passed through ``wrap``.

    Parameters
    ----------
    wrap : callable, optional
        Decorator applied to each command function (the CLI's ``user_errors``, which
        turns a :class:`~spiralarms.errors.SpiralArmsError` into a one-line message).

    Returns
    -------
    typer.Typer
        With the commands ``gz2`` and ``kaggle``.
    """
    wrap = wrap or (lambda func: func)
    data_app = typer.Typer(
        name="data",
        help="Fetch real data (Galaxy Zoo 2, Kaggle Galaxy Challenge) and write catalog.parquet.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    data_app.command("gz2")(wrap(gz2))
    data_app.command("kaggle")(wrap(kaggle))
    return data_app
