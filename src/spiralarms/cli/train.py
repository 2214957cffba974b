"""``spiralarms train``: a classifier into a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from spiralarms.cli.common import echo_json
from spiralarms.runtime import lightning_banners_off

__all__ = ["train"]


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
    lightning_banners_off()
    result = train_run(resolved, out, resume=resume)
    if json_out:
        echo_json(result.metrics)
        return
    from spiralarms.evaluation.evaluation_report import metrics_markdown

    typer.echo(metrics_markdown(result.metrics))
    typer.echo(f"run folder: {out} (best checkpoint {result.checkpoint})")
