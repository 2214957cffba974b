"""Fetch the MPA-JHU stellar-mass catalogue: the public DR7 files, or the DR10 tables from SkyServer.

The paper (section 6) takes its stellar masses from the MPA-JHU catalogue of SDSS
DR10 (SkyServer ``galSpecInfo`` and ``galSpecExtra``). :func:`fetch_mpajhu_skyserver`
pages through those tables in resumable chunks; :func:`fetch_mpajhu_dr7` downloads
the DR7 file pair. Both give files that :func:`spiralarms.science.mpajhu.read_mpajhu`
reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from spiralarms.acquire.download import UnreachableError
from spiralarms.acquire.download import download as resumable_download
from spiralarms.catalog.schema import MPAJHU_ID_COLUMNS
from spiralarms.errors import SpiralArmsError, first_line
from spiralarms.io.atomic import write_text
from spiralarms.io.ids import exact_ids
from spiralarms.io.tables import write_table

__all__ = ["MPAJHU_DR7_URLS", "SKYSERVER_DATA_RELEASE", "download", "fetch_mpajhu_dr7", "fetch_mpajhu_skyserver",
           "skyserver_query"]

#: Public DR7 MPA-JHU files (Kauffmann et al. 2003; Brinchmann et al. 2004), by role.
MPAJHU_DR7_URLS: dict[str, str] = {
    "info": "https://wwwmpa.mpa-garching.mpg.de/SDSS/DR7/Data/gal_info_dr7_v5_2.fit.gz",
    "mass": "https://wwwmpa.mpa-garching.mpg.de/SDSS/DR7/Data/totlgm_dr7_v5_2.fit.gz",
}

#: The paper's SkyServer release (section 6, footnote 3).
SKYSERVER_DATA_RELEASE = 10


def download(url: str, dest, *, timeout: float = 60.0, progress: bool = False) -> Path:
    """Download a file once, resumably (``<dest>.part``, HTTP ``Range``, atomic rename).

    A thin wrapper on :func:`spiralarms.acquire.download.download` that skips a file
    already at ``dest``.

    Returns
    -------
    pathlib.Path
        ``dest``.
    """
    dest = Path(dest)
    if not dest.exists():
        resumable_download(url, dest, timeout=timeout, progress=progress)
    return dest


def fetch_mpajhu_dr7(
    folder, *, urls: dict[str, str] | None = None, timeout: float = 60.0, progress: bool = False
) -> tuple[Path, Path]:
    """Download the public DR7 MPA-JHU pair (``gal_info`` and ``totlgm``), resumably.

    Parameters
    ----------
    folder : path
        Where the files go (kept under their own names); files already there are
        not downloaded again.
    urls : dict, optional
        ``{"info": url, "mass": url}``; default :data:`MPAJHU_DR7_URLS`.
    timeout : float, default 60
        Seconds to wait for the server.
    progress : bool, default False
        Show a download bar per file (on a terminal).

    Returns
    -------
    (info_path, mass_path) : tuple of pathlib.Path
        Ready for :func:`read_mpajhu`.
    """
    urls = dict(MPAJHU_DR7_URLS if urls is None else urls)
    folder = Path(folder)
    paths = []
    for role in ("info", "mass"):
        if role not in urls:
            raise SpiralArmsError(f"fetch_mpajhu_dr7: no URL for the {role!r} file")
        name = urls[role].rstrip("/").rsplit("/", 1)[-1]
        try:
            paths.append(download(urls[role], folder / name, timeout=timeout, progress=progress))
        except UnreachableError as exc:
            names = " and ".join(u.rstrip("/").rsplit("/", 1)[-1] for u in urls.values())
            raise SpiralArmsError(
                f"cannot reach {exc.host} for {exc.url}: {exc.reason}; without network access, download {names} "
                f"elsewhere and put them in {folder} (a rerun skips files already there), or give each to "
                "'spiralarms mass' with --mpajhu"
            ) from None
    return paths[0], paths[1]


def skyserver_query(after_specobjid: int, top: int) -> str:
    """The SkyServer SQL for one chunk of the DR10 MPA-JHU catalogue.

    ``galSpecInfo`` joined with ``galSpecExtra`` on ``specObjID``; ``SpecObjAll``
    gives ``bestObjID`` (the DR8+ photometric id) and ``PhotoObjDR7`` (the DR7-DR8
    photometric cross-match) the ``dr7objid`` that GZ2 galaxies carry. Chunks are
    taken in ``specObjID`` order after the last id already fetched (keyset paging), so
    a fetch resumes where it stopped.

    Parameters
    ----------
    after_specobjid : int
        Fetch rows with a larger ``specObjID`` (``-1`` for the first chunk).
    top : int
        Rows per chunk.

    Returns
    -------
    str
    """
    return (
        f"SELECT TOP {int(top)} i.specObjID AS specobjid, s.bestObjID AS bestobjid, "
        "p7.dr7objid AS dr7objid, i.ra AS ra, i.dec AS dec, i.z AS z, "
        "i.z_warning AS z_warning, i.reliable AS reliable, e.lgm_tot_p50 AS lgm_tot_p50 "
        "FROM galSpecInfo AS i "
        "JOIN galSpecExtra AS e ON e.specObjID = i.specObjID "
        "JOIN SpecObjAll AS s ON s.specObjID = i.specObjID "
        "LEFT OUTER JOIN PhotoObjDR7 AS p7 ON p7.dr8objid = s.bestObjID "
        f"WHERE i.specObjID > {int(after_specobjid)} "
        "ORDER BY i.specObjID"
    )


def _astroquery_sql(data_release: int, timeout: float) -> Callable[[str], object]:
    try:
        from astroquery.sdss import SDSS
    except ImportError as exc:
        raise SpiralArmsError(
            "fetching from SkyServer needs astroquery (pip install astroquery); or pass a local "
            "MPA-JHU file with --mpajhu"
        ) from exc

    def query(sql: str):
        try:
            return SDSS.query_sql(sql, data_release=data_release, timeout=timeout, cache=False)
        except Exception as exc:  # astroquery raises requests', its own and astropy's errors
            raise SpiralArmsError(f"SkyServer DR{data_release}: query failed: {first_line(exc)}") from exc

    return query


def _as_frame(result) -> pd.DataFrame:
    if result is None:
        return pd.DataFrame()
    if isinstance(result, pd.DataFrame):
        return result
    return result.to_pandas()


def fetch_mpajhu_skyserver(
    folder,
    *,
    chunk_rows: int = 50_000,
    data_release: int = SKYSERVER_DATA_RELEASE,
    timeout: float = 600.0,
    query: Callable[[str], object] | None = None,
    max_chunks: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fetch the DR10 MPA-JHU catalogue from SkyServer in resumable chunks.

    Each chunk (``chunk_rows`` rows in ``specObjID`` order, see
    :func:`skyserver_query`) is written atomically to ``folder/chunks/chunk-NNNNN.csv``;
    a later call skips the finished chunks and continues after the last
    ``specObjID`` fetched. When a chunk comes back short the catalogue is complete:
    the chunks are joined into ``folder/mpajhu_dr<release>.parquet``.

    Parameters
    ----------
    folder : path
        Cache folder.
    chunk_rows : int, default 50000
        Rows per query (SkyServer answers at most 500000).
    data_release : int, default 10
        SDSS data release (the MPA-JHU galSpec tables are the same from DR8 on).
    timeout : float, default 600
        Seconds per query.
    query : callable, optional
        ``query(sql) -> astropy Table, DataFrame or None``; default
        ``astroquery.sdss.SDSS.query_sql`` (imported only here).
    max_chunks : int, optional
        Stop after fetching this many new chunks (the rest on a later call).
    progress : callable, optional
        ``progress(chunk_index, rows_in_chunk)`` after each chunk.

    Returns
    -------
    pathlib.Path
        The joined catalogue, or the chunk folder when ``max_chunks`` stopped early.
    """
    if chunk_rows < 1:
        raise SpiralArmsError(f"chunk_rows must be at least 1, not {chunk_rows}")
    folder = Path(folder)
    chunks = folder / "chunks"
    chunks.mkdir(parents=True, exist_ok=True)
    final = folder / f"mpajhu_dr{data_release}.parquet"
    done = chunks / "COMPLETE"
    if final.exists():
        return final
    if query is None and not done.exists():
        query = _astroquery_sql(data_release, timeout)

    existing = sorted(chunks.glob("chunk-*.csv"))
    after = -1
    if existing:
        last = pd.read_csv(existing[-1], dtype={"specobjid": str}, usecols=["specobjid"])
        if len(last):
            after = max(int(v) for v in last["specobjid"])
    fetched = 0
    index = len(existing)
    while not done.exists():
        if max_chunks is not None and fetched >= max_chunks:
            return chunks
        frame = _as_frame(query(skyserver_query(after, chunk_rows)))
        frame.columns = [str(c).lower() for c in frame.columns]
        if len(frame):
            if "specobjid" not in frame.columns:
                raise SpiralArmsError("SkyServer answer has no specobjid column; cannot page through it")
            path = chunks / f"chunk-{index:05d}.csv"
            write_table(frame, path)
            after = max(int(v) for v in frame["specobjid"])
            index += 1
        fetched += 1
        if progress is not None:
            progress(index, len(frame))
        if len(frame) < chunk_rows:
            write_text(done, "the last chunk came back short: the catalogue is complete\n")

    parts = sorted(chunks.glob("chunk-*.csv"))
    if not parts:
        raise SpiralArmsError(f"SkyServer DR{data_release}: the MPA-JHU query returned no rows")
    frames = [pd.read_csv(p, dtype={c: str for c in MPAJHU_ID_COLUMNS}) for p in parts]
    joined = pd.concat(frames, ignore_index=True)
    for column in joined.columns:
        if column in MPAJHU_ID_COLUMNS:
            joined[column] = exact_ids(joined[column], str(chunks), column).to_numpy()
    return write_table(joined, final)
