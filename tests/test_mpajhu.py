"""MPA-JHU catalogue: reading (FITS, CSV, DR7 pair), reliability cuts, downloads, SkyServer paging."""

from __future__ import annotations

import http.server
import threading
from functools import partial

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from spiralarms.errors import SpiralArmsError
from spiralarms.acquire.mpajhu import download, fetch_mpajhu_dr7, fetch_mpajhu_skyserver, skyserver_query
from spiralarms.science.mpajhu import FILTERS, apply_reliability_filters, dr7_objid, load_mpajhu, read_mpajhu

DR7_ID = 587722981741363294  # run 752, rerun 40, camcol 1, field 263, object 94


def catalogue_columns(n_ok=5):
    """Rows failing each cut once, in filter order, then ``n_ok`` good rows.

    Row 0: RELIABLE = 0; rows 1-2: Z_WARNING != 0; rows 3-5: mass -9999; row 6: Z = 0,
    row 7: Z < 0. Each later failure passes the earlier cuts, so the counts are
    1, 2, 3, 2.
    """
    n = 8 + n_ok
    columns = {
        "SPECOBJID": np.arange(n, dtype=np.int64) + 299489676975171584,
        "DR7OBJID": DR7_ID + np.arange(n, dtype=np.int64),
        "RA": np.linspace(150.0, 151.0, n),
        "DEC": np.linspace(2.0, 3.0, n),
        "Z": np.full(n, 0.05),
        "Z_WARNING": np.zeros(n, dtype=np.int16),
        "RELIABLE": np.ones(n, dtype=np.int16),
        "LGM_TOT_P50": np.linspace(9.5, 11.5, n),
    }
    columns["RELIABLE"][0] = 0
    columns["Z_WARNING"][1:3] = [4, 16]
    columns["LGM_TOT_P50"][3:6] = -9999.0
    columns["Z"][6:8] = [0.0, -0.001]
    return columns


EXPECTED_REMOVED = {"RELIABLE != 0": 1, "Z_WARNING == 0": 2, "LGM_TOT_P50 != -9999": 3, "Z > 0": 2}


def test_filter_names_follow_the_paper():
    assert FILTERS == ("RELIABLE != 0", "Z_WARNING == 0", "LGM_TOT_P50 != -9999", "Z > 0")


def test_fits_filters_count_each_cut(tmp_path):
    path = tmp_path / "galspec.fits"
    Table(catalogue_columns()).write(path)
    catalogue = load_mpajhu(path)
    assert catalogue.filters.removed == EXPECTED_REMOVED
    assert catalogue.filters.n_input == 13 and catalogue.filters.n_kept == 5
    assert len(catalogue.table) == 5
    assert catalogue.id_origin == "DR7OBJID"
    assert catalogue.table["objid"].tolist() == [DR7_ID + i for i in range(8, 13)]
    assert catalogue.table["objid"].dtype == "Int64"
    assert (catalogue.table["lgm_tot_p50"] != -9999).all()
    assert catalogue.filters.to_dict()["removed"] == EXPECTED_REMOVED


def test_filters_are_applied_in_order(tmp_path):
    """A row failing several cuts is counted by the first one only."""
    columns = catalogue_columns(n_ok=1)
    columns["Z_WARNING"][0] = 4  # row 0 also fails Z_WARNING but RELIABLE counts it
    columns["Z"][3] = -1.0  # row 3 also fails Z > 0 but the mass cut counts it
    path = tmp_path / "galspec.fits"
    Table(columns).write(path)
    assert load_mpajhu(path).filters.removed == EXPECTED_REMOVED


def test_missing_values_fail_their_cut():
    from spiralarms.science.mpajhu import MPAJHUCatalogue

    table = pd.DataFrame(
        {
            "objid": pd.array([1, 2, 3, 4], dtype="Int64"),
            "z": [0.1, 0.1, np.nan, 0.1],
            "z_warning": [0.0, 0.0, 0.0, 0.0],
            "reliable": [np.nan, 1.0, 1.0, 1.0],
            "lgm_tot_p50": [10.0, np.nan, 10.0, 10.0],
        }
    )
    out = apply_reliability_filters(MPAJHUCatalogue(table, "memory", "OBJID"))
    assert out.filters.removed == {"RELIABLE != 0": 1, "Z_WARNING == 0": 0, "LGM_TOT_P50 != -9999": 1, "Z > 0": 1}
    assert out.table["objid"].tolist() == [4]


def test_csv_lower_case_columns_and_exact_ids(tmp_path):
    frame = pd.DataFrame(catalogue_columns())
    frame.columns = [c.lower() for c in frame.columns]
    frame = frame.rename(columns={"dr7objid": "bestObjID"})
    frame["bestObjID"] = 1237651191899619530 + np.arange(len(frame))  # beyond 2**53
    path = tmp_path / "galspec.csv.gz"
    frame.to_csv(path, index=False)
    catalogue = load_mpajhu(path)
    assert catalogue.filters.removed == EXPECTED_REMOVED
    assert catalogue.id_origin == "bestObjID"
    assert catalogue.table["objid"].iloc[0] == 1237651191899619530 + 8
    assert catalogue.table["specobjid"].iloc[0] == 299489676975171584 + 8


def test_parquet_is_read(tmp_path):
    path = tmp_path / "galspec.parquet"
    pd.DataFrame(catalogue_columns()).to_parquet(path)
    assert load_mpajhu(path).filters.n_kept == 5


@pytest.mark.parametrize("column", ["LGM_TOT_P50", "Z_WARNING", "RELIABLE", "Z"])
def test_missing_column_names_file_and_column(tmp_path, column):
    columns = catalogue_columns()
    del columns[column]
    path = tmp_path / "galspec.fits"
    Table(columns).write(path)
    with pytest.raises(SpiralArmsError) as err:
        read_mpajhu(path)
    message = str(err.value)
    assert str(path) in message and column in message and "\n" not in message


def test_needs_an_id_or_positions(tmp_path):
    columns = catalogue_columns()
    for name in ("DR7OBJID", "RA"):
        del columns[name]
    path = tmp_path / "galspec.fits"
    Table(columns).write(path)
    with pytest.raises(SpiralArmsError, match="'RA'"):
        read_mpajhu(path)


def test_non_numeric_value_is_reported(tmp_path):
    frame = pd.DataFrame(catalogue_columns())
    frame["Z"] = frame["Z"].astype(object)
    frame.loc[4, "Z"] = "oops"
    path = tmp_path / "galspec.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SpiralArmsError, match="'Z'.*row 5"):
        read_mpajhu(path)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(SpiralArmsError, match="no such file"):
        read_mpajhu(tmp_path / "nope.fits")
    (tmp_path / "cat.txt").write_text("x")
    with pytest.raises(SpiralArmsError, match="unknown file type"):
        read_mpajhu(tmp_path / "cat.txt")


def test_dr7_objid_bit_layout():
    assert int(dr7_objid(752, 40, 1, 263, 94)) == DR7_ID
    assert int(dr7_objid(752, 40, 4, 571, 626)) == 587722983372161650
    assert int(dr7_objid(1331, 301, 5, 260, 202, sky_version=2)) == 1237651191899619530
    with pytest.raises(SpiralArmsError):
        dr7_objid(752, 40, 9, 263, 94)


def write_dr7_pair(folder, n_rows=None):
    """gal_info (PHOTOID, RA, DEC, Z, Z_WARNING) and totlgm (MEDIAN, ...) files, row-aligned."""
    columns = catalogue_columns()
    n = len(columns["Z"])
    photoid = np.zeros((n, 5), dtype=np.int32)
    photoid[:, 0], photoid[:, 1], photoid[:, 2], photoid[:, 3] = 752, 40, 1, 263
    photoid[:, 4] = 94 + np.arange(n)
    info = Table(
        {
            "PLATEID": np.full(n, 266, dtype=np.int16),
            "PHOTOID": photoid,
            "RA": columns["RA"].astype(np.float32),
            "DEC": columns["DEC"].astype(np.float32),
            "Z": columns["Z"].astype(np.float32),
            "Z_WARNING": columns["Z_WARNING"].astype(np.int32),
        }
    )
    m = n if n_rows is None else n_rows
    mass = Table(
        {
            "AVG": columns["LGM_TOT_P50"][:m].astype(np.float32),
            "MEDIAN": columns["LGM_TOT_P50"][:m].astype(np.float32),
            "P16": columns["LGM_TOT_P50"][:m].astype(np.float32) - 0.1,
        }
    )
    info_path, mass_path = folder / "gal_info_dr7_v5_2.fit", folder / "totlgm_dr7_v5_2.fit"
    info.write(info_path)
    mass.write(mass_path)
    return info_path, mass_path


def test_dr7_pair_is_joined_by_row(tmp_path):
    info_path, mass_path = write_dr7_pair(tmp_path)
    for paths in ([info_path, mass_path], [mass_path, info_path]):
        catalogue = load_mpajhu(paths)
        removed = catalogue.filters.removed
        # DR7 has no RELIABLE flag: the cut is skipped and its row 0 is kept.
        assert removed == {"RELIABLE != 0": None, "Z_WARNING == 0": 2, "LGM_TOT_P50 != -9999": 3, "Z > 0": 2}
        assert catalogue.filters.n_kept == 6
        assert "RELIABLE" in catalogue.filters.notes[0]
        assert catalogue.id_origin == "PHOTOID"
        assert catalogue.table["objid"].iloc[0] == DR7_ID
        np.testing.assert_allclose(catalogue.table["lgm_tot_p50"].iloc[1:], np.linspace(9.5, 11.5, 13)[8:], rtol=1e-6)


def test_dr7_pair_of_different_lengths_is_refused(tmp_path):
    info_path, mass_path = write_dr7_pair(tmp_path, n_rows=10)
    with pytest.raises(SpiralArmsError, match="same length"):
        read_mpajhu([info_path, mass_path])


def test_two_mass_files_are_not_a_pair(tmp_path):
    _, mass_path = write_dr7_pair(tmp_path)
    with pytest.raises(SpiralArmsError, match="DR7 pair"):
        read_mpajhu([mass_path, mass_path])


# ----------------------------------------------------------------------- downloads


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files, honouring ``Range: bytes=N-`` when ``ranges`` is on."""

    ranges = True
    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.headers.get("Range"))
        path = self.translate_path(self.path)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            self.send_error(404)
            return
        start = 0
        header = self.headers.get("Range")
        if self.ranges and header and header.startswith("bytes="):
            start = int(header[6:].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    RangeHandler.requests = []
    handler = partial(RangeHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    RangeHandler.ranges = True


def test_download_resumes_from_part_file(server, tmp_path):
    served, url = server
    payload = bytes(range(256)) * 100
    (served / "file.bin").write_bytes(payload)
    dest = tmp_path / "got" / "file.bin"
    dest.parent.mkdir()
    dest.with_name("file.bin.part").write_bytes(payload[:1000])
    assert download(f"{url}/file.bin", dest) == dest
    assert dest.read_bytes() == payload
    assert not dest.with_name("file.bin.part").exists()
    assert RangeHandler.requests == ["bytes=1000-"]
    download(f"{url}/file.bin", dest)  # already there: no request
    assert len(RangeHandler.requests) == 1


def test_fetch_dr7_pair_from_a_local_server(server, tmp_path):
    served, url = server
    info_path, mass_path = write_dr7_pair(served)
    urls = {"info": f"{url}/{info_path.name}", "mass": f"{url}/{mass_path.name}"}
    got = fetch_mpajhu_dr7(tmp_path / "cache", urls=urls, progress=True)
    assert [p.name for p in got] == [info_path.name, mass_path.name]
    assert load_mpajhu(got).filters.n_kept == 6


def test_fetch_dr7_offline_says_where_to_put_the_files(tmp_path):
    urls = {"info": "http://127.0.0.1:9/gal_info.fit.gz", "mass": "http://127.0.0.1:9/totlgm.fit.gz"}
    with pytest.raises(SpiralArmsError) as caught:
        fetch_mpajhu_dr7(tmp_path / "cache", urls=urls, timeout=5)
    message = str(caught.value)
    assert message.startswith("cannot reach 127.0.0.1:9") and "--source" not in message
    assert "gal_info.fit.gz and totlgm.fit.gz" in message and str(tmp_path / "cache") in message


# ------------------------------------------------------------------ SkyServer paging


def fake_skyserver(frame):
    """A stand-in for SDSS.query_sql: answers the keyset query from a DataFrame."""
    calls = []

    def query(sql):
        calls.append(sql)
        top = int(sql.split("TOP ")[1].split()[0])
        after = int(sql.split("i.specObjID > ")[1].split()[0])
        rows = frame[frame["specobjid"] > after].sort_values("specobjid").head(top)
        return Table.from_pandas(rows) if len(rows) else None

    return query, calls


def test_skyserver_query_joins_the_mpajhu_tables():
    sql = skyserver_query(123, 500)
    for table in ("galSpecInfo", "galSpecExtra", "SpecObjAll", "PhotoObjDR7"):
        assert table in sql
    for part in ("TOP 500", "i.specObjID > 123", "ORDER BY i.specObjID", "lgm_tot_p50", "reliable", "dr7objid"):
        assert part in sql


def test_skyserver_fetch_is_chunked_and_resumable(tmp_path):
    frame = pd.DataFrame(catalogue_columns(n_ok=9))
    frame.columns = [c.lower() for c in frame.columns]
    query, calls = fake_skyserver(frame)
    cache = tmp_path / "skyserver"
    first = fetch_mpajhu_skyserver(cache, chunk_rows=5, query=query, max_chunks=2)
    assert first == cache / "chunks" and len(calls) == 2
    assert len(list((cache / "chunks").glob("chunk-*.csv"))) == 2
    final = fetch_mpajhu_skyserver(cache, chunk_rows=5, query=query)
    # 17 rows in chunks of 5: the third query resumes after the 10th row, the fourth is short.
    assert len(calls) == 4
    assert f"i.specObjID > {frame['specobjid'].iloc[9]}" in calls[2]
    catalogue = load_mpajhu(final)
    assert catalogue.filters.n_input == 17 and catalogue.filters.n_kept == 9
    assert catalogue.table["objid"].iloc[0] == DR7_ID + 8
    assert fetch_mpajhu_skyserver(cache, chunk_rows=5, query=query) == final
    assert len(calls) == 4


def test_skyserver_fetch_without_astroquery_says_how_to_get_it(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_astroquery(name, *args, **kwargs):
        if name.startswith("astroquery"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_astroquery)
    with pytest.raises(SpiralArmsError, match="astroquery"):
        fetch_mpajhu_skyserver(tmp_path / "s")
