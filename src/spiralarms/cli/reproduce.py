"""``spiralarms reproduce``: the experiments of sections 4 and 5 and their report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from spiralarms.cli.common import echo_json
from spiralarms.runtime import lightning_banners_off

__all__ = ["reproduce"]


def reproduce(
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config",
            help="Reproduction settings (YAML, or a shipped name); default: reproduce-paper, the paper's settings "
            "on the real GZ2 data.",
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="The shipped reproduce-quick settings: synthetic galaxies, Lite0 stand-ins, fewer runs; "
            "5 minutes on 2 idle CPU cores.",
        ),
    ] = False,
    out: Annotated[
        Path, typer.Option("--out", help="Report folder (report.md, runs.csv, table3.csv, figures, runs/).")
    ] = Path("reproduction"),
    catalog: Annotated[
        Optional[Path],
        typer.Option("--catalog", help="GZ2 catalog.parquet or a prepared store (sets source.catalog)."),
    ] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option(
            "--set",
            help="KEY=VALUE, repeatable: a reproduction setting (crop_sweep.seeds=[0,1]) or, for data./model./"
            "train. keys, a training override of every run (train.accelerator=gpu).",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary at the end.")] = False,
) -> None:
    """Reproduce Figures 5, 6, 7 and 13, Table 3 and section 5.1, with the paper's protocol; rerunning skips finished runs."""
    from spiralarms.experiments import load_reproduce_config, run_reproduction
    from spiralarms.experiments.settings import split_overrides

    lightning_banners_off()
    reproduce_items, run_items = split_overrides(set_ or ())
    settings = load_reproduce_config(config, quick=quick, overrides=reproduce_items)
    if catalog is not None:
        settings.source.kind, settings.source.catalog = "catalog", str(catalog)
    result = run_reproduction(
        settings,
        out,
        overrides=run_items,
        progress=not json_out,
        log=(lambda *_: None) if json_out else typer.echo,
    )
    if json_out:
        echo_json(
            {
                "out": str(result.out),
                "files": {k: str(v) for k, v in result.files.items()},
                "runs": int(result.runs["run_key"].nunique()),
                "trained": result.n_trained,
                "cached": result.n_cached,
                "chosen_crops": result.chosen_crops,
                "seconds": result.seconds,
            }
        )
