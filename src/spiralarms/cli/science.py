"""Science commands: ``mass`` (stellar mass against arm number, paper section 6) and ``fetch-mpajhu``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from spiralarms.cli.common import MatchMethod, MpajhuSource, choices, echo_json
from spiralarms.errors import SpiralArmsError

__all__ = ["fetch_mpajhu", "mass"]


def mass(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="LABELS_OR_PREDICTIONS...",
            help="Labels tables (from 'spiralarms select --out') and/or predictions tables "
            "(from 'spiralarms predict').",
        ),
    ],
    mpajhu: Annotated[
        list[Path],
        typer.Option(
            "--mpajhu",
            help="MPA-JHU catalogue: one DR10 galSpecInfo+galSpecExtra table, or give --mpajhu twice "
            "for the DR7 gal_info + totlgm pair.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output folder: table4.csv/.md, figure11/12.png, matched.parquet, unmatched.csv, summary.json.",
        ),
    ],
    match: Annotated[
        str,
        typer.Option(
            "--match",
            **choices("--match", MatchMethod),
            help="Cross-match by object id, by sky position, or auto (id where both have one, then sky)."
        ),
    ] = "auto",
    tolerance: Annotated[float, typer.Option("--tolerance", help="Sky-match tolerance in arcsec.")] = 1.0,
    merge: Annotated[
        str, typer.Option("--merge", help="Class merge of the Table 4 rows (the paper: 4,5+; 'all' keeps six classes).")
    ] = "4,5+",
    positions: Annotated[
        Optional[Path],
        typer.Option(
            "--positions",
            help="Table with an id column and ra/dec, giving positions to predictions tables for sky matching.",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON summary.")] = False,
) -> None:
    """Compare stellar masses across arm-number classes: Table 4 and Figures 11 and 12."""
    from spiralarms.science.mass import run_mass

    if not tolerance > 0:
        raise SpiralArmsError(f"--tolerance {tolerance}: give a positive number of arcsec")
    if len(mpajhu) not in (1, 2):
        raise SpiralArmsError(f"--mpajhu given {len(mpajhu)} times: give one table, or the DR7 pair (twice)")
    result = run_mass(
        inputs,
        mpajhu,
        out,
        match=match,
        tolerance_arcsec=tolerance,
        merge=None if merge in ("all", "none", "") else merge,
        positions=positions,
    )
    if json_out:
        echo_json(result.to_dict())
        return
    filters = result.catalogue.filters
    typer.echo(f"MPA-JHU {result.catalogue.source}: {filters.n_input} rows, {filters.n_kept} kept")
    for cut, removed in filters.removed.items():
        typer.echo(f"  {cut}: " + ("skipped" if removed is None else f"removed {removed}"))
    for s in result.sources:
        typer.echo(
            f"{s.name} ({s.kind}): {s.n_input} rows, {s.n_matched} matched "
            f"({s.n_by_method.get('id', 0)} by id, {s.n_by_method.get('sky', 0)} by sky), "
            f"{s.n_unmatched} unmatched, {s.n_excluded_errors} with errors, {s.n_without_class} without a label"
        )
    typer.echo("")
    typer.echo(Path(result.outputs["table4_md"]).read_text(encoding="utf-8"))
    typer.echo(f"wrote {', '.join(Path(p).name for p in result.outputs.values())} to {out}")


def fetch_mpajhu(
    out: Annotated[
        Path, typer.Argument(help="Cache folder for the catalogue files (a rerun resumes and skips what is there).")
    ],
    source: Annotated[
        str,
        typer.Option(
            "--source",
            **choices("--source", MpajhuSource),
            help="dr7: the public MPA-JHU DR7 FITS pair; skyserver: the DR10 galSpec tables by SQL (needs astroquery).",
        ),
    ] = "dr7",
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows per SkyServer query (each chunk is cached).")
    ] = 50_000,
    data_release: Annotated[int, typer.Option("--data-release", help="SkyServer data release (the paper: 10).")] = 10,
    json_out: Annotated[bool, typer.Option("--json", help="Print the files as JSON.")] = False,
) -> None:
    """Download the MPA-JHU stellar-mass catalogue for 'spiralarms mass --mpajhu'."""
    from spiralarms.acquire.mpajhu import fetch_mpajhu_dr7, fetch_mpajhu_skyserver

    if source == "dr7":
        files = [str(p) for p in fetch_mpajhu_dr7(out, progress=not json_out)]
    else:
        progress = None if json_out else (lambda i, n: typer.echo(f"chunk {i}: {n} rows", err=True))
        path = fetch_mpajhu_skyserver(out, chunk_rows=chunk_rows, data_release=data_release, progress=progress)
        files = [str(path)]
    if json_out:
        echo_json({"source": source, "files": files})
        return
    typer.echo("pass to 'spiralarms mass': " + " ".join(f"--mpajhu {f}" for f in files))
