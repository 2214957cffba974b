"""Throughput of the synthetic galaxy renderer on one core, preset by preset.

Renders N galaxies of each preset (classes interleaved as in ``spiralarms synth``)
and prints images per second for rendering alone and for rendering plus JPEG
encoding (at the preset's quality, in memory), each against the target of 50 images
per second at 424 x 424, and the ``sdss`` preset's speed relative to ``crisp``'s
measured in the same run.

Run: ``python benchmarks/bench_synth.py [--n 300] [--size 424] [--repeat 2]``.
"""

from __future__ import annotations

import os

# One core: pin the numerical libraries' thread pools before they are imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from spiralarms.data.synthetic import (  # noqa: E402
    PRESETS,
    galaxy_class,
    galaxy_rng,
    get_preset,
    render_galaxy,
    sample_galaxy_params,
)

TARGET_IMAGES_PER_SECOND = 50.0


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print its numbers; returns them as a dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="galaxies to render (default 300)")
    parser.add_argument("--size", type=int, default=424, help="image side in pixels (default 424)")
    parser.add_argument("--seed", type=int, default=0, help="data set seed (default 0)")
    parser.add_argument("--repeat", type=int, default=2, help="passes; the best is reported (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 12 galaxies of 96 pixels, one pass")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.size, args.repeat = 12, 96, 1
    if args.n < 1 or args.size < 32 or args.repeat < 1:
        parser.error("--n and --repeat must be >= 1 and --size >= 32")

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    print(f"synthetic galaxies: n={args.n} per preset, size={args.size}, one thread, best of {args.repeat}, "
          f"numpy {np.__version__}; target {TARGET_IMAGES_PER_SECOND:.0f} images/s")
    rates = {}
    for preset in PRESETS:
        rates[preset] = _measure(preset, args)
        render_rate, total_rate, kib = rates[preset]
        quality = get_preset(preset).jpeg_quality
        print(f"{preset:6s} render only        : {render_rate:7.1f} images/s  "
              f"({render_rate / TARGET_IMAGES_PER_SECOND:.2f} x target)")
        print(f"{preset:6s} render + JPEG (q{quality}): {total_rate:7.1f} images/s  "
              f"({total_rate / TARGET_IMAGES_PER_SECOND:.2f} x target), mean JPEG {kib:.1f} KiB")
    if {"sdss", "crisp"} <= set(rates):
        print(f"sdss / crisp, render + JPEG: {rates['sdss'][1] / rates['crisp'][1]:.2f}")
    return {preset: {"render": r[0], "render_jpeg": r[1]} for preset, r in rates.items()}


def _measure(preset: str, args) -> tuple[float, float, float]:
    """Best-of-repeat images per second (render; render + JPEG) and mean JPEG KiB."""
    quality = get_preset(preset).jpeg_quality
    params = [sample_galaxy_params(galaxy_class(i), galaxy_rng(args.seed, i), args.size, preset=preset)
              for i in range(args.n)]
    for p in params[: min(args.n, 20)]:
        render_galaxy(p)  # warm-up: imports, first-call costs and memory pools

    # Best of --repeat passes: other processes on a shared machine only slow a pass down.
    render_rate = total_rate = 0.0
    n_bytes = 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        for p in params:
            render_galaxy(p)
        render_rate = max(render_rate, args.n / (time.perf_counter() - start))

        start = time.perf_counter()
        n_bytes = 0
        for p in params:
            image, _ = render_galaxy(p)
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
            n_bytes += buffer.tell()
        total_rate = max(total_rate, args.n / (time.perf_counter() - start))
    return render_rate, total_rate, n_bytes / args.n / 1024


if __name__ == "__main__":
    main()
