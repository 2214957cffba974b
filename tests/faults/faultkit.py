"""Checks of the fault-injection suite (fixtures are in conftest.py).

Each case runs one command of the real command line on a deliberately broken input
or environment and records, through pytest's ``record_property`` (read back by
``benchmarks/bench_faults.py`` from the JUnit XML), what it tried and what it found:
``command``, ``fault``, ``rows_lost`` and ``partial_files``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from spiralarms.cli import app

TINY_TRAIN = [
    "--set", "data.crop=64", "--set", "model.backbone=test_efficientnet", "--set", "model.pretrained=false",
    "--set", "train.max_epochs=1", "--set", "train.cache_views=1", "--set", "model.hidden=16",
]  # fmt: skip


@dataclass
class Outcome:
    """What a person sees after a command."""

    code: int
    stdout: str
    stderr: str

    @property
    def first_line(self) -> str:
        """The first line on standard error (an error), else on standard output."""
        for text in (self.stderr, self.stdout):
            lines = visible_lines(text)
            if lines:
                return lines[0]
        return ""

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def visible_lines(text: str) -> list[str]:
    """Lines as a terminal shows them: what follows the last carriage return of each."""
    return [line.split("\r")[-1].strip() for line in text.split("\n") if line.split("\r")[-1].strip()]


def run_cli(*args) -> Outcome:
    """Run a command in-process, as a person would type it."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback would have reached the user
    return Outcome(result.exit_code, result.stdout, result.stderr)


def run_process(*args, timeout: float = 300) -> Outcome:
    """Run a command in its own process (for kills and mounted disks)."""
    done = subprocess.run([sys.executable, "-m", "spiralarms", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    return Outcome(done.returncode, done.stdout, done.stderr)


def partial_files(folder: Path, exclude: Path | None = None) -> list[str]:
    """Files under a final (not hidden, not temporary) name that do not read as whole.

    ``exclude``: a folder of deliberately broken inputs, which are not outputs.
    """
    import numpy as np
    import pyarrow.parquet as pq
    import torch
    from PIL import Image

    bad = []
    for path in Path(folder).rglob("*"):
        if not path.is_file() or path.name.startswith(".") or path.suffix in (".tmp", ".part", ".unverified"):
            continue
        if exclude is not None and Path(exclude) in path.parents:
            continue
        name = path.name.lower()
        try:
            if name.endswith(".parquet"):
                pq.read_metadata(path)
            elif name.endswith((".csv", ".csv.gz")):
                pd.read_csv(path)
            elif name.endswith(".json"):
                json.loads(path.read_text())
            elif name.endswith(".ckpt"):
                torch.load(path, weights_only=True, map_location="cpu")
            elif name.endswith(".png"):
                Image.open(path).verify()
            elif name.endswith(".npy"):
                np.load(path, mmap_mode="r")
        except Exception:  # any reader failing means the file is not whole
            bad.append(str(path))
    return bad


def one_line_error(outcome: Outcome) -> bool:
    """Exit 1 and exactly one line on standard error, starting ``error:``, no traceback."""
    lines = [line for line in visible_lines(outcome.stderr) if not line.startswith("warning:")]
    return outcome.code == 1 and len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in outcome.stderr




#: Entries of ``bad_images`` that must come back with an error, and those that read.
BAD_ENTRIES = {"zero", "truncated", "corrupt", "text", "folder", "dangling", "loop1", "loop2", "tiny", "fifo"}
READABLE_EXTRA = {"cmyk", "wide"}
