"""Throughput of the synthetic galaxy renderer on one core.

Renders N galaxies (classes interleaved as in ``spiralarms synth``) and prints images
per second for rendering alone and for rendering plus JPEG encoding (quality 90, in
memory), each against the target of 50 images per second at 424 x 424.

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
    galaxy_class,
    galaxy_rng,
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
    args = parser.parse_args(argv)
    if args.n < 1 or args.size < 32 or args.repeat < 1:
        parser.error("--n and --repeat must be >= 1 and --size >= 32")

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    params = [sample_galaxy_params(galaxy_class(i), galaxy_rng(args.seed, i), args.size) for i in range(args.n)]
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
            Image.fromarray(image).save(buffer, format="JPEG", quality=90)
            n_bytes += buffer.tell()
        total_rate = max(total_rate, args.n / (time.perf_counter() - start))

    print(f"synthetic galaxies: n={args.n}, size={args.size}, one thread, best of {args.repeat}, numpy {np.__version__}")
    print(f"render only        : {render_rate:7.1f} images/s  ({render_rate / TARGET_IMAGES_PER_SECOND:.2f} x target)")
    print(f"render + JPEG (q90): {total_rate:7.1f} images/s  ({total_rate / TARGET_IMAGES_PER_SECOND:.2f} x target)")
    print(f"mean JPEG size     : {n_bytes / args.n / 1024:7.1f} KiB; target {TARGET_IMAGES_PER_SECOND:.0f} images/s")
    return {"render": render_rate, "render_jpeg": total_rate}


if __name__ == "__main__":
    main()
