"""Prepared store against direct JPEG decoding, on real 424 x 424 Galaxy Zoo cutouts.

Prepares a store of N real cutouts (``../shared/data/sdss-gz-cutouts``) in a temporary
folder with 1 and with 2 worker processes (preparation throughput), then reads the N
images in a random order (as a shuffling training loader does) two ways, in one run:

- direct: decode the JPEG and centre-crop it (what GalaxyDataset does every epoch);
- store: read the row of the memory-mapped store.

Both at two levels: the uint8 crop alone, and the dataset item a training loop gets
(float32 CHW tensor in [0, 1] after the eval transform). The JPEGs are read once
before timing, so both sides run from a warm page cache: the ratio measures decoding,
not the disk.

Preparation scales with free cores: on a machine where other jobs hold the cores, the
second worker cannot help, so compare the two figures on an otherwise idle machine.

Run: ``python benchmarks/bench_store.py [--n 600] [--crop 224] [--grey] [--chunk-size 64]``.
``--quick`` is a smoke run: 32 cutouts, crop 64, chunks of 8 rows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms.data.dataset import GalaxyDataset
from spiralarms.data.images import load_image_uint8
from spiralarms.data.store import PreparedStore, build_store
from spiralarms.data.transforms import build_eval_transform, center_crop

#: Real cutouts shared beside the repository (never copied into it).
CUTOUTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sdss-gz-cutouts"


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _timed(func, order) -> float:
    started = time.perf_counter()
    for i in order:
        func(int(i))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict[str, float] | None:
    """Run the benchmark and print its numbers; returns them as a dict (None if skipped)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600, help="cutouts to use (default 600, at most 1200)")
    parser.add_argument("--crop", type=int, default=224, help="centre crop side (default 224)")
    parser.add_argument("--grey", action="store_true", help="greyscale, as for the Zoobot backbone")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random reading order")
    parser.add_argument(
        "--chunk-size", type=int, default=64, help="rows per chunk (default 64: enough chunks to share among workers)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 cutouts, crop 64, chunks of 8")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.crop, args.chunk_size = 32, 64, 8

    index_path = CUTOUTS / "index.csv"
    if not index_path.is_file():
        print(f"skipped: the real cutouts are not at {CUTOUTS}")
        return None
    index = pd.read_csv(index_path).head(args.n)
    n = len(index)
    files = [str(CUTOUTS / f) for f in index["file"]]
    # The cutouts carry no arm labels; the weak spiral flag stands in as a two-class label.
    table = pd.DataFrame(
        {
            "id": index["galaxy_id"],
            "label": index["weak_spiral_flag"].astype(str),
            "label_index": index["weak_spiral_flag"].astype(np.int64),
            "file": files,
        }
    )
    for path in files:  # warm the page cache for both sides
        Path(path).read_bytes()

    results: dict[str, float] = {}
    print(f"{n} real 424x424 JPEG cutouts, crop {args.crop}, {'grey' if args.grey else 'RGB'}")
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        for workers in (1, 2):
            out = Path(tmp) / f"store-{workers}"
            summary = build_store(
                table,
                out,
                classes=("0", "1"),
                crop=args.crop,
                grey=args.grey,
                workers=workers,
                chunk_size=args.chunk_size,
                progress=False,
            )
            results[f"prepare_{workers}_workers"] = _rate(n, summary["seconds"])
            print(f"prepare, {workers} worker(s): {results[f'prepare_{workers}_workers']:8.1f} images/s")
        store = PreparedStore(Path(tmp) / "store-1")
        print(f"store size: {summary['bytes'] / 1e6:.1f} MB ({summary['bytes'] / n / 1e3:.1f} kB per image)")

        order = np.random.default_rng(args.seed).permutation(n)
        direct = _timed(lambda i: center_crop(load_image_uint8(files[i], grey=args.grey), args.crop), order)
        stored = _timed(store.image, order)
        results["direct_uint8"] = _rate(n, direct)
        results["store_uint8"] = _rate(n, stored)

        reference = GalaxyDataset(
            table, ("0", "1"), transform=build_eval_transform(crop=args.crop, grey=args.grey), grey=args.grey
        )
        dataset = store.as_dataset(build_eval_transform(crop=None, grey=args.grey))
        direct_items = _timed(reference.__getitem__, order)
        store_items = _timed(dataset.__getitem__, order)
        results["direct_item"] = _rate(n, direct_items)
        results["store_item"] = _rate(n, store_items)

    print("random-order reads (images/s)      direct JPEG     store    ratio")
    for level, key in (("uint8 centre crop", "uint8"), ("dataset item (float tensor)", "item")):
        a, b = results[f"direct_{key}"], results[f"store_{key}"]
        results[f"ratio_{key}"] = b / a
        print(f"  {level:<32}{a:12.1f}{b:10.1f}{b / a:8.1f}x")
    return results


if __name__ == "__main__":
    main()
