"""``spiralarms explain``: feature maps, Grad-CAM++, SmoothGrad, galleries and faithfulness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from spiralarms.cli.common import DeletionBaseline, choices, echo_json

__all__ = ["explain"]


def explain(
    run: Annotated[
        Path,
        typer.Argument(help="A run folder from 'spiralarms train' (or, with --images, a checkpoint file)."),
    ],
    more_images: Annotated[
        Optional[list[Path]],
        typer.Argument(metavar="[IMAGE]...", help="More image files to explain (so that --images a b c works).", show_default=False),
    ] = None,
    images: Annotated[
        Optional[list[Path]],
        typer.Option("--images", help="Explain these image files instead of the validation set (repeatable)."),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", help="Output folder (default: RUN/explain, or RUN/explain-images with --images)."),
    ] = None,
    n_per_class: Annotated[
        int, typer.Option("--n-per-class", min=1, help="Galaxies per class in the correct/wrong galleries.")
    ] = 3,
    noise: Annotated[
        float,
        typer.Option(
            "--noise", min=0.0, max=1.0, help="SmoothGrad noise sigma, as a fraction of the [0, 1] pixel range."
        ),
    ] = 0.1,
    samples: Annotated[int, typer.Option("--samples", min=1, help="SmoothGrad noisy samples per image.")] = 25,
    n_faithful: Annotated[
        int,
        typer.Option(
            "--n-faithful", min=0, help="Validation galaxies per class for the faithfulness measures (0: skip)."
        ),
    ] = 10,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Deletion-curve steps.")] = 20,
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline",
            **choices("--baseline", DeletionBaseline),
            help="What replaces deleted pixels: blur (blurred image) or sky (0).",
        ),
    ] = "blur",
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the faithfulness sample and the noise.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward/backward pass.")] = 16,
    device: Annotated[
        Optional[str], typer.Option("--device", help="Torch device: cpu, cuda, cuda:1 (default: cuda if available).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print explain.json to stdout.")] = False,
) -> None:
    """Explain a trained run: feature maps (Fig. 8), Grad-CAM++ and SmoothGrad galleries (Figs. 9, 10), faithfulness."""
    from spiralarms.explain.run import explain_run

    summary = explain_run(
        run,
        images=[*(images or []), *(more_images or [])] or None,
        out=out,
        n_per_class=n_per_class,
        noise=noise,
        samples=samples,
        n_faithful=n_faithful,
        steps=steps,
        baseline=baseline,
        seed=seed,
        batch_size=batch_size,
        device=device,
        log=None if json_out else typer.echo,
    )
    if json_out:
        echo_json(summary)
        return
    deletion = summary["faithfulness"].get("deletion")
    if deletion:
        auc = deletion["overall"]
        typer.echo(
            f"deletion AUC (lower = more faithful): Grad-CAM++ {_fmt(auc['auc_gradcampp'])}, "
            f"SmoothGrad {_fmt(auc['auc_smoothgrad'])}, random order {_fmt(auc['auc_random'])}"
        )
    energy = summary["faithfulness"].get("mask_energy")
    if energy:
        e = energy["overall"]
        typer.echo(
            f"map energy on the galaxy / arms: Grad-CAM++ {_fmt(e['gradcampp_galaxy'])} / {_fmt(e['gradcampp_arms'])}, "
            f"SmoothGrad {_fmt(e['smoothgrad_galaxy'])} / {_fmt(e['smoothgrad_arms'])}; "
            f"area covered {_fmt(e['galaxy_coverage'])} / {_fmt(e['arms_coverage'])}"
        )
    for note in summary["notes"]:
        typer.echo(f"note: {note}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
