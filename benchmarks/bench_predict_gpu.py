"""The GPU row of bench_predict, sized to fit a short lease of a GPU machine.

``bench_predict.py`` measures everything on a CPU machine in about 25 minutes; this
script measures only what needs a GPU, every number side by side in one run, in a
few minutes (an estimate: it has not yet run on a GPU):

1. JPEG decoders on the real cutouts: Pillow and torchvision on one CPU thread, and
   nvJPEG batched on the GPU (what ``--decoder auto`` takes there).
2. The bare forward of timm ``efficientnet_b0`` with the paper's head, RGB, 224 px,
   channels_last, batch norms folded, in fp32 and in bf16 autocast, at the batch of
   the public timm figures (256; 8,000 to 17,000 images/s on recent single GPUs)
   and at the engine's GPU default (64), on decoded crops in pinned memory.
3. bf16 against fp32 on a model with real weights (the ImageNet Lite0): the largest
   probability difference and the top-1 agreement.
4. End to end: ``spiralarms.predict`` in bf16-mixed on ``--rows`` rows (the cutouts
   repeated), with nvJPEG (``--decoder auto``) and with torchvision in the reading
   workers, against the bare forward of the same model, layout, precision and batch.

Run it on the machine itself (it falls back to the CPU, where its numbers only check
that it runs)::

    python benchmarks/bench_predict_gpu.py [--rows 24000] [--batch 256]
    python benchmarks/bench_predict_gpu.py --quick   # a smoke run (CI): tiny random model, 64 px, 64 rows

``benchmarks/device/`` holds the two steps that carry it to a lent GPU machine
(the wheels the package needs beyond that machine's own, and the real cutouts), and
docs/predict.md says how they are used.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_predict as bp  # noqa: E402  (the shared measuring functions)

#: The batch of the public timm inference figures.
TIMM_BATCH = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=24000, help="rows of the end-to-end runs (the cutouts repeated)")
    parser.add_argument("--batch", type=int, default=TIMM_BATCH, help="batch of the end-to-end runs")
    parser.add_argument("--images", type=int, default=1200, help="decoded cutouts for the bare forward")
    parser.add_argument("--quick", action="store_true", help="small sizes and timm's tiny random model, for a smoke run")
    args = parser.parse_args()
    backbone, crop, batches = bp.BACKBONE, bp.CROP, (TIMM_BATCH, 64)
    if args.quick:
        args.rows, args.batch, args.images = 64, 16, 32
        backbone, crop, batches = "test_efficientnet", 64, (16,)
    if not (bp.REAL / "index.csv").is_file():
        raise SystemExit(f"the real cutouts are not at {bp.REAL}; set SPIRALARMS_REAL_CUTOUTS")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"bench_predict_gpu: {bp.machine()}; {time.strftime('%Y-%m-%d')}", flush=True)
    if device == "cpu":
        print("  no GPU: the numbers below only check that the script runs")
    files = bp.real_files(args.images)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = bp.make_checkpoint(folder, backbone, crop)
        folded = bp.prediction_module(checkpoint, fold=True)

        print(f"\n1. JPEG decoders, {min(len(files), 600)} real 424 px cutouts (images/s; CPU ones on one thread)")
        decoders = bp.bench_decoders(files[:600])
        for name, value in decoders.items():
            print(f"  {name:24s} {value:8.0f}   x{value / decoders['pillow']:.2f} vs Pillow", flush=True)

        images = bp.decoded(files, crop)
        if device == "cuda":
            images = images.pin_memory()
        print(f"\n2. bare forward, {backbone} + head, RGB {crop} px, channels_last, batch norms folded, "
              f"{device}, {len(images)} cutouts (images/s)")
        bare = {}
        for batch in batches:
            for precision in ("32", "bf16"):
                bare[batch, precision] = bp.bare_forward(folded, images, channels_last=True, precision=precision,
                                                         device=device, repeat=3, batch=batch)
            print(f"  batch {batch:3d}: fp32 {bare[batch, '32']:8.0f}, bf16 {bare[batch, 'bf16']:8.0f}   "
                  f"x{bare[batch, 'bf16'] / bare[batch, '32']:.2f}", flush=True)

        checks = bp.real_weight_checks(images[:64], device)
        print(f"\n3. bf16 against fp32, ImageNet Lite0 on {len(images[:64])} cutouts: max |p_bf16 - p_fp32| = {checks['bf16_diff']:.4f}, "
              f"top-1 agrees {100 * checks['bf16_agree']:.1f} %")

        catalog = folder / "rows.parquet"
        rows = bp.real_files(args.rows)
        pd.DataFrame({"id": [str(i) for i in range(len(rows))], "file": rows}).to_parquet(catalog)
        precision = "bf16-mixed" if device == "cuda" else "32-true"
        warm = folder / "warm.parquet"
        pd.DataFrame({"id": [str(i) for i in range(2 * args.batch)], "file": rows[: 2 * args.batch]}).to_parquet(warm)
        bp.engine(checkpoint, warm, folder / "warm-out.parquet", batch_size=args.batch, precision=precision)
        print(f"\n4. end to end on {len(rows)} rows ({precision}, batch {args.batch}), images/s", flush=True)
        reference = bare.get((args.batch, "bf16" if device == "cuda" else "32")) or bp.bare_forward(
            folded, images, channels_last=True, precision="bf16" if device == "cuda" else "32", device=device,
            batch=args.batch)
        for decoder in ("auto", "torchvision"):
            ours = bp.engine(checkpoint, catalog, folder / f"{decoder}.parquet", batch_size=args.batch,
                             precision=precision, decoder=decoder)
            print(f"  spiralarms.predict --decoder {decoder:12s} {ours:8.0f}   end-to-end / bare {ours / reference:.2f}",
                  flush=True)
        print(f"  bare forward (batch {args.batch})            {reference:8.0f}")


if __name__ == "__main__":
    main()
