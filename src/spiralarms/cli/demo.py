"""``spiralarms demo``: the main job on the embedded default, ending with a report folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from spiralarms.cli.common import echo_json
from spiralarms.runtime import lightning_banners_off

__all__ = ["demo"]


def demo(
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("spiralarms-demo"),
    n_per_class: Annotated[int, typer.Option("--n-per-class", min=5, help="Synthetic galaxies per class.")] = 250,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the galaxies, split and training.")] = 0,
    preset: Annotated[
        Optional[str], typer.Option(help="Renderer preset of the galaxies: sdss (the default, fitted to SDSS cutouts) or crisp (docs/synthetic.md).")
    ] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Override a config key (repeatable).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary at the end.")] = False,
) -> None:
    """The main job on the embedded default: synthetic galaxies -> cuts -> training -> evaluation -> report."""
    from spiralarms.demo import run_demo

    lightning_banners_off()
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
        echo_json(
            {
                "out": str(result.out),
                "macro_f1": result.metrics["macro_f1"],
                "accuracy": result.metrics["accuracy"],
                "seconds": result.wall_seconds,
            }
        )
