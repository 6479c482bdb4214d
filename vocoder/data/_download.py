"""Download, verify and safely extract CMU ARCTIC release archives (urllib only).

* **Resumable**: bytes go to ``<archive>.part``; a later call asks the server for the rest with an
  HTTP ``Range`` request. A server that ignores ``Range`` (status 200) restarts the file cleanly.
* **Verified**: the SHA-256 of the complete file is compared with a table of known checksums; on a
  mismatch the file is removed and a one-line :class:`DownloadError` is raised. For a speaker
  without a known checksum the size and SHA-256 are logged so that they can be pinned.
* **Safe extraction**: every member is checked before it is written — absolute paths, ``..``
  components, links whose target leaves the corpus directory and device files are refused — and
  extraction additionally runs under :func:`tarfile.data_filter`. Extraction goes to a hidden
  temporary directory that is renamed into place only when complete.
* **Idempotent**: an archive extracted and verified before is recognised by a marker file and used
  without any network access.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType

from tqdm import tqdm

from vocoder.data._corpus import list_utterances
from vocoder.data._errors import CorpusError, DownloadError
from vocoder.data._fsutil import directory_lock, write_atomic

LOG = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://festvox.org/cmu_arctic/cmu_arctic/packed"
ARCTIC_SPEAKERS = ("awb", "bdl", "clb", "jmk", "ksp", "rms", "slt")
EXTRACTED_MARKER = ".vocoder-extracted"
OFFLINE_HINT = (
    "pass data.root=DIR (a local copy in the ARCTIC layout) or use data=sample (the embedded sample)"
)


@dataclass(frozen=True)
class ArchiveChecksum:
    """Expected size in bytes and SHA-256 (hex) of a release archive."""

    size: int
    sha256: str


#: Checksums of the ``cmu_us_<speaker>_arctic-0.95-release.tar.bz2`` archives verified so far.
KNOWN_CHECKSUMS = MappingProxyType(
    {"slt": ArchiveChecksum(119_914_432, "9fddec16fbfbfb7d4989dff0fe77ccbe31f80b07b57be49d09994aa7a67d6dba")}
)


def arctic_archive_name(speaker: str) -> str:
    """File name of a speaker's release archive, e.g. ``cmu_us_slt_arctic-0.95-release.tar.bz2``."""
    return f"cmu_us_{speaker}_arctic-0.95-release.tar.bz2"


def arctic_url(speaker: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """URL of a speaker's release archive under ``base_url``."""
    return f"{base_url.rstrip('/')}/{arctic_archive_name(speaker)}"


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total size)`` of a ``Content-Range`` header (``None`` where absent/unknown)."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", header or "")
    if match is None:
        return None, None
    first = int(match[1]) if match[1] is not None else None
    total = int(match[2]) if match[2] != "*" else None
    return first, total


def download(
    url: str,
    destination: str | Path,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool | None = None,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
    network_hint: str = "",
) -> Path:
    """Download ``url`` to ``destination``, resuming a previous partial download.

    Args:
        url: an ``http://`` or ``https://`` URL.
        destination: the final file; bytes are written to ``<destination>.part`` first and renamed
            only once complete and verified. An existing ``destination`` is taken as complete (and
            verified again when ``sha256`` is given) without network access.
        size: expected size in bytes, if known.
        sha256: expected SHA-256 (hex), if known; on a mismatch the file is removed.
        progress: show a tqdm bar (``None``: only on a terminal).
        timeout: socket timeout in seconds.
        chunk_size: bytes per read.
        network_hint: appended to the message of network errors (what to do when offline).

    Returns:
        ``destination``.

    Raises:
        DownloadError: network or HTTP error (the ``.part`` file is kept for resuming), size or
            checksum mismatch (the file is removed).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.is_file():
        _verify(destination, size, sha256, url)
        return destination
    partial = destination.with_name(destination.name + ".part")
    suffix = f"; {network_hint}" if network_hint else ""
    for _attempt in range(2):  # a second attempt only after the partial file had to be discarded
        offset = partial.stat().st_size if partial.is_file() else 0
        if size is not None and offset > size:
            partial.unlink()
            offset = 0
        if size is not None and offset == size:
            break  # complete already (e.g. interrupted between the last byte and the rename)
        headers = {"User-Agent": "vocoder-prepare"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                # the partial file is not a prefix the server can continue: complete or foreign
                _, total = _content_range(exc.headers.get("Content-Range"))
                if total is not None and total == offset:
                    break
                partial.unlink()
                continue
            raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}{suffix}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DownloadError(f"cannot download {url}: {reason}{suffix}") from None
        with response:
            if response.status == 206:
                first, total = _content_range(response.headers.get("Content-Range"))
                if first != offset:
                    partial.unlink(missing_ok=True)  # a range other than the one asked for
                    continue
            else:
                # 200: the whole file; a server that ignores Range restarts it from byte 0
                offset = 0
                length = response.headers.get("Content-Length")
                total = int(length) if length is not None and length.isdigit() else None
            if size is not None and total is not None and total != size:
                partial.unlink(missing_ok=True)
                raise DownloadError(
                    f"{url}: the server's file has {total} bytes, the known archive {size}; "
                    f"not using it{suffix}"
                )
            _receive(
                response,
                partial,
                offset,
                total if total is not None else size,
                progress,
                chunk_size,
                url,
                suffix,
            )
        break
    else:
        raise DownloadError(
            f"cannot download {url}: the server does not honour byte ranges consistently{suffix}"
        )
    _verify(partial, size, sha256, url)
    os.replace(partial, destination)
    return destination


def _receive(
    response,
    partial: Path,
    offset: int,
    total: int | None,
    progress: bool | None,
    chunk_size: int,
    url: str,
    suffix: str,
) -> None:
    """Append the body of ``response`` to ``partial`` from byte ``offset`` (truncating anything after)."""
    mode = "r+b" if offset and partial.exists() else "wb"
    bar = tqdm(
        total=total,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=Path(url).name,
        disable=None if progress is None else not progress,
        leave=False,
    )
    with open(partial, mode) as stream, bar:
        stream.seek(offset)
        stream.truncate()
        while True:
            try:
                chunk = response.read(chunk_size)
            except (
                OSError,
                http.client.HTTPException,
            ) as exc:  # connection reset or timeout mid-transfer: keep the bytes for resuming
                raise DownloadError(f"download of {url} interrupted: {exc}{suffix}") from None
            if not chunk:
                break
            stream.write(chunk)
            offset += len(chunk)
            bar.update(len(chunk))
    if total is not None and offset < total:
        # http.client returns a short body without raising when the connection drops early
        raise DownloadError(f"download of {url} interrupted after {offset} of {total} bytes{suffix}")


def _verify(path: Path, size: int | None, sha256: str | None, url: str) -> None:
    """Check size and SHA-256 of a complete file; remove it and raise on a mismatch."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        path.unlink()
        raise DownloadError(
            f"{url}: downloaded {actual_size} bytes, expected {size}; the file was removed, "
            f"run again to re-download"
        )
    actual_sha = sha256_file(path)
    if sha256 is not None and actual_sha != sha256.lower():
        path.unlink()
        raise DownloadError(
            f"{url}: SHA-256 mismatch (expected {sha256}, got {actual_sha}); the file was removed, "
            f"run again to re-download"
        )
    if sha256 is None:
        LOG.info(
            "%s: %d bytes, sha256 %s (no known checksum to verify against)",
            path.name,
            actual_size,
            actual_sha,
        )


def _unsafe_reason(member: tarfile.TarInfo, root: Path) -> str | None:
    """Why ``member`` must not be extracted under ``root`` (``None`` when it is safe)."""
    name = member.name
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or os.path.isabs(name):
        return "absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "'..' in path"
    target = Path(os.path.normpath(root / name))
    if not target.is_relative_to(root) or not Path(os.path.realpath(target)).is_relative_to(root):
        return "path leaves the extraction directory"
    if member.issym() or member.islnk():
        link = member.linkname
        if link.startswith(("/", "\\")) or os.path.isabs(link):
            return f"link to absolute path {link!r}"
        # a symlink is relative to its own directory, a hard link to the archive root
        base = target.parent if member.issym() else root
        link_target = Path(os.path.normpath(base / link))
        if not link_target.is_relative_to(root) or not Path(os.path.realpath(link_target)).is_relative_to(
            root
        ):
            return f"link target {link!r} leaves the extraction directory"
    elif not (member.isfile() or member.isdir()):
        return "device, FIFO or other special file"
    return None


def safe_extract(archive: str | Path, destination: str | Path) -> None:
    """Extract a tar archive (any compression) into ``destination``, refusing unsafe members.

    Members are checked one by one as the archive is read (see the module docstring); extraction
    also runs under :func:`tarfile.data_filter`. On a refusal, members extracted before it remain in
    ``destination`` — extract into a fresh directory and discard it on error (as
    :func:`fetch_arctic` does) to leave nothing behind.

    Args:
        archive: the tar file.
        destination: the directory to extract into (created if missing).

    Raises:
        DownloadError: an unsafe member (the message names it and the reason) or a corrupt archive.
    """
    root = Path(os.path.realpath(destination))
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                reason = _unsafe_reason(member, root)
                if reason is not None:
                    raise DownloadError(
                        f"{archive}: refusing unsafe archive member {member.name!r} ({reason})"
                    )
                tar.extract(member, root, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, tarfile.FilterError):
            raise DownloadError(f"{archive}: refusing unsafe archive member ({exc})") from None
        raise DownloadError(f"{archive}: cannot extract ({exc})") from None


def fetch_arctic(
    speaker: str,
    download_dir: str | Path,
    base_url: str = DEFAULT_BASE_URL,
    progress: bool | None = None,
    timeout: float = 60.0,
    checksum: ArchiveChecksum | None = None,
) -> Path:
    """Download, verify and extract a CMU ARCTIC speaker; return the corpus directory.

    The archive ``<base_url>/cmu_us_<speaker>_arctic-0.95-release.tar.bz2`` is downloaded to
    ``download_dir`` (resuming a partial download), verified against :data:`KNOWN_CHECKSUMS` where
    the speaker is listed, and extracted to ``download_dir/cmu_us_<speaker>_arctic``. A second call
    finds the extracted corpus and returns at once, without network access. Concurrent calls on
    the same ``download_dir`` wait for each other.

    Args:
        speaker: one of :data:`ARCTIC_SPEAKERS`.
        download_dir: where the archive and the extracted corpus go.
        base_url: the directory URL holding the archives (overridable for mirrors and tests).
        progress: show a progress bar (``None``: only on a terminal).
        timeout: socket timeout in seconds.
        checksum: expected size and SHA-256 of the archive; ``None`` looks the speaker up in
            :data:`KNOWN_CHECKSUMS` (a mirror with a repacked archive, or a test, passes its own).

    Returns:
        The corpus directory (ARCTIC layout: ``wav/*.wav``, ``etc/txt.done.data``).

    Raises:
        DownloadError: unknown speaker, network/HTTP error (with what to do offline), checksum
            mismatch, unsafe or corrupt archive.
    """
    if speaker not in ARCTIC_SPEAKERS:
        raise DownloadError(
            f"unknown CMU ARCTIC speaker {speaker!r}; expected one of {', '.join(ARCTIC_SPEAKERS)}"
        )
    download_dir = Path(download_dir).expanduser().absolute()
    known = checksum if checksum is not None else KNOWN_CHECKSUMS.get(speaker)
    corpus_name = f"cmu_us_{speaker}_arctic"
    corpus_dir = download_dir / corpus_name
    with directory_lock(
        download_dir, on_wait=lambda: LOG.info("waiting for another download into %s", download_dir)
    ):
        marker = corpus_dir / EXTRACTED_MARKER
        if marker.is_file():
            recorded = json.loads(marker.read_text())
            if known is None or recorded.get("sha256") == known.sha256:
                return corpus_dir
        if corpus_dir.exists():
            raise DownloadError(
                f"{corpus_dir} exists but was not extracted (completely) by vocoder; remove it, or pass "
                f"data.root={corpus_dir} to use it as it is"
            )
        url = arctic_url(speaker, base_url)
        archive = download_dir / arctic_archive_name(speaker)
        if not archive.is_file():
            LOG.info("downloading %s to %s", url, archive)
        download(
            url,
            archive,
            size=known.size if known else None,
            sha256=known.sha256 if known else None,
            progress=progress,
            timeout=timeout,
            network_hint=f"offline? {OFFLINE_HINT}",
        )
        staging = Path(tempfile.mkdtemp(dir=download_dir, prefix=".extract-"))
        try:
            safe_extract(archive, staging)
            extracted = staging / corpus_name
            try:
                list_utterances(extracted)
            except CorpusError:
                raise DownloadError(
                    f"{archive}: no {corpus_name}/wav/*.wav inside; not an ARCTIC release"
                ) from None
            record = {"archive": archive.name, "size": archive.stat().st_size, "sha256": sha256_file(archive)}
            write_atomic(
                extracted / EXTRACTED_MARKER, lambda stream: stream.write(json.dumps(record).encode())
            )
            os.replace(extracted, corpus_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return corpus_dir
