"""The listening page of ``vocoder-eval`` (``report/index.html``): its HTML, and the page in a real browser.

The report is built once per module by :func:`vocoder.evaluation.evaluate_folders` on two one-second
utterances of the embedded sample, two synthesized systems and the real anchors. The scores themselves
are not under test here (``tests/test_evaluation.py`` checks them): ``score_pair`` is replaced by a cheap
deterministic stand-in, which saves about 20 s of PESQ, mel-cepstra and harvest on a 2-core machine.

The browser test drives headless Chromium (Debian's ``chromium`` package) through the Chrome DevTools
Protocol over ``--remote-debugging-pipe`` (no extra Python package). When no Chromium is installed and
the tests run as root with ``apt-get``, the session installs it first; otherwise the test is skipped
with the reason. ``VOCODER_TEST_CHROMIUM=/path/to/chromium`` picks another Chromium-based browser.
"""

from __future__ import annotations

import fcntl
import functools
import html.parser
import http.server
import json
import math
import os
import select
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
import soundfile as sf

import vocoder.evaluation._report as report_module
from vocoder.data import load_audio
from vocoder.evaluation import ANCHORS, METRICS, NATURAL, evaluate_folders, summarize, write_listening_page

SR = 16000
SAMPLE_ROOT = Path(__file__).resolve().parents[1] / "vocoder" / "data" / "sample" / "kathleen"
SHORT_IDS = ("arctic_b0388", "arctic_b0276")
# a file name with every character that HTML or a URL treats specially (a name cannot hold "/")
ODD_NAME = 'b0276 <x-injected>&"x\' #1?%'
SYSTEMS = ("fast", "int8")
CONSOLE_PROBLEMS = {"error", "assert", "warning"}
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--mute-audio", "--remote-debugging-pipe")


def _fake_scores(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int, analysis=None) -> dict:
    """Deterministic numbers from the signals' difference (the page shows them; their meaning is untested).

    The nearly exact copy (8-bit μ-law) gets no FPE, as when no frame is left to score: a missing value.
    """
    length = min(len(reference), len(synthesized))
    error = float(np.mean((reference[:length] - synthesized[:length]) ** 2) / (np.mean(reference**2) + 1e-12))
    return {"pesq_wb": 4.5 - 3.0 * min(error, 1.0), "stoi": 1.0 - 0.3 * min(error, 1.0),
            "mcd_db": 1.0 + 10.0 * error, "vuv_error": min(error, 1.0) / 2, "gpe": min(error, 1.0) / 4,
            "fpe_cents": math.nan if error < 1e-3 else 5.0 + 50.0 * error}


def _write_corpus(root: Path, sample_root: Path) -> tuple[Path, dict[str, Path]]:
    """ref/ and two hyp folders of two 1-s utterances, the second under :data:`ODD_NAME`."""
    ref = root / "ref"
    hyps = {"fast": root / "hyp fast", "int8": root / "hyp <x-injected>int8 & co"}
    for folder in (ref, *hyps.values()):
        folder.mkdir(parents=True)
    for index, uid in enumerate(SHORT_IDS):
        x = load_audio(sample_root / "wav" / f"{uid}.wav", SR)[3000 : 3000 + SR].astype(np.float64)
        name = uid if index == 0 else ODD_NAME
        sf.write(ref / f"{name}.wav", x, SR, subtype="PCM_16")
        rng = np.random.default_rng(index)
        for snr_db, folder in zip((25.0, 8.0), hyps.values(), strict=True):
            noise = rng.standard_normal(len(x))
            noisy = x + noise * math.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
            # one system a little shorter: the page plays each wav as it is
            sf.write(folder / f"{name}.wav", noisy[: len(x) - 160 * index], SR, subtype="PCM_16")
    return ref, hyps


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    """A report with anchors, two systems and two utterances (scores from :func:`_fake_scores`)."""
    root = tmp_path_factory.mktemp("listening")
    ref, hyps = _write_corpus(root, SAMPLE_ROOT)
    out = root / "report"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report_module, "score_pair", _fake_scores)
        means = evaluate_folders(ref, hyps, out, anchors=True, plots=0, workers=1)
    return {"out": out, "ref": ref, "hyps": hyps, "means": means}


# ------------------------------------------------------------------------------------------ the HTML


class _PageParser(html.parser.HTMLParser):
    """Collects the elements, attributes and text the tests look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.text: list[str] = []
        self.table_rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in {"meta", "link", "img", "br", "source", "input"}:
            self.stack.append(tag)
        if tag == "tr" and "tbody" in self.stack and "table" in self.stack:
            self.table_rows.append([])
        if tag in {"td", "th"} and "tbody" in self.stack:
            self._cell = []

    def handle_endtag(self, tag):
        open_tag = self.stack[-1] if self.stack else None
        assert open_tag == tag, f"</{tag}> closes <{open_tag}>"
        self.stack.pop()
        if tag in {"td", "th"} and self._cell is not None:
            self.table_rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _parse(path: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    assert parser.stack == [], f"unclosed elements: {parser.stack}"
    return parser


def _local(output_dir: Path, url: str) -> Path:
    parts = urlsplit(url)
    assert not parts.scheme and not parts.netloc and not url.startswith("/"), f"not a relative link: {url}"
    return output_dir / unquote(parts.path)


def test_page_structure_audio_and_table(report):
    out = report["out"]
    page = _parse(out / "index.html")
    tags = page.tags
    assert tags[0] == ("html", {"lang": "en"})
    metas = [attrs for tag, attrs in tags if tag == "meta"]
    assert {"charset": "utf-8"} in metas
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in metas
    assert (out / "index.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # nothing from the network: no external script, stylesheet, image or media
    for tag, attrs in tags:
        for key in ("src", "href"):
            if attrs.get(key) and not attrs[key].startswith("data:"):
                assert _local(out, attrs[key]).is_file(), (tag, attrs[key])
    audio = [attrs for tag, attrs in tags if tag == "audio"]
    systems = [*SYSTEMS, *ANCHORS]
    assert len(audio) == len(SHORT_IDS) * (1 + len(systems))
    assert all("controls" in a for a in audio)
    assert all(a["preload"] == "metadata" for a in audio)
    expected = {f"audio/{system}/{name}.wav"
                for system in (NATURAL, *systems) for name in (SHORT_IDS[0], ODD_NAME)}
    assert {unquote(a["src"]) for a in audio} == expected
    for a in audio:  # each wav is what was scored: 16-bit PCM at the scoring rate
        info = sf.info(_local(out, a["src"]))
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    images = [attrs for tag, attrs in tags if tag == "img"]
    assert len(images) == len(audio) and all(img["alt"].startswith("Spectrogram of ") for img in images)
    for img in images:
        with open(_local(out, img["src"]), "rb") as handle:
            head = handle.read(24)
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", head[16:24]) == (int(img["width"]), int(img["height"]))
    # the score table: one row per system, the summary's means in data-value
    assert [row[0].replace("anchor", "").strip() for row in page.table_rows] == systems
    table_values = [math.nan if attrs["data-value"] == "" else float(attrs["data-value"])
                    for tag, attrs in tags if tag == "td"]
    means = report["means"]
    assert math.isnan(means["mulaw8"]["fpe_cents"])  # a missing score: empty data-value, "n/a"
    np.testing.assert_array_equal(table_values, [means[s][m] for s in systems for m in METRICS])
    assert page.table_rows[systems.index("mulaw8")][-1] == "n/a"


def test_page_escapes_every_user_string(report):
    out = report["out"]
    text = (out / "index.html").read_text(encoding="utf-8")
    page = _parse(out / "index.html")
    body = "".join(page.text)
    # the odd names and folder paths come through as text, never as markup
    assert ODD_NAME in body and str(report["hyps"]["int8"]) in body
    assert "x-injected" not in {tag for tag, _ in page.tags}
    assert "<x-injected>" not in text and '&"x' not in text
    alts = [attrs["alt"] for tag, attrs in page.tags if tag == "img"]
    assert f"Spectrogram of {ODD_NAME}, fast" in alts


def test_write_listening_page_escapes_system_names_and_scores(tmp_path):
    """The writer alone, on hand-made media: what it is given is escaped, NaN scores read n/a."""
    from vocoder.evaluation._page import UtteranceMedia

    wave = 0.1 * np.sin(np.arange(SR // 4) * 0.05)
    media = UtteranceMedia(tmp_path, "u<1>.wav", wave, SR)
    media.add("a+b", 0.5 * wave)
    rows = [{"utterance": "u<1>", "system": "a+b", **{m: math.nan for m in METRICS}}]
    path = write_listening_page(tmp_path, summarize(rows), rows, [("u<1>", "u<1>.wav")],
                                {"a+b": "/data/<script>alert(1)</script>"}, reference_dir="ref & co")
    text = path.read_text(encoding="utf-8")
    page = _parse(path)
    assert [tag for tag, _ in page.tags].count("script") == 1  # only the page's own sort script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "ref &amp; co" in text
    assert page.table_rows == [["a+b"] + ["n/a"] * len(METRICS)]
    assert "PESQ-WB</b> n/a" in text


# --------------------------------------------------------------------------------------- the browser


def _find_chromium() -> str | None:
    named = os.environ.get("VOCODER_TEST_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable; installed with apt-get when missing and the tests run as root."""
    found = _find_chromium()
    if found:
        return found
    if os.environ.get("VOCODER_TEST_CHROMIUM"):
        pytest.skip(f"VOCODER_TEST_CHROMIUM={os.environ['VOCODER_TEST_CHROMIUM']} is not an executable")
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("no Chromium (chromium, chromium-browser or google-chrome on PATH) and it cannot be "
                    "installed here (needs root and apt-get): apt-get install chromium, or set "
                    "VOCODER_TEST_CHROMIUM=/path/to/chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # about a minute on the 2-core VM; the time limits only stop a stuck download or lock
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=120", "install", "-y", "-q", "--no-install-recommends",
               "chromium"]
    log = []
    update = ["apt-get", "-o", "DPkg::Lock::Timeout=120", "update", "-q"]
    for command, timeout in ((install, 420), (update, 300), (install, 420)):
        try:
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                                    stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            log.append(f"{' '.join(command)}: timed out after {timeout} s")
            continue
        log.append(f"{' '.join(command)}: exit {result.returncode} {result.stderr.strip()[-300:]}")
        if command is install and result.returncode == 0:
            break
    found = _find_chromium()
    if not found:
        pytest.skip("no Chromium, and installing it failed: " + " | ".join(log))
    return found


class Browser:
    """Headless Chromium driven with the DevTools Protocol over a pipe: one page, its console and requests.

    Args:
        executable: the Chromium binary.
        profile: a fresh, empty user-data folder.
    """

    def __init__(self, executable: str, profile: Path) -> None:
        commands_read, self._commands = os.pipe()
        self._events, events_write = os.pipe()
        # the child gets the pipes as fds 3 (commands) and 4 (replies and events), as Chromium expects
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands_read, events_write)]

        def child_fds() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.log = profile / "chromium.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=False, preexec_fn=child_fds)
        for fd in (commands_read, events_write, *high):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def _read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._events], [], [], left)[0]:
                raise TimeoutError(f"Chromium sent nothing for {timeout} s; its log: {self.log}")
            chunk = os.read(self._events, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe; its log: {self.log.read_text()[-2000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, timeout: float = 30.0, session: bool = False, **params) -> dict:
        """Send a command (to the browser, or to the page with ``session=True``) and wait for its result."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def send(self, method: str, **params) -> dict:
        return self.call(method, session=True, **params)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        """The next event ``method`` of the page (events already received count)."""
        for index, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(index)
        while True:
            event = self._read(timeout)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def evaluate(self, expression: str, timeout: float = 30.0):
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call("Runtime.evaluate", timeout=timeout, session=True, expression=expression,
                           awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, width: int, height: int, mobile: bool) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=mobile)
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (scrolled into view first)."""
        box = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
                            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, path: Path) -> tuple[int, int]:
        """Save a PNG of the viewport; returns its (width, height) in pixels."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        import base64

        png = base64.b64decode(data)
        path.write_bytes(png)
        return struct.unpack(">II", png[16:24])

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen so far."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in CONSOLE_PROBLEMS:
                found.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in {"error", "warning"}:
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                found.append(f"load failed: {params.get('errorText')}")
        return found

    def requested_urls(self) -> list[str]:
        return [event["params"]["request"]["url"] for event in self.events
                if event.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._commands, self._events):
            os.close(fd)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def served(report):
    """The report over HTTP on 127.0.0.1 (an ephemeral port); yields the page's URL."""
    handler = functools.partial(_QuietHandler, directory=str(report["out"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def browser(chromium, tmp_path):
    instance = Browser(chromium, Path(tempfile.mkdtemp(prefix="profile-", dir=tmp_path)))
    yield instance
    instance.close()


_AUDIO_STATE = """Promise.all(Array.from(
  document.querySelectorAll("audio"), (audio) => new Promise((done) => {
  const report = () => done({src: audio.getAttribute("src"), duration: audio.duration,
                             ready: audio.readyState, error: audio.error && audio.error.code});
  if (audio.readyState >= 1 || audio.error) { report(); return; }
  audio.addEventListener("loadedmetadata", report, {once: true});
  audio.addEventListener("error", report, {once: true});
  setTimeout(report, 15000);
})))"""

_TABLE = """Array.from(document.querySelectorAll("#score-table tbody tr"), (row) =>
  Array.from(row.cells, (cell) => cell.getAttribute("data-value")))"""

_OVERFLOW = "[document.documentElement.scrollWidth, window.innerWidth]"
_PLAYER_TOPS = ("Array.from(document.querySelectorAll('#utterance-1 .player'),"
                " (p) => p.getBoundingClientRect().top)")
_PLAYER_LEFTS = ("Array.from(document.querySelectorAll('#utterance-1 .player'),"
                 " (p) => p.getBoundingClientRect().left)")


def test_page_in_headless_chromium(report, served, browser, tmp_path):
    out = report["out"]
    # a phone first: everything loads, nothing is wider than the screen
    browser.open(served, 390, 844, mobile=True)
    audio = browser.evaluate(_AUDIO_STATE, timeout=60)
    assert len(audio) == len(SHORT_IDS) * (1 + len(SYSTEMS) + len(ANCHORS))
    for state in audio:
        info = sf.info(_local(out, state["src"]))
        assert state["error"] is None and state["ready"] >= 1, state
        # Chromium reports the duration in whole microseconds: within one sample of frames / rate
        error = abs(state["duration"] - info.frames / info.samplerate)
        assert error <= 1 / info.samplerate, (state, info.frames)
    scroll_width, inner_width = browser.evaluate(_OVERFLOW)
    assert inner_width == 390 and scroll_width <= inner_width
    assert browser.screenshot(tmp_path / "page_390.png") == (390, 844)
    # the table is wider than a phone: it scrolls sideways inside its own box, not the page
    box = browser.evaluate("(() => { const s = document.querySelector('.table-scroll');"
                           " return [s.scrollWidth, s.clientWidth, getComputedStyle(s).overflowX]; })()")
    assert box[0] > box[1] and box[2] == "auto", box
    # the players stack, one per line
    assert len(set(browser.evaluate(_PLAYER_LEFTS))) == 1

    # the sort: PESQ-WB best first, then reversed; MCD best (lowest) first
    rows = browser.evaluate(_TABLE)
    systems = [row[0] for row in rows]
    assert systems == [*SYSTEMS, *ANCHORS]
    pesq_column = 1 + METRICS.index("pesq_wb")
    browser.click(f"#score-table thead th:nth-child({pesq_column + 1}) button")
    by_pesq = [float(row[pesq_column]) for row in browser.evaluate(_TABLE)]
    assert by_pesq == sorted(by_pesq, reverse=True) and by_pesq != [float(row[pesq_column]) for row in rows]
    assert browser.evaluate(f"document.querySelector('#score-table thead th:nth-child({pesq_column + 1})')"
                            ".getAttribute('aria-sort')") == "descending"
    browser.click(f"#score-table thead th:nth-child({pesq_column + 1}) button")
    assert [float(row[pesq_column]) for row in browser.evaluate(_TABLE)] == sorted(by_pesq)
    mcd_column = 1 + METRICS.index("mcd_db")
    browser.click(f"#score-table thead th:nth-child({mcd_column + 1}) button")
    by_mcd = [float(row[mcd_column]) for row in browser.evaluate(_TABLE)]
    assert by_mcd == sorted(by_mcd)
    # a missing score (n/a) stays last in either direction
    fpe_column = 1 + METRICS.index("fpe_cents")
    for direction in (sorted, lambda values: sorted(values, reverse=True)):
        browser.click(f"#score-table thead th:nth-child({fpe_column + 1}) button")
        by_fpe = [row[fpe_column] for row in browser.evaluate(_TABLE)]
        assert by_fpe[-1] == "" and by_fpe[:-1] == [str(v) for v in direction(float(v) for v in by_fpe[:-1])]

    # a desktop
    browser.open(served, 1280, 900, mobile=False)
    scroll_width, inner_width = browser.evaluate(_OVERFLOW)
    assert inner_width == 1280 and scroll_width <= inner_width
    # an utterance's recording and its five systems side by side in one row
    assert len(set(browser.evaluate(_PLAYER_TOPS))) == 1
    assert len(set(browser.evaluate(_PLAYER_LEFTS))) == 1 + len(SYSTEMS) + len(ANCHORS)
    assert browser.screenshot(tmp_path / "page_1280.png") == (1280, 900)

    assert browser.problems() == []
    origin = served.rsplit("/", 1)[0] + "/"
    assert all(url.startswith(origin) or url.startswith("data:") for url in browser.requested_urls())


def test_page_reads_without_javascript(report, served, browser):
    browser.send("Emulation.setScriptExecutionDisabled", value=True)
    browser.open(served, 390, 844, mobile=True)
    rows = browser.evaluate(_TABLE)  # Runtime.evaluate still runs while the page's scripts do not
    assert [row[0] for row in rows] == [*SYSTEMS, *ANCHORS]
    assert browser.evaluate("document.querySelectorAll('#score-table button').length") == 0
    assert browser.evaluate("document.getElementById('sort-hint').hidden") is True
    scroll_width, inner_width = browser.evaluate(_OVERFLOW)
    assert scroll_width <= inner_width == 390
    assert browser.problems() == []
