"""Where the real data lives: every public address that spiralarms downloads from.

All addresses are kept here, in one place, so that a mirror or a moved file means one
edit. The paper's data (Lee, Soo & Sharoni, section 2) is the Galaxy Zoo 2 main
sample:

- the Hart et al. (2016) table of GZ2 vote fractions (``gz2_hart16.csv.gz``,
  "GZ2 - Table 1 - Normal-depth sample with new debiasing method", linked from
  https://data.galaxyzoo.org);
- the 243,434 subject images of the "original" GZ2 sample, 424 x 424 px JPEGs
  (``images_gz2.zip``) and the table that names them (``gz2_filename_mapping.csv``:
  ``objid``, ``sample``, ``asset_id``; 355,990 rows), both in Zenodo record 3565489
  (the Galaxy Zoo team's README of that record gives both counts).

The MD5 sums of the two Zenodo files are the ones Zenodo lists for the record, as
public loaders check them (for the images, M. Walmsley's ``pytorch-galaxy-datasets``
used by Zoobot); no size is recorded because none could be confirmed.
The Hart table has no published checksum: the one computed on download is recorded
in the manifest instead.

The Kaggle "Galaxy Zoo - The Galaxy Challenge" files have no public download address
(Kaggle asks users to sign in and accept the competition rules), so they are always
read from a folder the user downloaded them to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "RemoteFile",
    "GZ2_TABLE",
    "GZ2_MAPPING",
    "GZ2_IMAGES",
    "GZ2_FILES",
    "GZ2_N_IMAGES",
    "GZ2_MAPPING_ROWS",
    "GALAXY_ZOO_DATA_PAGE",
    "ZENODO_RECORD",
    "KAGGLE_COMPETITION",
    "KAGGLE_SOLUTIONS",
    "KAGGLE_IMAGES",
]


@dataclass(frozen=True)
class RemoteFile:
    """A file to download, and what is known of it in advance.

    Attributes
    ----------
    filename : str
        Name the file is stored under.
    url : str
        Public address.
    size : int or None
        Size in bytes, where known.
    md5, sha256 : str or None
        Published checksums (lower-case hexadecimal), where known.
    description : str
        What the file holds, in a few words.
    """

    filename: str
    url: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    description: str = ""

    def at(self, base_url: str) -> RemoteFile:
        """The same file on a mirror that serves it as ``BASE_URL/<filename>``.

        Parameters
        ----------
        base_url : str
            The mirror's base address (``http://``, ``https://`` or ``file://``).

        Returns
        -------
        RemoteFile
            A copy with ``url`` replaced; size and checksums are kept, so the mirror's
            copy is checked against the published ones.
        """
        return replace(self, url=f"{base_url.rstrip('/')}/{self.filename}")


#: Galaxy Zoo data releases (tables of GZ1, GZ2, Hart et al. 2016, ...).
GALAXY_ZOO_DATA_PAGE = "https://data.galaxyzoo.org"

#: Zenodo record of the GZ2 "original sample" images and their filename mapping.
ZENODO_RECORD = "https://zenodo.org/records/3565489"

GZ2_TABLE = RemoteFile(
    filename="gz2_hart16.csv.gz",
    url="https://gz2hart.s3.amazonaws.com/gz2_hart16.csv.gz",
    description="Hart et al. (2016) GZ2 vote table (dr7objid, vote counts and fractions)",
)

GZ2_MAPPING = RemoteFile(
    filename="gz2_filename_mapping.csv",
    url=f"{ZENODO_RECORD}/files/gz2_filename_mapping.csv?download=1",
    md5="7e28465e6dfbf96c0d828c595a5bbd80",
    description="GZ2 image file names (objid, sample, asset_id -> <asset_id>.jpg)",
)

GZ2_IMAGES = RemoteFile(
    filename="images_gz2.zip",
    url=f"{ZENODO_RECORD}/files/images_gz2.zip?download=1",
    md5="bc647032d31e50c798770cf4430525c7",
    description="GZ2 original-sample subject images, 424 x 424 px JPEG",
)

#: The three files ``spiralarms data gz2`` fetches, in the order it fetches them.
GZ2_FILES: tuple[RemoteFile, ...] = (GZ2_TABLE, GZ2_MAPPING, GZ2_IMAGES)

#: Images in ``images_gz2.zip`` and rows in ``gz2_filename_mapping.csv`` (Zenodo README).
GZ2_N_IMAGES = 243_434
GZ2_MAPPING_ROWS = 355_990

#: Kaggle competition page (sign-in needed; no direct download address).
KAGGLE_COMPETITION = "https://www.kaggle.com/c/galaxy-zoo-the-galaxy-challenge/data"

#: Accepted names of the Kaggle solutions table, in order of preference.
KAGGLE_SOLUTIONS: tuple[str, ...] = (
    "training_solutions_rev1.csv",
    "training_solutions_rev1.csv.gz",
    "training_solutions_rev1.zip",
    "training_solutions_rev1.csv.zip",
)

#: Accepted forms of the Kaggle training images: an unpacked folder, or its zip.
KAGGLE_IMAGES: tuple[str, ...] = ("images_training_rev1", "images_training_rev1.zip")
