"""Real data: fetch Galaxy Zoo 2 and import the Kaggle Galaxy Challenge files.

- :func:`fetch_gz2`: the paper's data (the Willett et al. 2013 vote table, or the
  Hart et al. 2016 one with ``table="hart16"``, the GZ2 images and their filename
  mapping) from the public addresses in :mod:`spiralarms.acquire.sources`,
  a mirror, or a local folder; resumable, checksummed, recorded in ``manifest.json``.
- :func:`import_kaggle`: the Kaggle training set from the folder the user
  downloaded it to.
- :func:`fetch_mpajhu_dr7`, :func:`fetch_mpajhu_skyserver`: the MPA-JHU
  stellar-mass catalogue of section 6 (:mod:`spiralarms.acquire.mpajhu`).

The first two write ``ROOT/catalog.parquet`` (the catalogue with a ``file`` column) and
``ROOT/missing.csv`` (galaxies without an image, with the reason).
"""

from spiralarms.acquire.download import download, file_checksums
from spiralarms.acquire.gz2 import build_gz2_catalog, fetch_gz2, recorded_vote_table
from spiralarms.acquire.kaggle import build_kaggle_catalog, import_kaggle
from spiralarms.acquire.mpajhu import MPAJHU_DR7_URLS, fetch_mpajhu_dr7, fetch_mpajhu_skyserver
from spiralarms.acquire.sources import DEFAULT_GZ2_TABLE, GZ2_TABLES, RemoteFile, gz2_files

__all__ = [
    "DEFAULT_GZ2_TABLE",
    "GZ2_TABLES",
    "MPAJHU_DR7_URLS",
    "RemoteFile",
    "gz2_files",
    "recorded_vote_table",
    "build_gz2_catalog",
    "build_kaggle_catalog",
    "download",
    "fetch_gz2",
    "fetch_mpajhu_dr7",
    "fetch_mpajhu_skyserver",
    "file_checksums",
    "import_kaggle",
]
