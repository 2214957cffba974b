"""Figures and arrays are written under a temporary name and renamed when whole."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from spiralarms.io.atomic import save_array, save_figure  # noqa: E402


def test_save_figure_writes_the_format_of_its_suffix_and_nothing_on_failure(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = save_figure(fig, tmp_path / "a.png", dpi=50)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = save_figure(fig, tmp_path / "a.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"

    class Broken:
        def savefig(self, path, **options):
            with open(path, "wb") as fh:
                fh.write(b"half a figure")
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed"):
        save_figure(Broken(), tmp_path / "b.png")
    # the earlier good file stays, and no partial or temporary file is left
    with pytest.raises(RuntimeError):
        save_figure(Broken(), png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.png"]
    plt.close(fig)


def test_save_array_writes_npy_and_npz_that_load_back_as_arrays(tmp_path):
    one = save_array(tmp_path / "map.npy", np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(np.load(one, allow_pickle=False), np.arange(6.0).reshape(2, 3))
    many = save_array(tmp_path / "maps.npz", fraction=np.linspace(0, 1, 3), ids=np.array(["a", "b"]))
    with np.load(many, allow_pickle=False) as data:
        assert sorted(data) == ["fraction", "ids"] and data["ids"].tolist() == ["a", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.npy", "maps.npz"]


def test_a_read_only_folder_is_named_by_the_final_file_not_the_temporary_one(tmp_path, monkeypatch):
    """On a read-only filesystem every write fails with EROFS, the clean-up unlink of the
    temporary file as well: the error must still be the one-line one about the output."""
    import errno
    import os
    from pathlib import Path

    from spiralarms.errors import SpiralArmsError
    from spiralarms.io.atomic import write_text

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(args[0]))

    monkeypatch.setattr(Path, "write_text", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(SpiralArmsError) as caught:
        write_text(tmp_path / "out.txt", "x")
    assert str(caught.value) == f"{tmp_path / 'out.txt'}: cannot write: Read-only file system"
