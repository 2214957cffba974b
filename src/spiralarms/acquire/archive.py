"""Extract the images of a zip archive into one flat folder, once and resumably.

Members are written under their base name (``images/16.jpg`` -> ``DEST/16.jpg``), so
the layout inside the archive does not matter and no member can write outside
``DEST``. Each member goes to a temporary name and is renamed into place when whole;
a member already there with the size the archive records is skipped, so an
interrupted extraction resumes where it stopped and a finished one is a no-op.
macOS resource forks (``__MACOSX/``, ``._*``) and non-image members are ignored.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from spiralarms.data.images import IMAGE_SUFFIXES
from spiralarms.errors import SpiralArmsError
from spiralarms.io.atomic import atomic_path

__all__ = ["image_members", "extract_images"]


def _is_image_member(info: zipfile.ZipInfo, suffixes: tuple[str, ...]) -> bool:
    if info.is_dir():
        return False
    parts = PurePosixPath(info.filename.replace("\\", "/")).parts
    if not parts or "__MACOSX" in parts or parts[-1].startswith("._"):
        return False
    return parts[-1].lower().endswith(suffixes)


def _base_name(info: zipfile.ZipInfo) -> str:
    return PurePosixPath(info.filename.replace("\\", "/")).name


def _open_zip(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except FileNotFoundError:
        raise SpiralArmsError(f"{archive}: no such file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise SpiralArmsError(f"{archive}: not a readable zip archive ({exc}); delete it and fetch it again") from exc


def image_members(archive, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[str]:
    """Base names of the image members of a zip archive, in archive order.

    Parameters
    ----------
    archive : str or path-like
        The zip file.
    suffixes : tuple of str, optional
        File-name endings counted as images (case-insensitive).

    Returns
    -------
    list of str

    Raises
    ------
    SpiralArmsError
        If the archive cannot be read.
    """
    with _open_zip(Path(archive)) as zf:
        return [_base_name(i) for i in zf.infolist() if _is_image_member(i, suffixes)]


def extract_images(archive, dest, suffixes: tuple[str, ...] = IMAGE_SUFFIXES, progress: bool = True) -> dict:
    """Extract the image members of ``archive`` flat into ``dest``, skipping finished ones.

    Parameters
    ----------
    archive : str or path-like
        The zip file.
    dest : str or path-like
        Folder for the images (created).
    suffixes : tuple of str, optional
        File-name endings to extract (case-insensitive).
    progress : bool, default True
        Show a tqdm bar in files.

    Returns
    -------
    dict
        ``{"n_files": members extracted or already there, "n_written": written now,
        "n_skipped": already there}``.

    Raises
    ------
    SpiralArmsError
        If the archive cannot be read, a member is corrupt (bad CRC), two members
        share a base name, or ``dest`` cannot be written.
    """
    from spiralarms.runtime import progress_bar

    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # One listing of the folder instead of one stat per member (243,434 for GZ2).
    present = {entry.name: entry.stat().st_size for entry in os.scandir(dest) if entry.is_file()}
    written = skipped = 0
    with _open_zip(archive) as zf:
        members = [info for info in zf.infolist() if _is_image_member(info, suffixes)]
        seen: dict[str, str] = {}
        for info in members:
            name = _base_name(info)
            if name in seen:
                raise SpiralArmsError(
                    f"{archive}: members {seen[name]!r} and {info.filename!r} have the same file name {name!r}"
                )
            seen[name] = info.filename
        for info in progress_bar(members, enabled=progress, desc=f"extracting {archive.name}", unit="file"):
            name = _base_name(info)
            if present.get(name) == info.file_size:
                skipped += 1
                continue
            target = dest / name
            try:
                # No fsync per image: the manifest records the extraction as complete only at the end.
                with atomic_path(target, fsync=False) as tmp, zf.open(info) as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
                raise SpiralArmsError(
                    f"{archive}: member {info.filename!r} is corrupt ({exc}); delete the archive and fetch it again"
                ) from exc
            written += 1
    return {"n_files": written + skipped, "n_written": written, "n_skipped": skipped}
