"""Where predictions go: part files, the run manifest, resumption, and the final table.

Two forms of output, chosen by the name given:

- a table file (``.parquet``, ``.pq``, ``.csv``, ``.csv.gz``): parts are written in
  ``<out>.parts/`` while the run goes, then joined by streaming (one part in memory at
  a time) into ``<out>``, in input order, and the parts folder is removed; a Parquet
  file carries the run manifest in its metadata;
- a folder (any other name): a Parquet dataset, ``part-000000.parquet``, ... (input
  order by name) and ``_manifest.json``, read with ``pandas.read_parquet(folder)`` or
  ``pyarrow.dataset.dataset(folder)``; for surveys too large for one file.

The manifest records the input fingerprint, the model fingerprint and every setting
that changes the output (:class:`RunIdentity`). A rerun into the same output resumes
only when all three agree, redoing the shards without a whole part; any difference is
a one-line error naming it, unless ``overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spiralarms import __version__
from spiralarms.catalog.readers import TABLE_SUFFIXES, WRITE_SUFFIXES, table_format
from spiralarms.errors import SpiralArmsError
from spiralarms.io.atomic import atomic_path, disk_error, write_json
from spiralarms.io.locks import OutputLock, hold_output
from spiralarms._words import counted

__all__ = ["OutputLayout", "RunIdentity", "part_schema", "MANIFEST_FORMAT"]

MANIFEST_FORMAT = "spiralarms-predictions"
MANIFEST_VERSION = 1
_METADATA_KEY = b"spiralarms"

#: Endings of files that predict does not write: an output so named would otherwise
#: become a dataset folder called, say, ``predictions.json``.
FILE_SUFFIXES_NOT_WRITTEN = frozenset(set(TABLE_SUFFIXES) - set(WRITE_SUFFIXES)) | {
    ".txt", ".json", ".tsv", ".xlsx", ".xls", ".ods", ".ecsv", ".vot", ".xml", ".h5", ".hdf5", ".feather", ".arrow",
    ".npy", ".npz", ".pkl", ".pickle", ".dat", ".md", ".html", ".jpg", ".png", ".zip", ".bz2", ".xz",
}


def part_schema(classes) -> pa.Schema:
    """Columns of every part and of the final table."""
    return pa.schema(
        [("id", pa.string()), ("file", pa.string())]
        + [(f"p_{c}", pa.float32()) for c in classes]
        + [("label", pa.string()), ("error", pa.string())]
    )


@dataclass
class RunIdentity:
    """What a prediction run computes: two runs with equal identities give equal tables.

    Attributes
    ----------
    input : dict
        ``kind``, ``source``, ``n_rows`` and ``fingerprint`` of the listing.
    model : dict
        ``fingerprint``, ``source``, ``backbone`` and ``classes``.
    settings : dict
        ``crop``, ``grey``, ``grey_method``, ``tta``, ``precision``,
        ``min_confidence`` and ``shard_rows``.
    """

    input: dict[str, Any]
    model: dict[str, Any]
    settings: dict[str, Any]

    def differences(self, other: "RunIdentity") -> list[str]:
        """What differs from ``other`` (an earlier run), in words; empty if nothing."""
        out = []
        if self.input.get("fingerprint") != other.input.get("fingerprint"):
            before = (other.input.get("source"), other.input.get("n_rows"))
            now = (self.input.get("source"), self.input.get("n_rows"))
            if before == now:  # same file and length: its ids, paths or order changed
                out.append(f"inputs ({now[0]}, {counted(now[1], 'row')}: other ids, files or order)")
            else:
                out.append(f"inputs ({before[0]}, {counted(before[1], 'row')} -> {now[0]}, {counted(now[1], 'row')})")
        if self.model.get("fingerprint") != other.model.get("fingerprint"):
            out.append(f"model ({other.model.get('source')} -> {self.model.get('source')})")
        for key in sorted(set(self.settings) | set(other.settings)):
            if self.settings.get(key) != other.settings.get(key):
                out.append(f"{key} ({other.settings.get(key)!r} -> {self.settings.get(key)!r})")
        return out


@dataclass
class Manifest:
    """The ``_manifest.json`` of a prediction run."""

    identity: RunIdentity
    columns: list[str]
    n_shards: int
    complete: bool = False
    parts: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    n_errors: int = 0
    resumed_rows: int = 0
    format: str = MANIFEST_FORMAT
    version: int = MANIFEST_VERSION
    spiralarms_version: str = __version__
    written: str = ""

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["written"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str) -> "Manifest":
        if not isinstance(values, dict) or values.get("format") != MANIFEST_FORMAT:
            raise SpiralArmsError(f"{source}: not a spiralarms prediction manifest")
        try:
            identity = RunIdentity(**values["identity"])
            return cls(
                identity=identity,
                columns=list(values["columns"]),
                n_shards=int(values["n_shards"]),
                complete=bool(values.get("complete")),
                parts=list(values.get("parts") or []),
                counts=dict(values.get("counts") or {}),
                n_errors=int(values.get("n_errors") or 0),
                resumed_rows=int(values.get("resumed_rows") or 0),
                version=int(values.get("version", MANIFEST_VERSION)),
                spiralarms_version=str(values.get("spiralarms_version", "")),
                written=str(values.get("written", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SpiralArmsError(f"{source}: damaged prediction manifest ({exc})") from None


class OutputLayout:
    """The files of one prediction output.

    Parameters
    ----------
    out : path
        A table file (``.parquet``, ``.pq``, ``.csv``, ``.csv.gz``) or a folder.

    Attributes
    ----------
    out : Path
    single : bool
        One table file (else a Parquet dataset folder).
    fmt : {"parquet", "csv"}
    work_dir : Path
        Where parts, the listing and the manifest live during the run.
    """

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out).expanduser()
        fmt = table_format(self.out, WRITE_SUFFIXES)
        self.single = fmt is not None
        self.fmt = fmt or "parquet"
        self.work_dir = self.out.with_name(self.out.name + ".parts") if self.single else self.out

    @property
    def manifest_path(self) -> Path:
        return self.work_dir / "_manifest.json"

    @property
    def sidecar_path(self) -> Path:
        """Where a CSV table keeps its manifest, beside it (CSV has no metadata of its own)."""
        return self.out.with_name(self.out.name + ".manifest.json")

    @property
    def listing_path(self) -> Path:
        return self.work_dir / "_inputs.parquet"

    def own_files(self) -> tuple[Path, ...]:
        """The files and folders a run writes for this output (never inputs of it)."""
        return (self.out, self.work_dir, self.sidecar_path)

    def acquire(self) -> OutputLock:
        """Hold this output for one run (:func:`spiralarms.io.locks.hold_output`)."""
        return hold_output(self.out, "prediction run")

    @property
    def error_path(self) -> Path:
        return self.work_dir / "_failed.txt"

    def part_path(self, k: int) -> Path:
        return self.work_dir / f"part-{k:06d}.parquet"

    def check_target(self) -> None:
        """Refuse, before any work, an output that cannot be written.

        Raises
        ------
        SpiralArmsError
            If a parent of the output is a file, a table name is an existing folder,
            or a folder name is an existing file.
        """
        for parent in self.out.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise SpiralArmsError(f"{self.out}: its parent {parent} is a file, not a folder")
                break
        if self.single and self.out.is_dir():
            raise SpiralArmsError(
                f"{self.out}: is a folder; give a new file name (.parquet, .csv) or, for a Parquet dataset "
                "folder, a name without a table suffix"
            )
        name = self.out.name.lower()
        suffix = next((x for x in sorted(FILE_SUFFIXES_NOT_WRITTEN, key=len, reverse=True) if name.endswith(x)), None)
        if not self.single and suffix is not None and not self.out.is_dir():
            raise SpiralArmsError(
                f"{self.out}: predict writes {', '.join(WRITE_SUFFIXES)} tables, or a Parquet dataset folder "
                f"(a name without a table suffix); not {suffix}"
            )
        if not self.single and self.out.exists() and not self.out.is_dir():
            raise SpiralArmsError(
                f"{self.out}: exists and is a file; give a file name ending in {', '.join(WRITE_SUFFIXES)}, "
                "or a new folder name"
            )

    def read_manifest(self) -> Manifest | None:
        """The manifest of an earlier run into this output (parts folder or final file)."""
        if self.manifest_path.is_file():
            try:
                values = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise SpiralArmsError(f"{self.manifest_path}: damaged prediction manifest; use --overwrite") from None
            return Manifest.from_dict(values, str(self.manifest_path))
        if self.single and self.fmt == "parquet" and self.out.is_file():
            try:
                metadata = pq.read_schema(self.out).metadata or {}
            except (OSError, pa.ArrowException):
                return None
            if _METADATA_KEY in metadata:
                return Manifest.from_dict(json.loads(metadata[_METADATA_KEY]), str(self.out))
        if self.single and self.fmt == "csv" and self.out.is_file() and self.sidecar_path.is_file():
            try:
                values = json.loads(self.sidecar_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            # The record holds for the table it was written with, not for one edited or replaced since.
            if not isinstance(values, dict) or values.get("table_bytes") != self.out.stat().st_size:
                return None
            return Manifest.from_dict(values, str(self.sidecar_path))
        return None

    def existing_output(self) -> bool:
        """Whether something from an earlier run is there."""
        if self.single:
            return self.out.exists() or self.work_dir.exists()
        return self.out.is_dir() and any(self.out.iterdir())

    def clear(self) -> None:
        """Remove an earlier run's output (only files a prediction run writes).

        Raises
        ------
        SpiralArmsError
            If a dataset folder holds other files (it is not removed).
        """
        if self.single:
            if self.out.is_file():
                self.out.unlink()
            self.sidecar_path.unlink(missing_ok=True)
            shutil.rmtree(self.work_dir, ignore_errors=True)
            return
        if not self.out.is_dir():
            return
        ours = [p for p in self.out.iterdir() if _is_ours(p)]
        others = [p for p in self.out.iterdir() if not _is_ours(p)]
        if others:
            raise SpiralArmsError(
                f"{self.out}: holds files that are not predictions (e.g. {others[0].name}); refusing to replace it"
            )
        for p in ours:
            p.unlink()

    def write_manifest(self, manifest: Manifest) -> None:
        write_json(self.manifest_path, manifest.to_dict())

    def valid_parts(self, listing_path: Path, n_shards: int, shard_rows: int, n_rows: int) -> set[int]:
        """Shards whose part is whole and holds exactly their rows (by id); others removed.

        Stale temporary files of a killed run are removed too.
        """
        for tmp in self.work_dir.glob(".*.tmp*"):
            tmp.unlink(missing_ok=True)
        listing = pq.ParquetFile(listing_path)
        done = set()
        for part in sorted(self.work_dir.glob("part-*.parquet")):
            try:
                k = int(part.stem.split("-")[1])
                expected = listing.read_row_group(k, columns=["id"]).column("id")
                ids = pq.read_table(part, columns=["id"]).column("id")
                good = k < n_shards and ids.equals(expected)
            except (ValueError, IndexError, OSError, pa.ArrowException):
                good = False
            if good:
                done.add(k)
            else:
                part.unlink(missing_ok=True)
        return done

    def finish(self, manifest: Manifest) -> Manifest:
        """Count what the parts hold, and write the final form of the output.

        For a table file, the parts are joined in order by streaming into a
        temporary file that is renamed over ``out`` (a CSV table's manifest goes
        beside it, ``<out>.manifest.json``); the parts folder is then removed. For
        a dataset folder, the listing is removed and the manifest
        marked complete.
        """
        counts = {c.removeprefix("p_"): 0 for c in manifest.columns if c.startswith("p_")}
        parts, n_errors = [], 0
        for k in range(manifest.n_shards):
            path = self.part_path(k)
            table = pq.read_table(path, columns=["label", "error"])
            labels = table.column("label").to_pandas()
            errors = int((table.column("error").to_pandas() != "").sum())
            for name, n in labels.value_counts().items():
                counts[str(name)] = counts.get(str(name), 0) + int(n)
            parts.append({"file": path.name, "rows": table.num_rows, "errors": errors})
            n_errors += errors
        manifest.parts, manifest.counts, manifest.n_errors, manifest.complete = parts, counts, n_errors, True
        if self.single:
            self._join(manifest)
            shutil.rmtree(self.work_dir, ignore_errors=True)
        else:
            self.listing_path.unlink(missing_ok=True)
            self.write_manifest(manifest)
        return manifest

    def _join(self, manifest: Manifest) -> None:
        schema = part_schema([c.removeprefix("p_") for c in manifest.columns if c.startswith("p_")])
        try:
            with atomic_path(self.out) as tmp:
                if self.fmt == "parquet":
                    meta = {_METADATA_KEY: json.dumps(manifest.to_dict()).encode()}
                    with pq.ParquetWriter(tmp, schema.with_metadata(meta), compression="zstd") as writer:
                        for k in range(manifest.n_shards):
                            writer.write_table(pq.read_table(self.part_path(k)).cast(schema))
                else:
                    import gzip

                    opener = gzip.open if tmp.name.lower().endswith(".gz") else open
                    with opener(tmp, "wt", encoding="utf-8", newline="") as fh:
                        for k in range(manifest.n_shards):
                            frame = pq.read_table(self.part_path(k)).to_pandas()
                            frame.to_csv(fh, index=False, header=(k == 0))
                    # Before the table's rename: a kill in between leaves a record that
                    # matches no table (its size differs), never a table without one.
                    write_json(self.sidecar_path, {**manifest.to_dict(), "table_bytes": os.path.getsize(tmp)})
        except OSError as exc:
            raise disk_error(self.out, exc) from None


def _is_ours(path: Path) -> bool:
    name = path.name
    return (name.startswith("part-") and name.endswith(".parquet")) or name in (
        "_manifest.json",
        "_inputs.parquet",
        "_failed.txt",
    ) or (name.startswith(".") and ".tmp" in name)


def write_part(layout: OutputLayout, k: int, frame: pd.DataFrame, schema: pa.Schema) -> None:
    """Write one shard's rows atomically as ``part-<k>.parquet``."""
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    with atomic_path(layout.part_path(k)) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def shard_frame(
    ids: list, files: list, probs: np.ndarray, errors: list[str], classes, min_confidence: float | None
) -> pd.DataFrame:
    """The rows of one shard: ``id``, ``file``, ``p_<class>``, ``label``, ``error``.

    ``label`` is the most probable class, left empty where the row could not be read
    and, with ``min_confidence``, where the top probability is below it.
    """
    frame = pd.DataFrame({"id": [str(i) for i in ids], "file": files})
    for j, name in enumerate(classes):
        frame[f"p_{name}"] = probs[:, j].astype(np.float32)
    ok = ~np.isnan(probs).any(axis=1)
    if min_confidence is not None:
        top = np.zeros(len(probs))
        top[ok] = probs[ok].max(axis=1)
        ok &= top >= min_confidence
    labels = np.full(len(frame), None, dtype=object)
    labels[ok] = np.asarray(classes, dtype=object)[probs[ok].argmax(axis=1)]
    frame["label"] = labels
    frame["error"] = [str(e) for e in errors]
    return frame
