"""Data commands: ``synth``, ``select``, ``prepare`` and the ``data`` group (``gz2``, ``kaggle``).

The stages before training: render synthetic galaxies, cut a catalogue to the clean
sample, fetch real data, and decode the images once into a prepared store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from spiralarms.cli.common import CatalogSchema, GZ2Table, choices, echo_json
from spiralarms.errors import SpiralArmsError

__all__ = ["data_app", "gz2", "kaggle", "prepare", "select", "synth"]


def synth(
    out: Annotated[Path, typer.Argument(help="Output folder: images/<dr7objid>.jpg and catalog.csv are written here.")],
    n_per_class: Annotated[int, typer.Option("--n-per-class", min=1, help="Galaxies per T11 class (1, 2, 3, 4, 5+, ?).")],
    seed: Annotated[int, typer.Option(min=0, help="Random seed: the same seed gives the same bytes.")] = 0,
    size: Annotated[int, typer.Option(min=32, help="Image side in pixels (GZ2 cutouts are 424).")] = 424,
    masks: Annotated[bool, typer.Option("--masks/--no-masks", help="Also write galaxy/arm masks (masks/<id>.npz).")] = False,
    preset: Annotated[
        Optional[str], typer.Option(help="Renderer preset: sdss (the default, fitted to SDSS cutouts) or crisp (sharp, fast); docs/synthetic.md.")
    ] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Processes that render (default: one per core, up to 8); the files do not depend on it.")] = None,
    sky_from: Annotated[
        Optional[Path], typer.Option("--sky-from", help="Folder of real survey cutouts (JPEG/PNG, SDSS colour composites, --size pixels): draw the galaxies on their sky (sdss preset).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Render synthetic spiral galaxies with a known arm number, in the GZ2 schema."""
    from spiralarms.catalog.classes import arm_classes
    from spiralarms.data.synthetic import synthesize_dataset

    catalog = synthesize_dataset(
        out, n_per_class=n_per_class, seed=seed, size=size, write_masks=masks, progress=not json_out, preset=preset,
        workers=workers, sky_from=sky_from,
    )
    counts = catalog["true_class"].value_counts().reindex(arm_classes(), fill_value=0)
    if json_out:
        echo_json(
            {
                "out": str(out),
                "n_images": int(len(catalog)),
                "catalog": str(Path(out) / "catalog.csv"),
                "counts": {k: int(v) for k, v in counts.items()},
            }
        )
    else:
        typer.echo(f"wrote {len(catalog)} galaxies to {out}/images and {out}/catalog.csv")


def select(
    catalog: Annotated[Path, typer.Argument(help="GZ2 or Kaggle catalogue (CSV, CSV.gz, Parquet or FITS).")],
    schema: Annotated[
        str, typer.Option(**choices("--schema", CatalogSchema), help="Catalogue schema: gz2, kaggle or auto (from the columns).")
    ] = "auto",
    merge: Annotated[Optional[str], typer.Option(help="Merge classes: 3,4 or 4,5+.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the selected galaxies with their label (CSV or Parquet by suffix).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object (docs/contract.md).")] = False,
) -> None:
    """Apply the paper's clean-sample cuts (section 2.1) and label each galaxy."""
    from spiralarms.catalog.selection import read_clean_sample
    from spiralarms.io.atomic import refuse_input_as_output
    from spiralarms.io.tables import write_table

    if out is not None:
        refuse_input_as_output(out, catalog)
    selection = read_clean_sample(catalog, schema=schema, merge=merge)
    if out is not None:
        write_table(selection.selected, out)
    if json_out:
        echo_json(selection.summary())
        return
    _print_selection(catalog, selection.schema, selection, out)


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


def _echo_data_summary(summary: dict, json_out: bool) -> None:
    if json_out:
        echo_json(summary)
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
            **choices("--table", GZ2Table),
            help="GZ2 vote table: willett13 (the paper's: Willett et al. 2013 zoo2MainSpecz, weighted and "
            "debiased fractions) or hart16 (Hart et al. 2016, the newer debiasing the paper does not use). "
            "Recorded in manifest.json."
        ),
    ] = "willett13",
    remove_zip: Annotated[
        bool,
        typer.Option("--remove-zip", help="Delete the downloaded images_gz2.zip once its images are extracted."),
    ] = False,
    accept_checksum: Annotated[
        Optional[list[str]],
        typer.Option(
            "--accept-checksum",
            help="Accept a file whose checksum differs from the published one, e.g. md5:HEX or sha256:HEX "
            "(a stale published checksum); repeatable. The error of a mismatch prints the value to give.",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Fetch the Galaxy Zoo 2 vote table, images and filename mapping; write catalog.parquet."""
    from spiralarms.acquire.gz2 import fetch_gz2

    summary = fetch_gz2(
        root, source, table=table, progress=not json_out, remove_archive=remove_zip, accept=accept_checksum or ()
    )
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
    schema: Annotated[str, typer.Option(**choices("--schema", CatalogSchema), help="Catalogue schema: gz2, kaggle or auto.")] = "auto",
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
        echo_json(summary)
    else:
        _echo_prepare_summary(summary)
    if summary["n"] and not summary["n_ok"]:
        # The store is written (its report says why each row failed), but nothing can train on it.
        raise SpiralArmsError(
            f"{catalog}: none of the {summary['n']} images could be read (reasons in {summary['report']}); "
            "check --image-dir or --mapping"
        )


def _echo_prepare_summary(summary: dict) -> None:
    state = "up to date" if summary["up_to_date"] else f"{summary['images_per_second']} images/s"
    typer.echo(
        f"{summary['out']}: {summary['n']} images ({summary['n_ok']} usable, {summary['n_failed']} unreadable "
        f"or missing, listed in {summary['report']}), {summary['bytes'] / 1e6:.1f} MB, {state}"
    )
    typer.echo("  " + ", ".join(f"m={k}: {v}" for k, v in summary["counts"].items()))


data_app = typer.Typer(
    name="data",
    help="Fetch real data (Galaxy Zoo 2, Kaggle Galaxy Challenge) and write catalog.parquet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app.command("gz2")(gz2)
data_app.command("kaggle")(kaggle)
