"""HTTP downloads that resume, verify and never leave a half-written file behind.

A file is written to ``<name>.part`` next to its final place, then flushed, synced and
renamed with :func:`os.replace` only once its size and checksums are right; so a file
under its final name is always whole. A broken transfer keeps the ``.part``; the next
attempt (in the same call, up to ``retries`` times, or in a later run) asks the server
for the rest with an HTTP ``Range`` request. A server that ignores ``Range`` (answers
200 instead of 206) is handled by starting again from the first byte.

Written on the standard library (:mod:`urllib.request`) rather than ``requests`` so
that acquisition needs no extra dependency; progress is shown with tqdm.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from spiralarms import __version__
from spiralarms.errors import SpiralArmsError

__all__ = ["download", "UnreachableError", "file_checksums", "verify_checksums", "accepted", "PART_SUFFIX", "UNVERIFIED_SUFFIX", "USER_AGENT"]

#: Suffix of a file being downloaded.
PART_SUFFIX = ".part"
#: Suffix of a whole download whose checksum did not match (kept, never used as is).
UNVERIFIED_SUFFIX = ".unverified"

#: Sent with every request, so that servers can tell what is asking.
USER_AGENT = f"spiralarms/{__version__} (Python urllib)"

#: HTTP statuses worth a retry: the server may answer next time.
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_UNSATISFIED = re.compile(r"bytes\s+\*/(\d+)")

_BLOCK = 1 << 20


class _Transient(Exception):
    """A transfer broke off in a way that a retry (with Range) may mend."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Digests:
    """MD5 and SHA-256 of a byte stream, updated together (one read of the data)."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        self.sha256.update(data)

    def hexdigests(self) -> dict[str, str]:
        return {"md5": self.md5.hexdigest(), "sha256": self.sha256.hexdigest()}


def _progress_bar(total: int | None, initial: int, desc: str, enabled: bool, unit: str = "B"):
    from spiralarms.runtime import progress_bar

    return progress_bar(
        enabled=enabled, total=total, initial=initial, desc=desc, unit=unit, unit_scale=True, unit_divisor=1024,
        leave=True,
    )


def _hash_into(digests: _Digests, path: Path, bar=None) -> int:
    """Feed a file's bytes to ``digests``; return its size."""
    n = 0
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            digests.update(block)
            n += len(block)
            if bar is not None:
                bar.update(len(block))
    return n


def file_checksums(path, progress: bool = False) -> dict:
    """Size, MD5 and SHA-256 of a file, read once in 1 MiB blocks.

    Parameters
    ----------
    path : str or path-like
        The file.
    progress : bool, default False
        Show a tqdm bar in bytes.

    Returns
    -------
    dict
        ``{"size": int, "md5": str, "sha256": str}`` (lower-case hexadecimal).

    Raises
    ------
    SpiralArmsError
        If the file cannot be read.
    """
    path = Path(path)
    digests = _Digests()
    try:
        total = path.stat().st_size
        with _progress_bar(total, 0, f"checking {path.name}", progress) as bar:
            size = _hash_into(digests, path, bar)
    except OSError as exc:
        raise SpiralArmsError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    return {"size": size, **digests.hexdigests()}


def verify_checksums(name: str, found: dict, size=None, md5=None, sha256=None) -> str | None:
    """Compare a file's size and checksums with the expected ones.

    Parameters
    ----------
    name : str
        The file, for the message.
    found : dict
        ``size``, ``md5`` and ``sha256`` as :func:`file_checksums` returns them.
    size : int, optional
    md5, sha256 : str, optional
        Expected values; ``None`` is not checked.

    Returns
    -------
    str or None
        ``None`` when everything known matches, else a one-line description of the
        first mismatch (``"gz2_hart16.csv.gz: md5 ab12... differs from the expected
        cd34..."``).
    """
    if size is not None and int(found["size"]) != int(size):
        return f"{name}: size {found['size']} bytes differs from the expected {size}"
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is not None and found[algorithm] != expected.lower():
            return f"{name}: {algorithm} {found[algorithm]} differs from the expected {expected.lower()}"
    return None


def accepted(found: dict, accept) -> bool:
    """Whether a file's checksums are among the ones a user accepted (``"md5:HEX"``, ``"sha256:HEX"``)."""
    for item in accept or ():
        algorithm, _, value = str(item).partition(":")
        if algorithm in ("md5", "sha256") and found.get(algorithm) == value.strip().lower():
            return True
    return False


def _unverified_message(name, url, found, size, md5, sha256, unverified: Path) -> str:
    mismatch = verify_checksums(name, found, size=size, md5=md5, sha256=sha256)
    return (
        f"{mismatch} (from {url}); kept as {unverified.name}; if you trust it, run again with "
        f"--accept-checksum md5:{found['md5']}, or delete it to download again"
    )


def _truncate(part: Path) -> None:
    with open(part, "wb"):
        pass


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk too (POSIX).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class UnreachableError(SpiralArmsError):
    """The server cannot be reached at all (no network, unknown host); ``host`` and ``reason`` say which.

    Its message ends with the offline route of the commands that take ``--source
    DIR``; a command with another route catches it and says its own.
    """

    def __init__(self, url: str, reason):
        self.url, self.host, self.reason = url, urlsplit(url).netloc or url, reason
        super().__init__(
            f"cannot reach {self.host} for {url}: {reason}; without network access, download the files "
            "elsewhere and pass their folder with --source DIR"
        )


def _cannot_reach(url: str, reason) -> SpiralArmsError:
    return UnreachableError(url, reason)


def _open(url: str, offset: int, timeout: float):
    """Open ``url`` asking for bytes from ``offset`` on; classify the failures."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        exc.close()
        if exc.code == 416:
            return exc
        if exc.code in _TRANSIENT_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise SpiralArmsError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout, ConnectionResetError, ConnectionAbortedError)):
            raise _Transient(str(reason)) from None
        raise _cannot_reach(url, reason) from None
    except (TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from None


class _State:
    """Bytes in the ``.part`` so far and their running checksums (kept across retries)."""

    def __init__(self, offset: int, digests: _Digests):
        self.offset = offset
        self.digests = digests

    def restart(self, part: Path, bar) -> None:
        _truncate(part)
        bar.reset()
        self.offset, self.digests = 0, _Digests()


def _transfer(url: str, part: Path, state: _State, bar, timeout: float, chunk_size: int) -> bool:
    """One request: append the rest of the file to ``part``, updating ``state``.

    Returns True when the file is whole, False when the caller must ask again from the
    first byte (the server sent something other than what was asked); raises
    _Transient when the transfer broke off (``state`` then says what arrived).
    """
    response = _open(url, state.offset, timeout)
    if isinstance(response, HTTPError):  # 416: nothing left to send, or a bad offset
        match = _CONTENT_RANGE_UNSATISFIED.match(response.headers.get("Content-Range", "") or "")
        if match and int(match.group(1)) == state.offset:
            return True
        state.restart(part, bar)
        return False
    with response:
        status = getattr(response, "status", None) or 200  # file:// answers carry no status
        if state.offset and status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "") or "")
            if match is None or int(match.group(1)) != state.offset:
                # A range other than the one asked for: do not splice; start afresh.
                state.restart(part, bar)
                return False
            total = None if match.group(3) == "*" else int(match.group(3))
        else:
            if state.offset:
                # The server ignored Range and sends the whole file: start again cleanly.
                state.restart(part, bar)
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if total is not None:
            bar.total = total
            bar.refresh()
        try:
            with open(part, "ab" if state.offset else "wb") as fh:
                while True:
                    try:
                        chunk = response.read(chunk_size)
                    except (TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException) as exc:
                        fh.flush()
                        os.fsync(fh.fileno())
                        raise _Transient(f"{type(exc).__name__}: {exc}") from None
                    if not chunk:
                        break
                    fh.write(chunk)
                    state.digests.update(chunk)
                    state.offset += len(chunk)
                    bar.update(len(chunk))
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:  # the disk, not the network: no retry helps
            raise SpiralArmsError(f"{part}: cannot write: {exc.strerror or exc}") from None
    if total is not None and state.offset < total:
        # http.client returns b"" when the peer closes early; the count tells.
        raise _Transient(f"connection closed after {state.offset} of {total} bytes")
    if total is not None and state.offset > total:
        state.restart(part, bar)
        return False
    return True


def download(
    url: str,
    dest,
    *,
    size: int | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
    chunk_size: int = _BLOCK,
    accept=(),
) -> dict:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part`` and verifying it.

    Parameters
    ----------
    url : str
        ``http://``, ``https://`` or ``file://`` address.
    dest : str or path-like
        Final file. Its folder is created. The bytes go to ``dest`` + ``".part"``
        first; an existing ``.part`` is resumed with an HTTP ``Range`` request.
    size : int, optional
        Expected size in bytes.
    md5, sha256 : str, optional
        Expected checksums (hexadecimal).
    progress : bool, default True
        Show a tqdm bar in bytes (on standard error).
    retries : int, default 3
        Further attempts after a transfer breaks off (each resumes where the last
        stopped), waiting ``backoff * 2**k`` seconds before attempt ``k + 1``.
    backoff : float, default 1.0
        First wait between attempts, in seconds.
    timeout : float, default 60.0
        Socket timeout in seconds.
    chunk_size : int, default 1 MiB
        Bytes read per call.
    accept : iterable of str
        Checksums to accept besides the expected ones, as ``"md5:HEX"`` or
        ``"sha256:HEX"``: for a file whose published checksum is stale (public
        loaders have used two MD5 values for the GZ2 images archive).

    A whole download whose size or checksum does not match is kept as
    ``dest.unverified`` (a 3 GB archive is not fetched again); the error says what
    was expected and found. A later call checks that file first: accepted (its
    checksum given in ``accept``, or now matching) it becomes ``dest``.

    Returns
    -------
    dict
        ``{"file", "source", "size", "md5", "sha256", "fetched", "resumed_from"}``:
        the name, the address, what was received (checksums of the whole file, also
        when resumed) and the UTC time; ``resumed_from`` is the byte the download
        started at (0 for a fresh one).

    Raises
    ------
    SpiralArmsError
        On an HTTP error, an unreachable host, a transfer that keeps breaking off
        (the ``.part`` is kept for the next run), or a size or checksum mismatch
        (kept as ``dest.unverified``; nothing is written under the final name).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + PART_SUFFIX)
    unverified = dest.with_name(dest.name + UNVERIFIED_SUFFIX)
    if unverified.is_file():
        found = file_checksums(unverified, progress=progress)
        if verify_checksums(dest.name, found, size=size, md5=md5, sha256=sha256) is None or accepted(found, accept):
            os.replace(unverified, dest)
            _fsync_dir(dest.parent)
            return {"file": dest.name, "source": url, **found, "fetched": _now(), "resumed_from": found["size"],
                    "accepted": not accepted(found, ()) and accepted(found, accept)}
        raise SpiralArmsError(_unverified_message(dest.name, url, found, size, md5, sha256, unverified))
    state = _State(part.stat().st_size if part.is_file() else 0, _Digests())
    resumed_from = state.offset
    failures = restarts = 0
    with _progress_bar(size, state.offset, dest.name, progress) as bar:
        if state.offset:
            # Checksums cover the whole file, so the bytes already here are read again.
            _hash_into(state.digests, part)
        while True:
            try:
                done = _transfer(url, part, state, bar, timeout, chunk_size)
            except _Transient as exc:
                failures += 1
                if failures > retries:
                    raise SpiralArmsError(
                        f"{dest.name}: download from {url} broke off after {failures} attempts "
                        f"({exc}); {state.offset} bytes are kept in {part.name}: run again to resume"
                    ) from None
                time.sleep(backoff * 2 ** (failures - 1))
                continue
            if done:
                break
            restarts += 1
            if restarts > retries:
                raise SpiralArmsError(f"{dest.name}: {url} does not answer byte ranges consistently")
    found = {"size": state.offset, **state.digests.hexdigests()}
    mismatch = verify_checksums(dest.name, found, size=size, md5=md5, sha256=sha256)
    if mismatch is not None and not accepted(found, accept):
        os.replace(part, unverified)
        raise SpiralArmsError(_unverified_message(dest.name, url, found, size, md5, sha256, unverified))
    os.replace(part, dest)
    _fsync_dir(dest.parent)
    return {"file": dest.name, "source": url, **found, "fetched": _now(), "resumed_from": resumed_from}
