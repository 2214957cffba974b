"""Reading a listing's cutouts into batches for the model (in DataLoader workers or the main process).

:class:`SurveyImages` is an ``IterableDataset`` over the shards of a listing: each
shard is read by exactly one process (rank of a distributed run, and DataLoader
worker within it), so no row is ever read twice, ranks need no sampler (and so no
padded repeats), and a shard's rows all reach the same prediction writer. It yields
whole batches (the DataLoader's automatic batching is off):

``{"images": (G, C, H, W), "index": (n,), "ok": (n,), "error": [n str]}``

where ``index`` is the input row of each item, ``ok`` whether it was read, and
``images`` holds the G readable ones, uint8 where the files are 8-bit (scaled to
[0, 1] on the device, a quarter of the bytes to move) and float32 otherwise. An
unreadable row costs no decoding beyond the failed attempt and never reaches the
network.

With ``decode_on_device``, JPEG bytes travel to the main process undecoded and
:func:`decode_on_device` decodes them in one batched call on the GPU (nvJPEG) before
the transfer; other formats are still decoded in the workers.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from spiralarms.data.images import _JPEG_MAGIC, is_fits, luminance_uint8, read_cutout
from spiralarms.data.transforms import center_crop
from spiralarms.errors import ImageReadError

__all__ = ["SurveyImages", "decode_on_device", "crop_error", "worker_init"]


def crop_error(height: int, width: int, crop: int | None) -> str:
    """Why an image cannot be centre-cropped, or ``""``."""
    if crop is not None and (height < crop or width < crop):
        return f"image {width}x{height} is smaller than the model's {crop}-pixel crop"
    return ""


def _center_crop(image: torch.Tensor, crop: int | None) -> torch.Tensor:
    return image if crop is None else center_crop(image, crop)


def _grey(image: torch.Tensor, grey: bool, grey_method: str, channels: int) -> torch.Tensor:
    """Convert to grey if asked (or if the model takes one channel); give the model its channels."""
    if (grey or channels == 1) and image.shape[-3] == 3:
        if image.dtype == torch.uint8 and grey_method == "luminance":
            image = luminance_uint8(image)
        else:
            from spiralarms.data.transforms import to_greyscale

            image = to_greyscale(image.float() * (1.0 / 255.0) if image.dtype == torch.uint8 else image, grey_method)
    if channels == 3 and image.shape[-3] == 1:
        image = image.expand(3, *image.shape[-2:])
    return image


def _stack(images: list[torch.Tensor]) -> torch.Tensor:
    """Stack crops; uint8 unless one of them is float (then all become [0, 1] floats)."""
    if not images:
        return torch.empty(0, dtype=torch.uint8)
    if all(im.dtype == torch.uint8 for im in images):
        return torch.stack([im.contiguous() for im in images])
    return torch.stack([im.float() * (1.0 / 255.0) if im.dtype == torch.uint8 else im.float() for im in images])


def worker_init(_: int) -> None:
    """One intra-op thread per DataLoader worker: the model's threads keep the cores."""
    torch.set_num_threads(1)


class SurveyImages(IterableDataset):
    """Batches of cutouts from the shards of a listing.

    Parameters
    ----------
    listing : path
        The listing's Parquet file (:func:`~spiralarms.predictions.sources.build_listing`).
    shards : sequence of (int, int, int)
        ``(shard, first row, stop row)`` of each shard to read.
    batch_size : int
    crop : int or None
        Centre crop of the model.
    grey : bool
        Convert colour cutouts to grey.
    grey_method : {"luminance", "mean"}
    channels : {1, 3}
        Input channels of the model (grey cutouts are repeated for a colour model).
    store : str, optional
        A prepared store's ``images.npy`` (inputs listed from a store).
    decode_on_device : bool, default False
        Leave JPEGs undecoded for :func:`decode_on_device`.
    decoder : {"torchvision", "pillow"}, default "torchvision"
        CPU JPEG decoder (:func:`~spiralarms.data.images.read_cutout`).
    threads : int, default 1
        Threads that read the cutouts of a batch in parallel (file reads and the
        decoders release the GIL); for reading in the main process.

    Attributes
    ----------
    rank, world_size : int
        This process's share of the shards (set by the data module before iterating).
    """

    def __init__(
        self,
        listing: str | os.PathLike,
        shards: Sequence[tuple[int, int, int]],
        *,
        batch_size: int,
        crop: int | None,
        grey: bool,
        grey_method: str = "luminance",
        channels: int = 3,
        store: str | None = None,
        decode_on_device: bool = False,
        decoder: str = "torchvision",
        threads: int = 1,
    ):
        self.listing = str(listing)
        self.shards = [tuple(int(v) for v in s) for s in shards]
        self.batch_size = int(batch_size)
        self.crop = crop
        self.grey = bool(grey)
        self.grey_method = grey_method
        self.channels = int(channels)
        self.store = store
        self.decode_on_device = bool(decode_on_device)
        self.decoder = decoder
        self.threads = max(1, int(threads))
        self.rank, self.world_size = 0, 1
        self._store_images = None

    def my_shards(self, worker: int = 0, n_workers: int = 1) -> list[tuple[int, int, int]]:
        """The shards that one worker of this rank reads (round robin over all readers)."""
        readers = self.world_size * n_workers
        me = self.rank * n_workers + worker
        return [s for i, s in enumerate(self.shards) if i % readers == me]

    def __len__(self) -> int:
        """Batches this rank yields (every worker's together), for progress bars."""
        return sum(math.ceil((stop - start) / self.batch_size) for _, start, stop in self.my_shards(0, 1))

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        listing = pq.ParquetFile(self.listing)
        if self.store is not None and self._store_images is None:
            self._store_images = np.load(self.store, mmap_mode="r")
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="spiralarms-read") if self.threads > 1 else None
        try:
            for shard, start, stop in self.my_shards(worker, n_workers):
                rows = listing.read_row_group(shard).to_pydict()
                for lo in range(0, stop - start, self.batch_size):
                    hi = min(lo + self.batch_size, stop - start)
                    yield self._batch(rows, start, lo, hi, pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def _read(self, file: str | None, store_row: int | None):
        """One item: a (C, h, w) crop, raw JPEG bytes (device decoding), or an error string."""
        if store_row is not None:
            image = torch.from_numpy(np.array(self._store_images[store_row])).permute(2, 0, 1)
        else:
            path = Path(file)
            if self.decode_on_device and not is_fits(path):
                try:
                    data = path.read_bytes()
                except OSError:
                    data = b""
                if data.startswith(_JPEG_MAGIC):
                    return torch.frombuffer(bytearray(data), dtype=torch.uint8)
            try:
                image = read_cutout(path, grey=False, decoder=self.decoder)
            except ImageReadError as exc:
                return exc.reason
        reason = crop_error(image.shape[-2], image.shape[-1], self.crop)
        if reason:
            return reason
        return _grey(_center_crop(image, self.crop), self.grey, self.grey_method, self.channels)

    def _batch(self, rows: dict, start: int, lo: int, hi: int, pool: ThreadPoolExecutor | None = None) -> dict:
        n = hi - lo
        index = torch.arange(start + lo, start + hi, dtype=torch.int64)
        ok = torch.zeros(n, dtype=torch.bool)
        errors = [""] * n
        images, jpeg, jpeg_at = [], [], []
        shape = None
        todo = [j for j in range(n) if not rows["error"][lo + j]]
        args = ([rows["file"][lo + j] for j in todo], [rows["store_row"][lo + j] for j in todo])
        items = dict(zip(todo, pool.map(self._read, *args) if pool is not None else map(self._read, *args)))
        for j in range(n):
            pre = rows["error"][lo + j]
            if pre:
                errors[j] = pre
                continue
            item = items[j]
            if isinstance(item, str):
                errors[j] = item
            elif item.ndim == 1:  # undecoded JPEG bytes
                jpeg.append(item)
                jpeg_at.append(j)
            elif shape is not None and item.shape != shape:
                # Only without a crop can frames differ in size within one batch.
                errors[j] = f"image size {tuple(item.shape[-2:])} differs from the batch's {tuple(shape[-2:])}; give a crop"
            else:
                shape = item.shape
                images.append(item)
                ok[j] = True
        batch = {"images": _stack(images), "index": index, "ok": ok, "error": errors}
        if jpeg:
            batch["jpeg"], batch["jpeg_at"] = jpeg, torch.tensor(jpeg_at, dtype=torch.int64)
        return batch


def decode_on_device(
    batch: dict, device: torch.device, crop: int | None, grey: bool, grey_method: str, channels: int
) -> dict:
    """Decode a batch's JPEG bytes on ``device`` (nvJPEG on a GPU) and merge them in row order.

    A batch that nvJPEG refuses as a whole is decoded image by image, and an image it
    cannot decode becomes an error row with its reason (read again on the CPU).
    """
    if "jpeg" not in batch:
        return batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision 0.29 marks its codecs deprecated (TorchCodec)
        from torchvision.io import ImageReadMode, decode_jpeg

    data, at = batch.pop("jpeg"), batch.pop("jpeg_at").tolist()
    try:
        decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        decoded = []
        for item in data:
            try:
                decoded.append(decode_jpeg(item, mode=ImageReadMode.RGB, device=device))
            except RuntimeError as exc:
                decoded.append(str(exc).splitlines()[0] or "corrupt JPEG")
    ok, errors = batch["ok"].clone(), list(batch["error"])
    readable = {int(j): k for k, j in enumerate(ok.nonzero().flatten().tolist())}
    images = list(batch["images"].to(device)) if len(batch["images"]) else []
    new = {}
    for j, image in zip(at, decoded):
        if isinstance(image, str):
            errors[j] = f"truncated or corrupt JPEG: {image}"
            continue
        reason = crop_error(image.shape[-2], image.shape[-1], crop)
        if reason:
            errors[j] = reason
            continue
        new[j] = _grey(_center_crop(image, crop), grey, grey_method, channels)
        ok[j] = True
    order = sorted(list(readable) + list(new))
    merged = [images[readable[j]] if j in readable else new[j] for j in order]
    batch.update(images=_stack(merged).to(device) if merged else torch.empty(0, dtype=torch.uint8, device=device),
                 ok=ok, error=errors)
    return batch
