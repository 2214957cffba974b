"""Real-data acquisition against a loopback HTTP server: fetch, resume, verify, offline, no-op reruns."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from spiralarms.acquire import sources
from spiralarms.acquire.archive import extract_images
from spiralarms.acquire.download import download
from spiralarms.acquire.gz2 import fetch_gz2
from spiralarms.acquire.kaggle import import_kaggle
from spiralarms.catalog import schema as sch
from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.catalog.readers import read_catalog, resolve_image_paths
from spiralarms.catalog.selection import select_clean_sample
from spiralarms.cli.data import data_app, prepare
from spiralarms.errors import SpiralArmsError

FIRST_ID = 587722981742084144
# Labels of the galaxies that pass the cuts; then 4 that fail cut 1.
PASSING = ("1", "2", "2", "2", "3", "4", "5+", "?", "2", "2", "3", "?")
N_FAIL = 4
NO_MAPPING_ROW = 3  # this galaxy has no row in the mapping
ASSET_NOT_IN_ZIP = 5  # this galaxy's image is not in the archive
TWO_ASSETS = 7  # listed twice in the mapping; only the second asset was released


# --------------------------------------------------------------------------- fixtures


#: Per-answer column suffixes of the two GZ2 vote tables, in their files' order. The
#: Willett et al. (2013) layout is that of the real Table 5 in ../shared/data/gz2-tables
#: (the main-sample zoo2MainSpecz has the same columns, id dr7objid); the Hart et al.
#: (2016) table carries _fraction, _weighted_fraction, _debiased, _count and _flag.
WILLETT_SUFFIXES = ("_count", "_weight", "_fraction", "_weighted_fraction", "_debiased", "_flag")
HART_SUFFIXES = ("_fraction", "_weighted_fraction", "_debiased", "_count", "_flag")
#: Leading columns of both tables before the vote columns.
HEAD_COLUMNS = ("dr7objid", "ra", "dec", "rastring", "decstring", "sample", "gz2_class",
                "total_classifications", "total_votes")
#: Galaxies whose T11 debiased fraction is 0.85 in the Willett table but 0.75 (below the
#: 0.8 cut) in the Hart table: the two tables select different samples.
DEBIASED_APART = (1, 2)


def _answer_values(label: str | None, answer: str, table: str, k_galaxy: int) -> dict:
    """Values of one answer's columns (count, weight, fractions, flag)."""
    k = ARM_CLASSES.index(label) if label is not None else 1
    if answer.startswith("t11"):
        i = sch.T11_ANSWERS.index(answer)
        mine = i == k
        debiased = 0.9 if mine else 0.02
        if mine and k_galaxy in DEBIASED_APART:
            debiased = 0.85 if table == "willett13" else 0.75
        return {"_count": 25 if mine else 1, "_weight": 25.0 if mine else 1.0, "_fraction": 0.7 if mine else 0.06,
                "_weighted_fraction": 0.7 if mine else 0.06, "_debiased": debiased, "_flag": int(mine)}
    fraction = 0.2 if (answer == sch.FEATURES_OR_DISK and label is None) else 0.9
    count = {sch.FEATURES_OR_DISK: 40, sch.NOT_EDGE_ON: 38, sch.SPIRAL: 30}[answer]
    return {"_count": count, "_weight": float(count), "_fraction": fraction, "_weighted_fraction": fraction,
            "_debiased": 0.9, "_flag": 0}


def vote_table(labels, ids, table: str = "willett13") -> pd.DataFrame:
    """A GZ2 vote table in the column layout of ``table`` (willett13 or hart16)."""
    suffixes = WILLETT_SUFFIXES if table == "willett13" else HART_SUFFIXES
    answers = [sch.FEATURES_OR_DISK, sch.NOT_EDGE_ON, sch.SPIRAL, *sch.T11_ANSWERS]
    rows = []
    for k, (galaxy, label) in enumerate(zip(ids, labels, strict=True)):
        row = {"dr7objid": galaxy, "ra": 150.0 + k / 16, "dec": 2.0 + k / 16, "rastring": "10:00:00.00",
               "decstring": "+02:00:00.0", "sample": "original", "gz2_class": "Sc2m" if label else "Ei",
               "total_classifications": 44, "total_votes": 180}
        for answer in answers:
            values = _answer_values(label, answer, table, k)
            row.update({answer + suffix: values[suffix] for suffix in suffixes})
        rows.append(row)
    frame = pd.DataFrame(rows)
    assert list(frame.columns[: len(HEAD_COLUMNS)]) == list(HEAD_COLUMNS)
    return frame


def _jpeg(seed: int, size: int = 40) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_gz2_files() -> dict[str, bytes]:
    """The GZ2 files in their real formats, small: both vote tables, the mapping, the images."""
    labels = [*PASSING, *[None] * N_FAIL]
    ids = [FIRST_ID + 1000 * k for k in range(len(labels))]
    tables = {
        sources.GZ2_TABLES[name].filename: gzip.compress(vote_table(labels, ids, name).to_csv(index=False).encode(),
                                                         mtime=0)
        for name in sources.GZ2_TABLES
    }

    rows = []
    for k, galaxy in enumerate(ids):
        if k == NO_MAPPING_ROW:
            continue
        if k == TWO_ASSETS:
            rows.append((galaxy, "original", 90000 + k))  # never released
        rows.append((galaxy, "original", 100 + k))
    rows.append((FIRST_ID - 1, "extra", 555))  # a galaxy that is not in the table
    mapping = pd.DataFrame(rows, columns=["objid", "sample", "asset_id"]).to_csv(index=False).encode()

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for _, _, asset in rows:
            if asset == 100 + ASSET_NOT_IN_ZIP or asset >= 90000:
                continue
            zf.writestr(f"images/{asset}.jpg", _jpeg(asset))
        zf.writestr("__MACOSX/images/._100.jpg", b"resource fork")
    return {
        **tables,
        sources.GZ2_MAPPING.filename: mapping,
        sources.GZ2_IMAGES.filename: buffer.getvalue(),
    }


def default_files(files: dict[str, bytes], table: str = "willett13") -> dict[str, bytes]:
    """The three files a fetch of ``table`` downloads."""
    return {f.filename: files[f.filename] for f in sources.gz2_files(table)}


class _State:
    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.requests: list[tuple[str, str | None]] = []
        self.drop_after: dict[str, int] = {}
        self.ignore_range = False


class _RangeHandler(BaseHTTPRequestHandler):
    """Serves ``/files/<name>`` with HTTP Range support; can drop a transfer midway."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        state: _State = self.server.state
        name = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
        asked = self.headers.get("Range")
        state.requests.append((name, asked))
        data = state.files.get(name)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        if asked and not state.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = state.drop_after.pop(name, None)
        if cut is not None:
            # Send part of the body, then hang up: the client sees a short transfer.
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def gz2_files():
    return make_gz2_files()


@pytest.fixture
def server(gz2_files):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    httpd.state = _State(gz2_files)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}/files"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def point_sources(monkeypatch, tables: dict, mapping, images) -> tuple[sources.RemoteFile, ...]:
    """Replace the public addresses; return the default fetch's three files."""
    monkeypatch.setattr(sources, "GZ2_TABLES", tables)
    monkeypatch.setattr(sources, "GZ2_MAPPING", mapping)
    monkeypatch.setattr(sources, "GZ2_IMAGES", images)
    return sources.gz2_files()


@pytest.fixture
def published(monkeypatch, server, gz2_files):
    """Point the public addresses at the loopback server; Zenodo's files carry an md5, as the real ones do."""
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in gz2_files.items()}
    tables = {name: sources.RemoteFile(f.filename, f"{server.base}/{f.filename}")
              for name, f in sources.GZ2_TABLES.items()}
    mapping = sources.RemoteFile(
        sources.GZ2_MAPPING.filename,
        f"{server.base}/{sources.GZ2_MAPPING.filename}?download=1",
        md5=md5[sources.GZ2_MAPPING.filename],
    )
    images = sources.RemoteFile(
        sources.GZ2_IMAGES.filename,
        f"{server.base}/{sources.GZ2_IMAGES.filename}?download=1",
        md5=md5[sources.GZ2_IMAGES.filename],
    )
    return point_sources(monkeypatch, tables, mapping, images)


def _unreachable(f: sources.RemoteFile, md5: str | None = None) -> sources.RemoteFile:
    return sources.RemoteFile(f.filename, "http://127.0.0.1:9/none", md5=md5 if md5 is not None else f.md5)


def _fetch(root, source=None, table="willett13"):
    return fetch_gz2(root, source, table=table, progress=False, backoff=0.0, timeout=10.0)


def _zip_requests(state):
    return [rng for name, rng in state.requests if name == sources.GZ2_IMAGES.filename]


# --------------------------------------------------------------------------- GZ2


def test_full_fetch_writes_catalog_manifest_and_missing_list(tmp_path, server, published, gz2_files):
    root = tmp_path / "gz2"
    summary = _fetch(root)

    n = len(PASSING) + N_FAIL
    assert summary["rows"] == n and summary["missing"] == 2 and summary["images_found"] == n - 2
    assert summary["up_to_date"] is False and summary["table"] == "willett13"
    fetched = default_files(gz2_files)
    assert sorted(summary["downloaded"]) == sorted(fetched)
    assert "zoo2MainSpecz.csv.gz" in fetched and not (root / "gz2_hart16.csv.gz").exists()
    for name, data in fetched.items():
        assert (root / name).read_bytes() == data
        assert not (root / f"{name}.part").exists()

    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["table"]["name"] == "willett13" and manifest["table"]["file"] == "zoo2MainSpecz.csv.gz"
    assert "Willett et al. (2013)" in manifest["table"]["reference"]
    for name, data in fetched.items():
        entry = manifest["files"][name]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["md5"] == hashlib.md5(data).hexdigest()
        assert entry["size"] == len(data)
        assert entry["source"].startswith(server.base) and entry["fetched"]
    assert manifest["images"]["complete"] and manifest["images"]["n_files"] == len(list((root / "images").iterdir()))
    assert not any(p.name.startswith("._") for p in (root / "images").iterdir())

    table = read_catalog(root / "catalog.parquet")  # the GZ2 schema, accepted as is
    assert list(table["dr7objid"]) == [FIRST_ID + 1000 * k for k in range(n)]
    assert table["file"].isna().sum() == 2
    assert table.loc[TWO_ASSETS, "file"] == f"images/{100 + TWO_ASSETS}.jpg"
    resolved = resolve_image_paths(table, root / "catalog.parquet")
    assert all((root / "images" / f"{100 + k}.jpg").samefile(resolved["file"][k])
               for k in range(n) if k not in (NO_MAPPING_ROW, ASSET_NOT_IN_ZIP))

    missing = pd.read_csv(root / "missing.csv")
    assert list(missing.columns) == ["id", "reason"]
    reasons = dict(zip(missing["id"], missing["reason"], strict=True))
    assert reasons[FIRST_ID + 1000 * NO_MAPPING_ROW] == "no row in gz2_filename_mapping.csv"
    assert reasons[FIRST_ID + 1000 * ASSET_NOT_IN_ZIP] == f"image {100 + ASSET_NOT_IN_ZIP}.jpg not in images_gz2.zip"

    selection = select_clean_sample(table, "gz2")
    assert selection.n_selected == len(PASSING)


def test_hart_table_on_request_and_switching_back_rebuilds_the_catalog(tmp_path, server, published, gz2_files):
    """Both tables read and select; the manifest records which one the catalogue holds."""
    root = tmp_path / "gz2"
    hart = _fetch(root, table="hart16")
    assert hart["table"] == "hart16" and "gz2_hart16.csv.gz" in hart["downloaded"]
    assert json.loads((root / "manifest.json").read_text())["table"]["file"] == "gz2_hart16.csv.gz"
    hart_selection = select_clean_sample(read_catalog(root / "catalog.parquet"), "gz2")
    # the two galaxies whose Hart debiased fraction is 0.75 fail cut 5 there
    assert hart_selection.n_selected == len(PASSING) - len(DEBIASED_APART)

    server.state.requests.clear()
    assert _fetch(root, table="hart16")["up_to_date"] is True and server.state.requests == []
    willett = _fetch(root)  # the default: the paper's table
    assert willett["up_to_date"] is False and willett["table"] == "willett13"
    assert [name for name, _ in server.state.requests] == ["zoo2MainSpecz.csv.gz"]  # images and mapping reused
    willett_selection = select_clean_sample(read_catalog(root / "catalog.parquet"), "gz2")
    assert willett_selection.n_selected == len(PASSING)
    assert list(willett_selection.selected["label"]) == list(PASSING)


def test_both_vote_table_layouts_read_and_select(tmp_path):
    labels = [*PASSING, *[None] * N_FAIL]
    ids = [FIRST_ID + 1000 * k for k in range(len(labels))]
    for name, expected in (("willett13", len(PASSING)), ("hart16", len(PASSING) - len(DEBIASED_APART))):
        path = tmp_path / sources.GZ2_TABLES[name].filename
        path.write_bytes(gzip.compress(vote_table(labels, ids, name).to_csv(index=False).encode()))
        table = read_catalog(path)
        assert list(table["dr7objid"]) == ids
        selection = select_clean_sample(table, "gz2")
        assert selection.n_selected == expected and selection.n_missing == 0
    assert not any(c.endswith("_weight") for c in vote_table(labels, ids, "hart16").columns)  # not needed


def test_unknown_table_is_a_one_line_error(tmp_path):
    with pytest.raises(SpiralArmsError, match=r"^--table 'gz2': choose willett13 or hart16$"):
        _fetch(tmp_path / "gz2", table="gz2")


def test_rerun_is_a_no_op_without_network(tmp_path, server, published):
    root = tmp_path / "gz2"
    first = _fetch(root)
    server.state.requests.clear()
    again = _fetch(root)
    assert again["up_to_date"] is True and server.state.requests == []
    assert {k: again[k] for k in ("rows", "images_found", "missing")} == {
        k: first[k] for k in ("rows", "images_found", "missing")
    }
    # Losing the catalogue rebuilds it from the files in place: still no request.
    (root / "catalog.parquet").unlink()
    rebuilt = _fetch(root)
    assert rebuilt["up_to_date"] is False and rebuilt["rows"] == first["rows"]
    assert server.state.requests == []


def test_dropped_connection_is_resumed_with_a_range_request(tmp_path, server, published, gz2_files):
    data = gz2_files[sources.GZ2_IMAGES.filename]
    half = len(data) // 2
    server.state.drop_after[sources.GZ2_IMAGES.filename] = half
    root = tmp_path / "gz2"
    _fetch(root)
    assert _zip_requests(server.state) == [None, f"bytes={half}-"]
    assert (root / sources.GZ2_IMAGES.filename).read_bytes() == data


def test_partial_file_from_an_earlier_run_is_resumed(tmp_path, server, published, gz2_files):
    data = gz2_files[sources.GZ2_IMAGES.filename]
    third = len(data) // 3
    root = tmp_path / "gz2"
    root.mkdir()
    (root / f"{sources.GZ2_IMAGES.filename}.part").write_bytes(data[:third])
    _fetch(root)
    assert _zip_requests(server.state) == [f"bytes={third}-"]
    assert (root / sources.GZ2_IMAGES.filename).read_bytes() == data
    manifest = json.loads((root / "manifest.json").read_text())
    entry = manifest["files"][sources.GZ2_IMAGES.filename]
    assert entry["resumed_from"] == third and entry["md5"] == hashlib.md5(data).hexdigest()


def test_whole_part_file_is_finished_without_a_body(tmp_path, server, gz2_files):
    # Killed between the last byte and the rename: the server answers 416 to the range.
    data = gz2_files[sources.GZ2_IMAGES.filename]
    dest = tmp_path / "images_gz2.zip"
    dest.with_name(dest.name + ".part").write_bytes(data)
    download(f"{server.base}/images_gz2.zip", dest, md5=hashlib.md5(data).hexdigest(), progress=False)
    assert dest.read_bytes() == data and _zip_requests(server.state) == [f"bytes={len(data)}-"]


def test_server_ignoring_range_restarts_cleanly(tmp_path, server, gz2_files):
    server.state.ignore_range = True
    data = gz2_files[sources.GZ2_IMAGES.filename]
    dest = tmp_path / "images_gz2.zip"
    dest.with_name(dest.name + ".part").write_bytes(b"not the start of the file" * 10)
    record = download(
        f"{server.base}/images_gz2.zip", dest, md5=hashlib.md5(data).hexdigest(), progress=False, backoff=0.0
    )
    assert dest.read_bytes() == data and record["size"] == len(data)
    assert _zip_requests(server.state) == ["bytes=250-"]


def test_checksum_mismatch_leaves_no_file(tmp_path, server, published, monkeypatch):
    _, mapping, _ = published
    monkeypatch.setattr(sources, "GZ2_MAPPING", sources.RemoteFile(mapping.filename, mapping.url, md5="0" * 32))
    root = tmp_path / "gz2"
    with pytest.raises(SpiralArmsError) as info:
        _fetch(root)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("gz2_filename_mapping.csv: md5 ") and "0" * 32 in message
    assert not (root / sources.GZ2_MAPPING.filename).exists()
    assert not (root / f"{sources.GZ2_MAPPING.filename}.part").exists()


def test_mirror_base_url(tmp_path, server, published, monkeypatch):
    # The public addresses are unreachable; --source BASE takes every file from the mirror,
    # still checked against the published checksums.
    tables = {name: _unreachable(f) for name, f in sources.GZ2_TABLES.items()}
    point_sources(monkeypatch, tables, _unreachable(published[1]), _unreachable(published[2]))
    summary = fetch_gz2(tmp_path / "gz2", server.base, progress=False, backoff=0.0)
    assert summary["images_found"] == len(PASSING) + N_FAIL - 2
    assert sorted(name for name, _ in server.state.requests) == sorted(f.filename for f in published)


def test_offline_source_folder_is_used_in_place(tmp_path, gz2_files, monkeypatch):
    # No server at all: the public addresses are unreachable, the folder is enough.
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in gz2_files.items()}
    tables = {name: _unreachable(f, md5[f.filename]) for name, f in sources.GZ2_TABLES.items()}
    point_sources(monkeypatch, tables, _unreachable(sources.GZ2_MAPPING, md5[sources.GZ2_MAPPING.filename]),
                  _unreachable(sources.GZ2_IMAGES, md5[sources.GZ2_IMAGES.filename]))
    folder = tmp_path / "downloads"
    folder.mkdir()
    for name, data in default_files(gz2_files).items():  # the Hart table is not needed
        (folder / name).write_bytes(data)
    root = tmp_path / "gz2"
    summary = _fetch(root, folder)
    assert summary["missing"] == 2 and summary["downloaded"] == []
    assert not (root / sources.GZ2_IMAGES.filename).exists()  # not copied
    manifest = json.loads((root / "manifest.json").read_text())
    archive = folder / sources.GZ2_IMAGES.filename
    assert manifest["files"][archive.name]["path"] == str(archive.resolve())
    assert _fetch(root, folder)["up_to_date"] is True


def test_offline_source_folder_missing_a_file(tmp_path, gz2_files):
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "zoo2MainSpecz.csv.gz").write_bytes(gz2_files["zoo2MainSpecz.csv.gz"])
    with pytest.raises(SpiralArmsError, match="no file gz2_filename_mapping.csv there"):
        _fetch(tmp_path / "gz2", folder)
    with pytest.raises(SpiralArmsError, match="no file gz2_hart16.csv.gz there"):
        _fetch(tmp_path / "gz2", folder, table="hart16")


def test_http_errors_are_one_line(tmp_path, server):
    with pytest.raises(SpiralArmsError, match=r"HTTP 404"):
        download(f"{server.base}/nothing.zip", tmp_path / "nothing.zip", progress=False)
    with pytest.raises(SpiralArmsError, match="cannot reach 127.0.0.1:9 .*--source DIR"):
        download("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", progress=False, retries=0)


def test_interrupted_extraction_resumes(tmp_path, gz2_files):
    archive = tmp_path / "images_gz2.zip"
    archive.write_bytes(gz2_files[sources.GZ2_IMAGES.filename])
    images = tmp_path / "images"
    first = extract_images(archive, images, progress=False)
    expected = {p.name: p.read_bytes() for p in images.iterdir()}
    victims = sorted(expected)[:2]
    (images / victims[0]).unlink()
    (images / victims[1]).write_bytes(expected[victims[1]][:10])  # cut short
    again = extract_images(archive, images, progress=False)
    assert again == {"n_files": first["n_files"], "n_written": 2, "n_skipped": first["n_files"] - 2}
    assert {p.name: p.read_bytes() for p in images.iterdir()} == expected


def test_removed_archive_is_not_fetched_again(tmp_path, server, published):
    root = tmp_path / "gz2"
    fetch_gz2(root, progress=False, remove_archive=True, backoff=0.0)
    assert not (root / sources.GZ2_IMAGES.filename).exists() and (root / "images").is_dir()
    server.state.requests.clear()
    (root / "catalog.parquet").unlink()
    assert _fetch(root)["images_found"] == len(PASSING) + N_FAIL - 2
    assert server.state.requests == []


def test_cli_errors_are_one_line_with_the_cli_wrapper(tmp_path):
    from spiralarms.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["data", "kaggle", str(tmp_path / "kaggle")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the Kaggle Galaxy Challenge files") and result.stderr.count("\n") == 1
    result = runner.invoke(app, ["prepare", str(tmp_path / "none.csv"), str(tmp_path / "store")])
    assert result.exit_code == 1 and result.stderr == f"error: catalog {tmp_path / 'none.csv'}: no such file\n"


def test_cli_data_gz2_and_prepare(tmp_path, server, published):
    app = typer.Typer()
    app.add_typer(data_app, name="data")
    app.command()(prepare)
    runner = CliRunner()
    root = tmp_path / "gz2"
    result = runner.invoke(app, ["data", "gz2", str(root), "--source", server.base, "--table", "hart16", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["rows"] == len(PASSING) + N_FAIL and payload["missing"] == 2 and payload["table"] == "hart16"
    result = runner.invoke(app, ["data", "gz2", str(root), "--source", server.base])
    assert result.exit_code == 0, result.output
    assert "(vote table willett13)" in result.stdout
    args = [str(root / "catalog.parquet"), str(tmp_path / "store"), "--crop", "32", "--workers", "1", "--json"]
    result = runner.invoke(app, ["prepare", *args])
    assert result.exit_code == 0, result.output
    store = json.loads(result.stdout)
    # Selected galaxies whose image is missing are kept and counted as failures.
    selected_without_image = sum(1 for k in (NO_MAPPING_ROW, ASSET_NOT_IN_ZIP) if k < len(PASSING))
    assert store["n"] == len(PASSING) and store["n_failed"] == selected_without_image


# --------------------------------------------------------------------------- Kaggle

KAGGLE_COLUMNS = [
    f"Class{task}.{answer}"
    for task, answers in ((1, 3), (2, 2), (3, 2), (4, 2), (5, 4), (6, 2), (7, 3), (8, 7), (9, 3), (10, 3), (11, 6))
    for answer in range(1, answers + 1)
]


def make_kaggle_folder(folder, images_as_zip: bool = True):
    folder.mkdir(parents=True)
    ids = [100008 + 7 * k for k in range(8)]
    rows = []
    for k, galaxy in enumerate(ids):
        row = dict.fromkeys(KAGGLE_COLUMNS, 0.0)
        row.update({"Class1.2": 0.9, "Class2.2": 0.8, "Class4.1": 0.7, "Class4.2": 0.05})
        row[f"Class11.{1 + k % 6}"] = 0.6
        rows.append({"GalaxyID": galaxy, **row})
    csv = pd.DataFrame(rows).to_csv(index=False).encode()
    with zipfile.ZipFile(folder / "training_solutions_rev1.zip", "w") as zf:
        zf.writestr("training_solutions_rev1.csv", csv)
    kept = ids[:-1]  # the last galaxy has no image
    if images_as_zip:
        with zipfile.ZipFile(folder / "images_training_rev1.zip", "w") as zf:
            for galaxy in kept:
                zf.writestr(f"images_training_rev1/{galaxy}.jpg", _jpeg(galaxy))
    else:
        (folder / "images_training_rev1").mkdir()
        for galaxy in kept:
            (folder / "images_training_rev1" / f"{galaxy}.jpg").write_bytes(_jpeg(galaxy))
    return ids


@pytest.mark.parametrize("images_as_zip", [True, False])
def test_kaggle_from_a_local_folder(tmp_path, images_as_zip):
    ids = make_kaggle_folder(tmp_path / "kaggle-downloads", images_as_zip)
    root = tmp_path / "kaggle"
    summary = import_kaggle(root, tmp_path / "kaggle-downloads", progress=False)
    assert summary["rows"] == len(ids) and summary["images_found"] == len(ids) - 1 and summary["missing"] == 1
    table, schema = read_catalog(root / "catalog.parquet", return_schema=True)
    assert schema == "kaggle" and list(table["GalaxyID"]) == ids
    resolved = resolve_image_paths(table, root / "catalog.parquet")
    assert all(os.path.isfile(f) for f in resolved["file"][:-1]) and resolved["file"].iloc[-1] is None
    missing = pd.read_csv(root / "missing.csv")
    assert list(missing["id"]) == [ids[-1]] and "no image" in missing["reason"][0]
    assert import_kaggle(root, tmp_path / "kaggle-downloads", progress=False)["up_to_date"] is True


def test_kaggle_without_source_explains_where_to_get_the_files(tmp_path):
    with pytest.raises(SpiralArmsError) as info:
        import_kaggle(tmp_path / "kaggle", None, progress=False)
    assert "kaggle.com" in str(info.value) and "--source DIR" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpiralArmsError, match="no Kaggle solutions table there"):
        import_kaggle(tmp_path / "kaggle", tmp_path / "empty", progress=False)


def test_stale_published_checksum_is_kept_unverified_and_accepted_on_request(tmp_path, server, published, monkeypatch):
    """A file whose published MD5 is stale is kept as .unverified, not downloaded again, and accepted by --accept-checksum."""
    _, mapping, _ = published
    monkeypatch.setattr(sources, "GZ2_MAPPING", sources.RemoteFile(mapping.filename, mapping.url, md5="0" * 32))
    from spiralarms.cli import app

    runner = CliRunner()
    root = tmp_path / "gz2"
    first = runner.invoke(app, ["data", "gz2", str(root), "--source", server.base])
    assert first.exit_code == 1
    message = first.output.strip().splitlines()[-1]
    assert "0" * 32 in message and "--accept-checksum md5:" in message
    kept = root / f"{sources.GZ2_MAPPING.filename}.unverified"
    assert kept.is_file() and not (root / sources.GZ2_MAPPING.filename).exists()
    found = hashlib.md5(kept.read_bytes()).hexdigest()
    assert found in message
    requests = [name for name, _ in server.state.requests].count(sources.GZ2_MAPPING.filename)
    bad = runner.invoke(app, ["data", "gz2", str(root), "--source", server.base, "--accept-checksum", "crc:1"])
    assert bad.exit_code == 1 and "--accept-checksum" in bad.output and "md5:HEX" in bad.output
    again = runner.invoke(app, ["data", "gz2", str(root), "--source", server.base, "--accept-checksum", f"md5:{found}"])
    assert again.exit_code == 0, again.output
    assert [name for name, _ in server.state.requests].count(sources.GZ2_MAPPING.filename) == requests  # not fetched again
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["files"][sources.GZ2_MAPPING.filename]["accepted"] is True
    assert (root / sources.GZ2_MAPPING.filename).is_file() and not kept.exists()


def test_a_catalogue_the_package_did_not_write_is_not_replaced(tmp_path):
    """``data gz2|kaggle ROOT`` writes ROOT/catalog.parquet: a user's file there is refused, untouched."""
    from spiralarms.cli import app

    make_kaggle_folder(tmp_path / "kaggle-downloads")
    for name in ("catalog.parquet", "missing.csv"):
        root = tmp_path / f"mine-{name}"
        root.mkdir()
        (root / name).write_bytes(b"the user's own table")
        result = CliRunner().invoke(app, ["data", "kaggle", str(root), "--source", str(tmp_path / "kaggle-downloads")])
        assert result.exit_code == 1
        assert result.stderr == (
            f"error: {root / name}: exists, and no manifest.json says 'spiralarms data' wrote it; "
            "writing the catalogue would replace it; give a new or empty folder\n"
        )
        assert (root / name).read_bytes() == b"the user's own table"
        with pytest.raises(SpiralArmsError, match="no manifest.json says"):
            fetch_gz2(root, progress=False)
    # a folder the package wrote is rebuilt as before
    root = tmp_path / "kaggle"
    import_kaggle(root, tmp_path / "kaggle-downloads", progress=False)
    (root / "catalog.parquet").unlink()
    assert import_kaggle(root, tmp_path / "kaggle-downloads", progress=False)["up_to_date"] is False
