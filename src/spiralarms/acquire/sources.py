"""Where the real data lives: every public address that spiralarms downloads from.

All addresses are kept here, in one place, so that a mirror or a moved file means one
edit. The paper's data (Lee, Soo & Sharoni, section 2) is the Galaxy Zoo 2 main
sample:

- a GZ2 vote table, one of :data:`GZ2_TABLES`:

  - ``willett13`` (the default, the paper's): the Willett et al. (2013) main sample
    with spectroscopic redshifts, ``zoo2MainSpecz.csv.gz`` (id ``dr7objid``; per
    answer ``_count``, ``_weight``, ``_fraction``, ``_weighted_fraction``,
    ``_debiased``, ``_flag``), linked from https://data.galaxyzoo.org. Its weighted
    and debiased fractions are the ones section 2 uses;
  - ``hart16``: the Hart et al. (2016) table with the newer redshift debiasing
    (``gz2_hart16.csv.gz``, "GZ2 - Table 1 - Normal-depth sample with new debiasing
    method"), which the paper says it does not use;

- the 243,434 subject images of the "original" GZ2 sample, 424 x 424 px JPEGs
  (``images_gz2.zip``) and the table that names them (``gz2_filename_mapping.csv``:
  ``objid``, ``sample``, ``asset_id``; 355,990 rows), both in Zenodo record 3565489
  (the Galaxy Zoo team's README of that record gives both counts).

The MD5 sums of the two Zenodo files are the ones Zenodo lists for the record, as
public loaders check them (for the images, M. Walmsley's ``pytorch-galaxy-datasets``
used by Zoobot); no size is recorded because none could be confirmed.
The vote tables have no published checksum: the one computed on download is recorded
in the manifest instead.

The Kaggle "Galaxy Zoo - The Galaxy Challenge" files have no public download address
(Kaggle asks users to sign in and accept the competition rules), so they are always
read from a folder the user downloaded them to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "RemoteFile",
    "WILLETT13_TABLE",
    "HART16_TABLE",
    "GZ2_TABLES",
    "GZ2_TABLE_REFERENCES",
    "DEFAULT_GZ2_TABLE",
    "GZ2_MAPPING",
    "GZ2_IMAGES",
    "gz2_files",
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

WILLETT13_TABLE = RemoteFile(
    filename="zoo2MainSpecz.csv.gz",
    url="https://zooniverse-data.s3.amazonaws.com/galaxy-zoo-2/zoo2MainSpecz.csv.gz",
    description="Willett et al. (2013) GZ2 main sample with spectroscopic redshifts (dr7objid, vote counts, "
    "weighted and debiased fractions)",
)

HART16_TABLE = RemoteFile(
    filename="gz2_hart16.csv.gz",
    url="https://gz2hart.s3.amazonaws.com/gz2_hart16.csv.gz",
    description="Hart et al. (2016) GZ2 vote table with the new debiasing (dr7objid, vote counts and fractions)",
)

#: The GZ2 vote tables ``spiralarms data gz2 --table`` can fetch, by name.
GZ2_TABLES: dict[str, RemoteFile] = {"willett13": WILLETT13_TABLE, "hart16": HART16_TABLE}

#: The paper's table (section 2: Willett et al. 2013 fractions, not Hart et al. 2016).
DEFAULT_GZ2_TABLE = "willett13"

#: Each table's reference, as the manifest records it.
GZ2_TABLE_REFERENCES: dict[str, str] = {
    "willett13": "Willett et al. (2013), MNRAS 435, 2835: GZ2 main sample, spectroscopic redshifts (zoo2MainSpecz)",
    "hart16": "Hart et al. (2016), MNRAS 461, 3663: GZ2 with the new redshift debiasing (gz2_hart16)",
}

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



def gz2_files(table: str = DEFAULT_GZ2_TABLE) -> tuple[RemoteFile, ...]:
    """The three files ``spiralarms data gz2`` fetches, in the order it fetches them.

    Parameters
    ----------
    table : {"willett13", "hart16"}, default "willett13"
        The vote table (see :data:`GZ2_TABLES`).

    Returns
    -------
    tuple of RemoteFile
        The vote table, the filename mapping and the image archive.

    Raises
    ------
    KeyError
        If ``table`` is not a key of :data:`GZ2_TABLES` (callers check it first).
    """
    return (GZ2_TABLES[table], GZ2_MAPPING, GZ2_IMAGES)

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
