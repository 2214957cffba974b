"""Lightning callbacks of a prediction run: the part writer and the progress bar.

:class:`PartWriter` is a ``BasePredictionWriter`` that gathers the rows of each shard
as batches arrive and writes the shard as one Parquet part, atomically, the moment
its last row is in; nothing else is kept, so memory holds at most the shards in
flight (one per DataLoader worker), whatever the size of the survey. A row that
arrives twice is written once.
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
from lightning.pytorch.callbacks import BasePredictionWriter, Callback

from spiralarms.errors import SpiralArmsError
from spiralarms.predictions.output import OutputLayout, part_schema, shard_frame, write_part
from spiralarms.predictions.sources import Listing

__all__ = ["PartWriter", "RowProgress"]


class _ShardBuffer:
    """The rows of one shard received so far."""

    def __init__(self, n: int, k: int):
        self.seen = np.zeros(n, dtype=bool)
        self.probs = np.full((n, k), np.nan, dtype=np.float32)
        self.errors = [""] * n

    def add(self, offsets: np.ndarray, probs: np.ndarray, errors: list[str]) -> None:
        fresh = ~self.seen[offsets]  # a repeated row keeps its first result
        for j in np.flatnonzero(fresh):
            self.errors[offsets[j]] = errors[j]
        self.probs[offsets[fresh]] = probs[fresh]
        self.seen[offsets] = True

    @property
    def complete(self) -> bool:
        return bool(self.seen.all())


class PartWriter(BasePredictionWriter):
    """Write each finished shard of predictions as a part file.

    Parameters
    ----------
    layout : OutputLayout
    listing : Listing
    classes : sequence of str
    min_confidence : float, optional
        Leave ``label`` empty where the top probability is below this.
    """

    def __init__(self, layout: OutputLayout, listing: Listing, classes, min_confidence: float | None = None):
        super().__init__(write_interval="batch")
        self.layout, self.listing = layout, listing
        self.classes = tuple(classes)
        self.min_confidence = min_confidence
        self.schema = part_schema(self.classes)
        self._pending: dict[int, _ShardBuffer] = {}
        self._listing_file: pq.ParquetFile | None = None
        self.rows_written = 0

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        index = prediction["index"].cpu().numpy()
        probs = prediction["probs"].float().cpu().numpy()
        errors = list(prediction["error"])
        shards = index // self.listing.shard_rows
        for k in np.unique(shards):
            k = int(k)
            start, stop = self.listing.shard_bounds(k)
            sel = np.flatnonzero(shards == k)
            buffer = self._pending.setdefault(k, _ShardBuffer(stop - start, len(self.classes)))
            buffer.add(index[sel] - start, probs[sel], [errors[j] for j in sel])
            if buffer.complete:
                self._write(k, self._pending.pop(k))

    def _write(self, k: int, buffer: _ShardBuffer) -> None:
        if self._listing_file is None:
            self._listing_file = pq.ParquetFile(self.listing.path)
        rows = self._listing_file.read_row_group(k, columns=["id", "file"]).to_pydict()
        frame = shard_frame(rows["id"], rows["file"], buffer.probs, buffer.errors, self.classes, self.min_confidence)
        write_part(self.layout, k, frame, self.schema)
        self.rows_written += len(frame)

    def on_predict_end(self, trainer, pl_module) -> None:
        if self._pending:
            k = min(self._pending)
            missing = int((~self._pending[k].seen).sum())
            raise SpiralArmsError(f"shard {k}: {missing} rows never came back from the model; rerun to resume")


class RowProgress(Callback):
    """A tqdm bar counted in galaxies (rank 0 shows its own share)."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, desc: str = "predict"):
        self.total, self.initial, self.enabled, self.desc = int(total), int(initial), bool(enabled), desc
        self._bar = None

    def on_predict_start(self, trainer, pl_module) -> None:
        if self.enabled and trainer.is_global_zero:
            from spiralarms.runtime import progress_bar

            # disable=None: no bar where standard error is not a terminal (logs, pipes).
            self._bar = progress_bar(total=self.total, initial=self.initial, unit="img", desc=self.desc,
                                     dynamic_ncols=True)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._bar is not None:
            self._bar.update(len(batch["index"]))

    def on_predict_end(self, trainer, pl_module) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self._bar is not None:  # clear the bar: the error is the line a person should see
            self._bar.leave = False
            self._bar.close()
            self._bar = None
