"""Download, resume, verification and safe extraction of ARCTIC archives against a local HTTP server."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import socket
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vocoder.data import (
    KNOWN_CHECKSUMS,
    ArchiveChecksum,
    DownloadError,
    arctic_archive_name,
    download,
    fetch_arctic,
    list_utterances,
    safe_extract,
)


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    ignore_range: bool = False
    truncate_next_at: int | None = None  # send only this many body bytes once, then drop the connection
    requests: list[tuple[str, str | None, int, int]] = field(
        default_factory=list
    )  # path, Range, status, bytes


def _handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = state.files.get(self.path)
            requested = self.headers.get("Range")
            if body is None:
                state.requests.append((self.path, requested, 404, 0))
                self.send_error(404)
                return
            start, status = 0, 200
            if requested and not state.ignore_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", requested)[1])
                if start >= len(body):
                    state.requests.append((self.path, requested, 416, 0))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            chunk = body[start:]
            self.send_response(status)
            self.send_header("Content-Length", str(len(chunk)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            if state.truncate_next_at is not None:
                chunk, state.truncate_next_at = chunk[: state.truncate_next_at], None
                self.close_connection = True
            # record before sending: the client may finish (and the test assert) before this thread resumes
            state.requests.append((self.path, requested, status, len(chunk)))
            self.wfile.write(chunk)

    return Handler


@pytest.fixture
def server():
    """A local HTTP server (Range-capable) on 127.0.0.1; yields ``(base_url, state)``."""
    state = ServerState()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/packed", state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def dead_url() -> str:
    """A URL on a local port where nothing listens (connection refused: "offline")."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/packed"


def _wav_bytes(seconds: float = 0.1) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(2 * np.pi * 220 * t), 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _tar_bz2(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _arctic_members(speaker: str = "slt") -> list:
    top = f"cmu_us_{speaker}_arctic"
    return [
        _dir(top),
        _dir(f"{top}/wav"),
        _dir(f"{top}/etc"),
        _file(f"{top}/wav/arctic_a0001.wav", _wav_bytes()),
        _file(f"{top}/wav/arctic_a0002.wav", _wav_bytes(0.2)),
        _file(
            f"{top}/etc/txt.done.data",
            b'( arctic_a0001 "Author of the danger trail." )\n'
            b'( arctic_a0002 "Not at this particular case, Tom." )\n',
        ),
        _link(f"{top}/wav/alias.lnk", "arctic_a0001.wav", tarfile.SYMTYPE),  # a harmless internal link
    ]


def _checksum(data: bytes) -> ArchiveChecksum:
    return ArchiveChecksum(len(data), hashlib.sha256(data).hexdigest())


def _serve_archive(state: ServerState, data: bytes, speaker: str = "slt") -> None:
    state.files[f"/packed/{arctic_archive_name(speaker)}"] = data


def test_known_slt_checksum_is_the_release_one():
    assert KNOWN_CHECKSUMS["slt"] == ArchiveChecksum(
        119_914_432, "9fddec16fbfbfb7d4989dff0fe77ccbe31f80b07b57be49d09994aa7a67d6dba"
    )


def test_fetch_downloads_verifies_and_extracts(server, tmp_path):
    base_url, state = server
    archive = _tar_bz2(_arctic_members())
    _serve_archive(state, archive)
    root = fetch_arctic(
        "slt", tmp_path / "dl", base_url=base_url, progress=False, checksum=_checksum(archive)
    )
    assert root == tmp_path / "dl" / "cmu_us_slt_arctic"
    utterances = list_utterances(root)
    assert [u.id for u in utterances] == ["arctic_a0001", "arctic_a0002"]
    assert utterances[1].text == "Not at this particular case, Tom."
    assert (root / "wav" / "arctic_a0001.wav").read_bytes() == _wav_bytes()
    assert (root / "wav" / "alias.lnk").resolve() == (root / "wav" / "arctic_a0001.wav").resolve()
    assert (tmp_path / "dl" / arctic_archive_name("slt")).read_bytes() == archive
    assert state.requests == [(f"/packed/{arctic_archive_name('slt')}", None, 200, len(archive))]
    leftovers = [p.name for p in (tmp_path / "dl").iterdir() if p.name.startswith(".extract")]
    assert leftovers == [] and not list((tmp_path / "dl").glob("*.part"))


def test_second_fetch_makes_no_request(server, tmp_path, dead_url):
    base_url, state = server
    archive = _tar_bz2(_arctic_members())
    _serve_archive(state, archive)
    first = fetch_arctic(
        "slt", tmp_path / "dl", base_url=base_url, progress=False, checksum=_checksum(archive)
    )
    requests = len(state.requests)
    second = fetch_arctic(
        "slt", tmp_path / "dl", base_url=base_url, progress=False, checksum=_checksum(archive)
    )
    offline = fetch_arctic(
        "slt", tmp_path / "dl", base_url=dead_url, progress=False, checksum=_checksum(archive)
    )
    assert first == second == offline
    assert len(state.requests) == requests == 1


def test_verified_archive_is_extracted_again_without_network(server, tmp_path, dead_url):
    base_url, state = server
    archive = _tar_bz2(_arctic_members())
    _serve_archive(state, archive)
    root = fetch_arctic(
        "slt", tmp_path / "dl", base_url=base_url, progress=False, checksum=_checksum(archive)
    )
    for path in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
        path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    root.rmdir()
    again = fetch_arctic(
        "slt", tmp_path / "dl", base_url=dead_url, progress=False, checksum=_checksum(archive)
    )
    assert [u.id for u in list_utterances(again)] == ["arctic_a0001", "arctic_a0002"]
    assert len(state.requests) == 1


@pytest.mark.parametrize("prefix_bytes", [1, 100_000, 299_999])
def test_resume_requests_only_the_remaining_bytes(server, tmp_path, prefix_bytes):
    base_url, state = server
    payload = np.random.default_rng(1).bytes(300_000)
    state.files["/packed/blob.bin"] = payload
    destination = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(payload[:prefix_bytes])
    download(
        f"{base_url}/blob.bin",
        destination,
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
        progress=False,
        chunk_size=4096,
    )
    assert destination.read_bytes() == payload
    assert not (tmp_path / "blob.bin.part").exists()
    assert state.requests == [
        ("/packed/blob.bin", f"bytes={prefix_bytes}-", 206, len(payload) - prefix_bytes)
    ]


def test_interrupted_transfer_keeps_the_part_and_resumes(server, tmp_path):
    base_url, state = server
    payload = np.random.default_rng(2).bytes(200_000)
    state.files["/packed/blob.bin"] = payload
    state.truncate_next_at = 70_000
    destination = tmp_path / "blob.bin"
    sha = hashlib.sha256(payload).hexdigest()
    with pytest.raises(DownloadError, match="interrupted"):
        download(
            f"{base_url}/blob.bin",
            destination,
            size=len(payload),
            sha256=sha,
            progress=False,
            chunk_size=4096,
        )
    assert (tmp_path / "blob.bin.part").read_bytes() == payload[:70_000]
    download(f"{base_url}/blob.bin", destination, size=len(payload), sha256=sha, progress=False)
    assert destination.read_bytes() == payload
    assert state.requests[-1] == ("/packed/blob.bin", "bytes=70000-", 206, 130_000)


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    base_url, state = server
    state.ignore_range = True
    payload = np.random.default_rng(3).bytes(150_000)
    state.files["/packed/blob.bin"] = payload
    # a stale partial file whose bytes are not even a prefix: must be discarded, not appended to
    (tmp_path / "blob.bin.part").write_bytes(b"\xff" * 40_000)
    download(
        f"{base_url}/blob.bin",
        tmp_path / "blob.bin",
        sha256=hashlib.sha256(payload).hexdigest(),
        progress=False,
    )
    assert (tmp_path / "blob.bin").read_bytes() == payload
    assert state.requests == [("/packed/blob.bin", "bytes=40000-", 200, len(payload))]


def test_complete_part_without_known_size_is_finished_after_416(server, tmp_path):
    base_url, state = server
    payload = np.random.default_rng(4).bytes(50_000)
    state.files["/packed/blob.bin"] = payload
    (tmp_path / "blob.bin.part").write_bytes(payload)
    download(f"{base_url}/blob.bin", tmp_path / "blob.bin", progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == payload
    assert state.requests == [("/packed/blob.bin", "bytes=50000-", 416, 0)]


def test_checksum_mismatch_removes_the_file(server, tmp_path):
    base_url, state = server
    payload = np.random.default_rng(5).bytes(80_000)
    state.files["/packed/blob.bin"] = payload
    (tmp_path / "blob.bin.part").write_bytes(payload[:30_000])
    with pytest.raises(DownloadError) as error:
        download(
            f"{base_url}/blob.bin", tmp_path / "blob.bin", size=len(payload), sha256="0" * 64, progress=False
        )
    message = str(error.value)
    assert "SHA-256 mismatch" in message and "blob.bin" in message and "\n" not in message
    assert not (tmp_path / "blob.bin").exists() and not (tmp_path / "blob.bin.part").exists()


def test_fetch_with_wrong_checksum_fails_and_extracts_nothing(server, tmp_path):
    base_url, state = server
    archive = _tar_bz2(_arctic_members())
    _serve_archive(state, archive)
    wrong = ArchiveChecksum(len(archive), hashlib.sha256(b"another archive").hexdigest())
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        fetch_arctic("slt", tmp_path / "dl", base_url=base_url, progress=False, checksum=wrong)
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [".lock"]


def test_server_size_differing_from_the_known_size_is_refused(server, tmp_path):
    base_url, state = server
    state.files["/packed/blob.bin"] = b"x" * 1000
    with pytest.raises(DownloadError, match="1000 bytes, the known archive 999"):
        download(f"{base_url}/blob.bin", tmp_path / "blob.bin", size=999, progress=False)
    assert not (tmp_path / "blob.bin.part").exists()


def test_http_error_is_one_line(server, tmp_path):
    base_url, _ = server
    with pytest.raises(DownloadError) as error:
        download(f"{base_url}/missing.bin", tmp_path / "missing.bin", progress=False)
    assert "HTTP 404" in str(error.value) and "\n" not in str(error.value)


def test_offline_without_root_says_what_to_do(tmp_path, dead_url):
    with pytest.raises(DownloadError) as error:
        fetch_arctic("slt", tmp_path / "dl", base_url=dead_url, progress=False)
    message = str(error.value)
    assert "\n" not in message
    assert "cmu_us_slt_arctic-0.95-release.tar.bz2" in message
    assert "data.root=DIR" in message and "data=sample" in message


def test_unknown_speaker_is_refused(tmp_path):
    with pytest.raises(DownloadError, match="unknown CMU ARCTIC speaker 'xyz'"):
        fetch_arctic("xyz", tmp_path / "dl", progress=False)


def test_speaker_without_known_checksum_reports_size_and_sha(server, tmp_path, caplog):
    base_url, state = server
    assert "bdl" not in KNOWN_CHECKSUMS
    archive = _tar_bz2(_arctic_members("bdl"))
    _serve_archive(state, archive, "bdl")
    with caplog.at_level(logging.INFO, logger="vocoder.data"):
        root = fetch_arctic("bdl", tmp_path / "dl", base_url=base_url, progress=False)
    assert root.name == "cmu_us_bdl_arctic" and len(list_utterances(root)) == 2
    assert f"{len(archive)} bytes, sha256 {hashlib.sha256(archive).hexdigest()}" in caplog.text


def test_existing_unmarked_corpus_dir_is_not_overwritten(server, tmp_path):
    base_url, state = server
    archive = _tar_bz2(_arctic_members())
    _serve_archive(state, archive)
    (tmp_path / "dl" / "cmu_us_slt_arctic" / "wav").mkdir(parents=True)
    (tmp_path / "dl" / "cmu_us_slt_arctic" / "wav" / "mine.wav").write_bytes(b"user data")
    with pytest.raises(DownloadError, match="data.root="):
        fetch_arctic("slt", tmp_path / "dl", base_url=base_url, progress=False, checksum=_checksum(archive))
    assert (tmp_path / "dl" / "cmu_us_slt_arctic" / "wav" / "mine.wav").read_bytes() == b"user data"


UNSAFE_ARCHIVES = {
    "dotdot": lambda outside: [_file("cmu_us_slt_arctic/../../evil.txt", b"evil")],
    "dotdot_top": lambda outside: [_file("../evil.txt", b"evil")],
    "absolute": lambda outside: [_file(str(outside / "evil.txt"), b"evil")],
    "symlink_escape": lambda outside: [
        _link("cmu_us_slt_arctic/escape", str(outside), tarfile.SYMTYPE),
        _file("cmu_us_slt_arctic/escape/evil.txt", b"evil"),
    ],
    "symlink_relative_escape": lambda outside: [
        _link("cmu_us_slt_arctic/escape", "../../..", tarfile.SYMTYPE),
        _file("cmu_us_slt_arctic/escape/evil.txt", b"evil"),
    ],
    "hardlink_escape": lambda outside: [
        _link("cmu_us_slt_arctic/evil.txt", "../../outside/target.txt", tarfile.LNKTYPE),
    ],
    "device": lambda outside: [_link("cmu_us_slt_arctic/evil.txt", "", tarfile.CHRTYPE)],
}


@pytest.mark.parametrize("kind", sorted(UNSAFE_ARCHIVES))
def test_unsafe_members_are_refused_and_nothing_is_written_outside(server, tmp_path, kind):
    base_url, state = server
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("precious")
    # the unsafe member comes after legitimate ones: those must not survive the refusal either
    archive = _tar_bz2(_arctic_members() + UNSAFE_ARCHIVES[kind](outside))
    _serve_archive(state, archive)
    download_dir = tmp_path / "a" / "dl"
    with pytest.raises(DownloadError, match="unsafe archive member") as error:
        fetch_arctic("slt", download_dir, base_url=base_url, progress=False, checksum=_checksum(archive))
    assert "\n" not in str(error.value)
    assert sorted(p.name for p in outside.iterdir()) == ["target.txt"]
    assert (outside / "target.txt").read_text() == "precious"
    assert not list(tmp_path.rglob("evil.txt"))
    assert sorted(p.name for p in download_dir.iterdir()) == [".lock", arctic_archive_name("slt")]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["dl"]


def test_safe_extract_rejects_a_corrupt_archive(tmp_path):
    archive = tmp_path / "broken.tar.bz2"
    archive.write_bytes(_tar_bz2(_arctic_members())[:200])
    with pytest.raises(DownloadError, match="cannot extract"):
        safe_extract(archive, tmp_path / "out")


def test_safe_extract_keeps_internal_links(tmp_path):
    archive = tmp_path / "ok.tar.bz2"
    archive.write_bytes(
        _tar_bz2(
            _arctic_members()
            + [
                _link(
                    "cmu_us_slt_arctic/etc/copy.data", "cmu_us_slt_arctic/etc/txt.done.data", tarfile.LNKTYPE
                ),
            ]
        )
    )
    safe_extract(archive, tmp_path / "out")
    etc = tmp_path / "out" / "cmu_us_slt_arctic" / "etc"
    assert (etc / "copy.data").read_bytes() == (etc / "txt.done.data").read_bytes()
    assert Path(tmp_path / "out" / "cmu_us_slt_arctic" / "wav" / "alias.lnk").is_symlink()
