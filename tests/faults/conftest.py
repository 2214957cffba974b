"""Fixtures of the fault-injection suite: the ``record`` of each case and a folder of bad images."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

@pytest.fixture
def record(record_property):
    """Record a case's command, fault, lost rows and partial files for the reliability report.

    Recording also asserts the two goals of every case: no row lost, no partial file.
    """

    def _record(command: str, fault: str, *, rows_lost: int = 0, partial: list | None = None, kill: bool = False):
        record_property("command", command)
        record_property("fault", fault)
        record_property("rows_lost", int(rows_lost))
        record_property("partial_files", len(partial or []))
        record_property("kill", int(kill))
        assert rows_lost == 0, f"{command}: {rows_lost} rows lost"
        assert not partial, f"{command}: partial files under final names: {partial}"

    return _record


@pytest.fixture(scope="session")
def bad_images(tiny_galaxies, tmp_path_factory) -> Path:
    """A folder with four good cutouts and one of every kind of bad entry."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("bad-images")
    good = sorted((tiny_galaxies / "images").glob("*.jpg"))[:4]
    for f in good:
        shutil.copy(f, folder / f.name)
    data = good[0].read_bytes()
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    (folder / "text.jpg").write_text("a text file named like a JPEG\n")
    (folder / "folder.jpg").mkdir()
    os.symlink(folder / "nowhere.jpg", folder / "dangling.jpg")
    os.symlink(folder / "loop2.jpg", folder / "loop1.jpg")
    os.symlink(folder / "loop1.jpg", folder / "loop2.jpg")
    Image.new("RGB", (20, 20)).save(folder / "tiny.png")
    Image.new("CMYK", (96, 96), (10, 20, 30, 0)).save(folder / "cmyk.jpg")
    Image.fromarray((pd.Series(range(96 * 96)).to_numpy().reshape(96, 96) * 7 % 65535).astype("uint16")).save(
        folder / "wide.png"
    )
    os.mkfifo(folder / "fifo.jpg")
    return folder

