"""The listening page of a report: ``index.html`` with the score table and, per utterance, every system's
audio player, spectrogram and scores side by side.

The page is one self-contained HTML file (inline CSS and a few lines of inline JavaScript, no network);
it links with relative URLs to the files written beside it::

    index.html
    audio/<system>/<utterance>.wav          16-bit PCM mono at the scoring rate ("natural" is the recording)
    spectrograms/<system>/<utterance>.png   log spectrogram, 0 Hz to Nyquist, one colour scale per utterance

Every signal is stored as it was scored (read at the report's sample rate), quantized to 16-bit PCM,
which browsers play everywhere. The table sorts by clicking a column header when JavaScript runs; without
it the page is the same, unsorted. Every string that comes from the user (paths, file and system names) is
HTML-escaped, and every link is percent-encoded.
"""

from __future__ import annotations

import html
import math
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np

from vocoder.evaluation._metrics import HIGHER_IS_BETTER, METRICS
from vocoder.evaluation._summary import METRIC_LABELS, format_score

PAGE_NAME = "index.html"
AUDIO_DIR = "audio"
SPECTROGRAM_DIR = "spectrograms"
#: the system name of the natural recordings on the page (a reserved name)
NATURAL = "natural"
#: system names: a letter or digit, then letters, digits and ``_ . + -`` (they name folders of the page)
SYSTEM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
SPECTROGRAM_ROWS = 128  # image height: frequency bands from 0 Hz to Nyquist
SPECTROGRAM_RANGE_DB = 80.0  # colour scale: the natural recording's peak down to 80 dB below it

ANCHOR_DESCRIPTIONS = {
    "world": "WORLD analysis/synthesis of the recording (harvest, CheapTrick, D4C)",
    "griffin_lim": "Griffin-Lim from the recording's 80-band mel magnitude (32 iterations)",
    "mulaw8": "the recording quantized to 8-bit μ-law",
}


def media_path(kind: str, system: str, file_name: str) -> str:
    """Where the page's wav (``kind="audio"``) or spectrogram (``"spectrogram"``) of one utterance goes.

    Args:
        kind: ``"audio"`` or ``"spectrogram"``.
        system: the system's name (``natural`` for the recording).
        file_name: the utterance's wav file name, e.g. ``arctic_a0001.wav``.

    Returns:
        The path relative to the report folder, with ``/`` separators.
    """
    if kind == "audio":
        return f"{AUDIO_DIR}/{system}/{file_name}"
    if kind == "spectrogram":
        return f"{SPECTROGRAM_DIR}/{system}/{Path(file_name).stem}.png"
    raise ValueError(f"kind must be 'audio' or 'spectrogram', got {kind!r}")


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1) → int16, clipped; the exact inverse of reading 16-bit PCM as ``x / 32768``."""
    return np.clip(np.round(np.asarray(wave, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def log_spectrogram(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log power spectrogram for the page's images.

    Hann frames of about 32 ms (a power of two, at least 256 samples) every 10 ms, centred on their
    time; the bins are pooled (power mean) into :data:`SPECTROGRAM_ROWS` bands from 0 Hz to Nyquist.

    Args:
        wave: 1-D waveform.
        sample_rate: its rate in Hz (≥ 8 kHz).

    Returns:
        dB values, shape ``(SPECTROGRAM_ROWS, frames)``, frames = ``1 + len(wave) // hop``.
    """
    n_fft = max(256, 1 << round(math.log2(0.032 * sample_rate)))
    hop = max(1, sample_rate // 100)
    x = np.asarray(wave, dtype=np.float64)
    padded = np.pad(x, (n_fft // 2, n_fft // 2 + hop))
    frames = 1 + len(x) // hop
    windows = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:frames]
    power = np.abs(np.fft.rfft(windows * np.hanning(n_fft), axis=1)) ** 2  # (frames, n_fft/2 + 1)
    bands = power[:, : n_fft // 2].reshape(frames, SPECTROGRAM_ROWS, -1).mean(axis=2)
    return 10.0 * np.log10(bands.T + 1e-12)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def palette_png(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """An 8-bit palette PNG file.

    Args:
        indices: colour indices, shape ``(height, width)``, uint8; row 0 is the top of the image.
        palette: RGB colours, shape ``(256, 3)``, uint8.

    Returns:
        The PNG file's bytes.
    """
    height, width = indices.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), indices.astype(np.uint8)], axis=1)  # filter 0
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + _png_chunk(b"IEND", b""))


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG file's header."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    return struct.unpack(">II", head[16:24])


def _magma() -> np.ndarray:
    import matplotlib

    colours = np.asarray(matplotlib.colormaps["magma"](np.linspace(0.0, 1.0, 256)))[:, :3]
    return np.round(colours * 255.0).astype(np.uint8)


class UtteranceMedia:
    """Writes one utterance's page files: each system's wav and spectrogram, on the recording's colour scale.

    Args:
        output_dir: the report folder.
        file_name: the utterance's wav file name (e.g. ``arctic_a0001.wav``).
        natural: the recording as scored, 1-D float waveform.
        sample_rate: its rate in Hz.
    """

    def __init__(self, output_dir: Path, file_name: str, natural: np.ndarray, sample_rate: int) -> None:
        self.output_dir = Path(output_dir)
        self.file_name = file_name
        self.sample_rate = sample_rate
        self.palette = _magma()
        self.top_db = math.nan  # the recording's peak, set by the first write
        self.add(NATURAL, natural)

    def add(self, system: str, wave: np.ndarray) -> None:
        """Write ``system``'s wav and spectrogram.

        Args:
            system: its name (a folder of the page).
            wave: 1-D float samples in [-1, 1) or int16 samples, at the recording's rate.
        """
        import soundfile as sf

        pcm = wave if wave.dtype == np.int16 else to_pcm16(wave)
        wav = self.output_dir / media_path("audio", system, self.file_name)
        wav.parent.mkdir(parents=True, exist_ok=True)
        sf.write(wav, pcm, self.sample_rate, subtype="PCM_16", format="WAV")
        spectrogram = log_spectrogram(pcm.astype(np.float64) / 32768.0, self.sample_rate)
        if math.isnan(self.top_db):
            self.top_db = float(spectrogram.max())
        level = (spectrogram - (self.top_db - SPECTROGRAM_RANGE_DB)) / SPECTROGRAM_RANGE_DB
        # row 0 is the top of the image: the highest band
        indices = np.clip(np.round(level * 255.0), 0, 255).astype(np.uint8)[::-1]
        png = self.output_dir / media_path("spectrogram", system, self.file_name)
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(palette_png(indices, self.palette))


# ---------------------------------------------------------------------------------------------- the page

_CSS = """
:root { color-scheme: light dark; --line: #8884; --muted: #666; --accent: #7b2cbf; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 84rem; padding: 1rem; font: 16px/1.45 system-ui, -apple-system,
       "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; }
h3 { font-size: 1.05rem; margin: 0 0 .5rem; }
h1, h3, code, dd, figcaption { overflow-wrap: anywhere; }
p, dl { margin: .5rem 0; }
dl.sources { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .15rem .75rem; }
dl.sources dt { font-weight: 600; }
dl.sources dd { margin: 0; }
.muted { color: var(--muted); }
@media (prefers-color-scheme: dark) { :root { --muted: #aaa; --accent: #c77dff; } }
.table-scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; padding-top: .35rem; font-size: .85rem; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid var(--line); text-align: right;
         white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { vertical-align: bottom; }
th button { font: inherit; font-weight: 600; color: inherit; background: none; border: 0; padding: 0;
            cursor: pointer; text-decoration: underline dotted; }
th[aria-sort="ascending"] button::after { content: " ▲"; }
th[aria-sort="descending"] button::after { content: " ▼"; }
.tag { font-size: .75rem; font-weight: 400; color: var(--muted); margin-left: .35rem; }
.utterance { border-top: 1px solid var(--line); padding: 1rem 0; }
.players { display: grid; gap: .6rem;
           grid-template-columns: repeat(auto-fill, minmax(min(12rem, 100%), 1fr)); }
.player { min-width: 0; margin: 0; padding: .4rem; border: 1px solid var(--line); border-radius: .4rem; }
.player.natural { border-color: var(--accent); }
.player figcaption { font-weight: 600; margin-bottom: .25rem; }
.player img { display: block; width: 100%; height: 5rem; object-fit: fill; border-radius: .2rem; }
.player audio { display: block; width: 100%; margin: .4rem 0 .2rem; }
ul.scores { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .1rem .6rem;
            font-size: .85rem; font-variant-numeric: tabular-nums; }
ul.scores b { font-weight: 600; }
"""

# sorts the score table by the clicked column; a second click reverses. Metrics sort best first, names A–Z;
# missing scores (n/a) stay last either way.
_JS = """
(function () {
  var table = document.getElementById("score-table");
  if (!table || !table.tHead) { return; }
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var hint = document.getElementById("sort-hint");
  if (hint) { hint.hidden = false; }
  Array.prototype.forEach.call(body.rows, function (row, index) { row.dataset.index = index; });
  headers.forEach(function (th, column) {
    var button = document.createElement("button");
    button.type = "button";
    while (th.firstChild) { button.appendChild(th.firstChild); }
    th.appendChild(button);
    button.addEventListener("click", function () { sortBy(th, column); });
  });
  function value(row, column, numeric) {
    var raw = row.cells[column].getAttribute("data-value");
    if (!numeric) { return raw; }
    return raw === "" ? NaN : parseFloat(raw);
  }
  function sortBy(th, column) {
    var numeric = th.getAttribute("data-type") === "number";
    var previous = th.getAttribute("aria-sort");
    var ascending = previous ? previous !== "ascending" : th.getAttribute("data-first") === "ascending";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, column, numeric), y = value(b, column, numeric), order;
      if (numeric) {
        if (isNaN(x) || isNaN(y)) {
          order = isNaN(x) - isNaN(y);
          return order || a.dataset.index - b.dataset.index;
        }
        order = x - y;
      } else {
        order = x < y ? -1 : (x > y ? 1 : 0);
      }
      if (!ascending) { order = -order; }
      return order || a.dataset.index - b.dataset.index;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
})();
"""


#: per-utterance score labels and units (the table's headers say which way is better)
_SHORT_LABELS = {"pesq_wb": ("PESQ-WB", ""), "stoi": ("STOI", ""), "mcd_db": ("MCD", " dB"),
                 "vuv_error": ("V/UV", ""), "gpe": ("GPE", ""), "fpe_cents": ("FPE", " cents")}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _url(relative: str) -> str:
    return _e(quote(relative, safe="/"))


def _anchor_tag(system: str, anchors: Sequence[str]) -> str:
    return '<span class="tag">anchor</span>' if system in anchors else ""


def _score_table(summary: Mapping[str, Mapping[str, tuple[float, float]]],
                 anchors: Sequence[str]) -> list[str]:
    lines = ['<div class="table-scroll">', '<table id="score-table">',
             '<caption class="muted">mean ± 95 % confidence interval; V/UV error and GPE in percent'
             "</caption>",
             '<thead><tr><th scope="col" data-type="text" data-first="ascending">system</th>']
    for metric in METRICS:
        first = "descending" if HIGHER_IS_BETTER.get(metric, False) else "ascending"
        lines.append(f'<th scope="col" data-type="number" data-first="{first}">'
                     f"{_e(METRIC_LABELS[metric])}</th>")
    lines += ["</tr></thead>", "<tbody>"]
    for system, scores in summary.items():
        name = f"{_e(system)}{_anchor_tag(system, anchors)}"
        cells = [f'<th scope="row" data-value="{_e(system)}">{name}</th>']
        for metric in METRICS:
            mean, half = scores[metric]
            value = "" if math.isnan(mean) else repr(float(mean))
            cells.append(f'<td data-value="{value}">{_e(format_score(metric, mean, half))}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines += ["</tbody>", "</table>", "</div>"]
    return lines


def _utterance_scores(scores: Mapping[str, object]) -> str:
    items = []
    for metric in METRICS:
        label, unit = _SHORT_LABELS[metric]
        value = float(scores[metric])
        items.append(f"<li><b>{_e(label)}</b> {_e(format_score(metric, value))}"
                     f"{'' if math.isnan(value) else _e(unit)}</li>")
    return f'<ul class="scores">{"".join(items)}</ul>'


def _player(output_dir: Path, system: str, file_name: str, uid: str, anchors: Sequence[str],
            scores: Mapping[str, object] | None) -> list[str]:
    audio = media_path("audio", system, file_name)
    image = media_path("spectrogram", system, file_name)
    width, height = png_size(output_dir / image)
    kind = " natural" if system == NATURAL else ""
    lines = [f'<figure class="player{kind}">',
             f"<figcaption>{_e(system)}{_anchor_tag(system, anchors)}</figcaption>",
             f'<img src="{_url(image)}" width="{width}" height="{height}" '
             f'alt="{_e(f"Spectrogram of {uid}, {system}")}">',
             f'<audio controls preload="metadata" src="{_url(audio)}">'
             f'<a href="{_url(audio)}">{_e(file_name)}</a></audio>']
    if scores is not None:
        lines.append(_utterance_scores(scores))
    lines.append("</figure>")
    return lines


def write_listening_page(
    output_dir: Path,
    summary: Mapping[str, Mapping[str, tuple[float, float]]],
    rows: Sequence[Mapping[str, object]],
    utterances: Sequence[tuple[str, str]],
    sources: Mapping[str, str],
    reference_dir: str,
    anchors: Sequence[str] = (),
    scored_utterances: int | None = None,
    sample_rate: int = 16000,
    links: Sequence[str] = ("summary.md", "scores.csv", "plots/distributions.png"),
) -> Path:
    """Write ``output_dir/index.html`` for media that :class:`UtteranceMedia` already wrote there.

    Args:
        output_dir: the report folder.
        summary: ``{system: {metric: (mean, CI half-width)}}`` for the table, in the table's order.
        rows: the per-utterance scores: dicts with ``utterance``, ``system`` and every metric.
        utterances: ``(utterance id, wav file name)`` of each utterance on the page, in page order.
        sources: ``{system: folder of its wavs}`` for the synthesized systems, in page order.
        reference_dir: the folder of the natural recordings.
        anchors: the anchor systems scored (their players follow the synthesized ones).
        scored_utterances: how many utterances the table is over (default: ``len(utterances)``).
        sample_rate: the rate everything was scored (and is played) at, in Hz.
        links: report files to link from the page's head, relative to ``output_dir`` (absent ones
            are left out).

    Returns:
        The page's path.
    """
    output_dir = Path(output_dir)
    scored = len(utterances) if scored_utterances is None else scored_utterances
    by_key = {(str(row["utterance"]), str(row["system"])): row for row in rows}
    systems = [*sources, *anchors]
    names = ", ".join(sources)
    with_anchors = f" and the anchors {', '.join(anchors)}" if anchors else ""
    plural = "s" if scored != 1 else ""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           '<link rel="icon" href="data:,">',  # no favicon request
           f"<title>Listening page: {_e(names)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           "<header>", "<h1>Listening page</h1>",
           f"<p>{_e(names + with_anchors)}: {scored} utterance{plural} scored against the natural "
           f"recordings at {sample_rate} Hz.</p>",
           '<dl class="sources">', f"<dt>{NATURAL}</dt><dd><code>{_e(reference_dir)}</code></dd>"]
    for system, folder in sources.items():
        out.append(f"<dt>{_e(system)}</dt><dd><code>{_e(folder)}</code></dd>")
    for system in anchors:
        out.append(f"<dt>{_e(system)}</dt><dd>{_e(ANCHOR_DESCRIPTIONS.get(system, 'anchor'))}</dd>")
    out.append("</dl>")
    present = [link for link in links if (output_dir / link).is_file()]
    if present:
        link_list = ", ".join(f'<a href="{_url(link)}">{_e(link)}</a>' for link in present)
        out.append(f"<p>Report files: {link_list}.</p>")
    out += ["</header>", "<main>", '<section aria-labelledby="scores-heading">',
            '<h2 id="scores-heading">Scores</h2>',
            '<p id="sort-hint" class="muted" hidden>Click a column header to sort by it; click again to '
            "reverse.</p>",
            *_score_table(summary, anchors), "</section>",
            '<section aria-labelledby="utterances-heading">', '<h2 id="utterances-heading">Utterances</h2>']
    if len(utterances) < scored:
        out.append(f'<p class="muted">The first {len(utterances)} of the {scored} utterances, by name.</p>')
    out.append('<p class="muted">Spectrograms: 0 Hz to Nyquist, from the recording\'s peak down to '
               f"{SPECTROGRAM_RANGE_DB:.0f} dB below it.</p>")
    for index, (uid, file_name) in enumerate(utterances):
        out += [f'<article class="utterance" id="utterance-{index + 1}">', f"<h3>{_e(uid)}</h3>",
                '<div class="players">', *_player(output_dir, NATURAL, file_name, uid, anchors, None)]
        for system in systems:
            out += _player(output_dir, system, file_name, uid, anchors, by_key.get((uid, system)))
        out += ["</div>", "</article>"]
    out += ["</section>", "</main>", f"<script>{_JS}</script>", "</body>", "</html>"]
    path = output_dir / PAGE_NAME
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path
