"""Trimmed Whisper windows against the classic 30 s window, on every real speech set in ../shared/data.

models/batched_whisper.py gives the encoder the audio plus a margin (at least `WindowPolicy.floor_s`) instead
of a 30 s window, with a decoder token budget, and decodes a window again on the full 30 s when the trimmed
decode fails its guards. This runs each set through `models.asr.AsrWorker` (CPU, threads=2, the thread pool
the CPU default uses, every utterance of a set submitted at once as finals) with trim off and trim on and
reports, per set:

- WER of each (jiwer, text normalised like tests/test_end_to_end.normalise; on sets whose references spell
  numbers out, the hypotheses' digits are spelled out too) and their difference;
- decode seconds (wall clock for the whole set) and real-time factor (decode seconds / audio seconds);
- how many trimmed windows fell back to the full window;
- word-timestamp agreement of trimmed against full decodes (words matched with difflib as in
  tests/test_asr_worker.compare; gap = max(|start diff|, |end diff|) of a matched word): max, p95, share > 0.1 s;
- for picovoice-leopard-tests (reference word timestamps in test_data.json): the mean absolute start and end
  error of each decode against the reference.

Sets: FLEURS en (tiny.en) and es (base); picovoice test.wav (en, tiny.en) and test_es.wav (es, base);
osr-harvard-8k (en, 8 kHz), voxpopuli (69 s, en) and both split into utterances with the live path's
VadSegmenter + VadStream (assist/settings/groups.py defaults, max 15 s); faster-whisper jfk.flac; pocketsphinx
raw 16 kHz PCM (goforward.raw, something.raw) and its librivox + cards WAVs; 8 kHz telephone versions
(16k -> 8k, G.711 mu-law, -> 16k) of FLEURS es and picovoice test_es. Then base on the English sets,
a Spanish beam comparison (base, BeamSizes(final=1) vs (final=5), trimmed windows) and a margin_s sweep
(1, 3, 6 at floor 10, FLEURS en + es) judged by timestamp agreement with the full window.

Each worker serves the one language of its set (languages=(lang,)): no language detection or probe, so
the times are decoding only. The CPU is shared; timings carry the load average at start and end.

Usage: python -m benchmarks.bench_asr_window [--quick]
The full run writes benchmarks/results/asr_window_cpu.json; --quick (a subset) only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import hashlib
import json
import os
import platform
import re
import subprocess
import time
import unicodedata
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import jiwer
import numpy as np
from scipy.signal import resample_poly

from assist.democall import DATA, load_mono
from assist.settings import SegmentationSettings
from models.asr import AsrRequest, AsrResult, AsrWorker, BeamSizes
from models.batched_whisper import WindowPolicy
from models.vad import VadStream
from streaming.codecs import float_to_int16, int16_to_float, mulaw_decode, mulaw_encode
from streaming.segmenter import VadSegmenter
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker

RESULTS = Path(__file__).parent / "results"
CACHE = Path.home() / ".cache" / "recobra"
THREADS = 2
FULL = WindowPolicy(trim=False)
TRIM = WindowPolicy()
MARGINS = (1.0, 3.0, 6.0)
GAP_S = 0.1


# ---------------------------------------------------------------- text


def normalise(text: str) -> str:
    """The same normalisation as tests/test_end_to_end.normalise."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell(n: int) -> str:
    """English cardinal, British 'and' (1975 -> one thousand nine hundred and seventy five), as VoxPopuli writes."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (f" {_ONES[n % 10]}" if n % 10 else "")
    if n < 1000:
        rest = n % 100
        return f"{_ONES[n // 100]} hundred" + (f" and {spell(rest)}" if rest else "")
    if n < 1_000_000:
        rest = n % 1000
        return f"{spell(n // 1000)} thousand" + ((" and " if rest < 100 else " ") + spell(rest) if rest else "")
    return str(n)


def spelled(text: str) -> str:
    """Digits spelled out and 'Mr' as 'mister', for references that write numbers and titles in words."""
    text = re.sub(r"\d[\d,]*", lambda m: f" {spell(int(m.group().replace(',', '')))} ", text)
    return " ".join("mister" if w == "mr" else w for w in normalise(text).split())


# ---------------------------------------------------------------- data


@dataclass
class Doc:
    """One recording with its reference: its utterances on the recording's clock (t0, 16 kHz audio)."""

    name: str
    reference: str
    utterances: list[tuple[float, np.ndarray]]
    ref_words: list[tuple[str, float, float]] | None = None


@dataclass
class SpeechSet:
    name: str
    language: str
    docs: list[Doc]
    spell_numbers: bool = False

    @property
    def audio_s(self) -> float:
        return sum(len(a) for d in self.docs for _, a in d.utterances) / SAMPLE_RATE

    @property
    def utterances(self) -> list[tuple[float, np.ndarray]]:
        return [u for d in self.docs for u in d.utterances]

    def text(self, s: str) -> str:
        return spelled(s) if self.spell_numbers else normalise(s)


def whole(name: str, audio: np.ndarray, reference: str, ref_words=None) -> Doc:
    return Doc(name, reference, [(0.0, audio)], ref_words)


def segmented(name: str, audio: np.ndarray, reference: str) -> Doc:
    """Utterances as the live path cuts them: VadSegmenter + VadStream with the settings' defaults."""
    f = SegmentationSettings.model_fields
    seg = VadSegmenter(VadStream(), f["vad_threshold"].default, f["vad_min_silence_ms"].default / 1000,
                       f["vad_speech_pad_ms"].default / 1000, f["max_utterance_s"].default)
    out = []
    chunk = 320  # 20 ms frames, as a telephony stream delivers them
    for i in range(0, len(audio), chunk):
        out += seg.push(AudioFrame(Speaker.DEBTOR, i / SAMPLE_RATE, audio[i : i + chunk]))
    if (last := seg.flush()) is not None:
        out.append(last)
    return Doc(name, reference, [(s.t0, s.audio) for s in out])


def telephone(audio: np.ndarray) -> np.ndarray:
    """16 kHz -> 8 kHz G.711 mu-law -> 16 kHz, as a call reaches the service over a phone line."""
    narrow = resample_poly(audio, 1, 2).astype(np.float32)
    coded = int16_to_float(mulaw_decode(mulaw_encode(float_to_int16(narrow))))
    return resample_poly(coded, 2, 1).astype(np.float32)


def fleurs(language: str, count: int) -> list[Doc]:
    folder = DATA / "fleurs-cuttledoc"
    return [whole(f"fleurs-{language}-{i:03d}", load_mono(folder / f"fleurs-{language}-{i:03d}.ogg"),
                  (folder / f"fleurs-{language}-{i:03d}.txt").read_text(encoding="utf-8").strip())
            for i in range(count)]


def picovoice(file: str) -> Doc:
    folder = DATA / "picovoice-leopard-tests"
    tests = json.loads((folder / "test_data.json").read_text(encoding="utf-8"))["tests"]["language_tests"]
    entry = next(t for t in tests if t["audio_file"] == file)
    words = [(w["word"], float(w["start_sec"]), float(w["end_sec"])) for w in entry["words"]]
    return whole(f"picovoice/{file}", load_mono(folder / file), entry["transcript"], words)


def manifest(folder: str) -> dict[str, str]:
    lines = (DATA / folder / "manifest.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in lines[1:] if line.strip()]
    return {r["path"]: r["reference_text"] for r in rows}


def raw_pcm(path: Path) -> np.ndarray:
    return int16_to_float(np.fromfile(path, dtype="<i2"))


def load_sets(quick: bool) -> tuple[list[SpeechSet], list[SpeechSet]]:
    """(English sets, Spanish sets)."""
    n = 4 if quick else 10
    harvard = manifest("osr-harvard-8k")
    jfk = manifest("faster-whisper-tests")["jfk.flac"]
    english = [
        SpeechSet("fleurs-en", "en", fleurs("en", n)),
        SpeechSet("picovoice-en", "en", [picovoice("test.wav")]),
        SpeechSet("harvard-8k", "en", [segmented(name, load_mono(DATA / "osr-harvard-8k" / name), ref)
                                        for name, ref in harvard.items()]),
        SpeechSet("jfk", "en", [whole("jfk.flac", load_mono(DATA / "faster-whisper-tests" / "jfk.flac"), jfk)]),
    ]
    if not quick:
        vox = DATA / "voxpopuli-cuttledoc"
        sphinx = DATA / "pocketsphinx-testdata"
        refs = manifest("pocketsphinx-testdata")
        english += [
            SpeechSet("voxpopuli", "en", [segmented(name, load_mono(vox / name), ref)
                                          for name, ref in manifest("voxpopuli-cuttledoc").items()],
                      spell_numbers=True),
            SpeechSet("psphinx-raw", "en", [whole(name, raw_pcm(sphinx / name), refs[name])
                                            for name in ("goforward.raw", "something.raw")], spell_numbers=True),
            SpeechSet("psphinx-wav", "en", [whole(name, load_mono(sphinx / name), ref) for name, ref in refs.items()
                                            if name.endswith(".wav")], spell_numbers=True),
        ]
    es = fleurs("es", n)
    pico_es = picovoice("test_es.wav")
    spanish = [
        SpeechSet("fleurs-es", "es", es),
        SpeechSet("picovoice-es", "es", [pico_es]),
        SpeechSet("fleurs-es-8k", "es", [whole(d.name, telephone(d.utterances[0][1]), d.reference) for d in es]),
        SpeechSet("picovoice-es-8k", "es", [whole(pico_es.name, telephone(pico_es.utterances[0][1]),
                                                  pico_es.reference, pico_es.ref_words)]),
    ]
    return english, spanish


# ---------------------------------------------------------------- decoding


@dataclass
class Run:
    results: list[AsrResult]
    wall_s: float

    @property
    def fallbacks(self) -> int:
        return sum(r.full_windows for r in self.results)


class Runner:
    """One AsrWorker per (model, language, window, beam), created on first use and warmed once."""

    def __init__(self) -> None:
        self.workers: dict[tuple, AsrWorker] = {}

    def worker(self, model: str, language: str, window: WindowPolicy, beam: int) -> AsrWorker:
        key = (model, language, window, beam)
        if key not in self.workers:
            worker = AsrWorker(model, CACHE, "cpu", "auto", THREADS, languages=(language,),
                               beams=BeamSizes(final=beam), window=window)
            warm = np.zeros(SAMPLE_RATE, dtype=np.float32)
            asyncio.run(worker.transcribe(AsrRequest(warm, 0.0, language, final=True, call_id="warm")))
            self.workers[key] = worker
        return self.workers[key]

    def run(self, s: SpeechSet, model: str, window: WindowPolicy, beam: int = 1) -> Run:
        worker = self.worker(model, s.language, window, beam)
        requests = [AsrRequest(audio, t0, s.language, final=True, call_id=f"{s.name}-{i}", channel="agent")
                    for i, (t0, audio) in enumerate(s.utterances)]

        async def all_of() -> list[AsrResult]:
            return await asyncio.gather(*(worker.transcribe(r) for r in requests))

        started = time.monotonic()
        results = asyncio.run(all_of())
        return Run(results, time.monotonic() - started)

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()


# ---------------------------------------------------------------- measures


def doc_texts(s: SpeechSet, run: Run) -> list[str]:
    out, k = [], 0
    for d in s.docs:
        parts = run.results[k : k + len(d.utterances)]
        k += len(d.utterances)
        out.append(s.text(" ".join(w.text for r in parts for w in r.words)))
    return out


def wer(s: SpeechSet, run: Run) -> float:
    return float(jiwer.wer([s.text(d.reference) for d in s.docs], doc_texts(s, run)))


def gaps(full: Run, trimmed: Run) -> tuple[list[float], int, int]:
    """Timestamp gaps of the words matched between the two decodes; (gaps, full words, trimmed words)."""
    out: list[float] = []
    for f, t in zip(full.results, trimmed.results):
        matcher = difflib.SequenceMatcher(a=[w.text for w in f.words], b=[w.text for w in t.words], autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                wf, wt = f.words[block.a + k], t.words[block.b + k]
                out.append(max(abs(wf.start - wt.start), abs(wf.end - wt.end)))
    return out, sum(len(r.words) for r in full.results), sum(len(r.words) for r in trimmed.results)


def tail_extras(full: Run, trimmed: Run) -> tuple[int, int]:
    """Words after the last word the two decodes share: (trimmed's, full's), summed over utterances.

    Trimmed windows more often end on a timestamp pair, so the tail after the last word is decoded as a window
    of its own, where Whisper may write a closing phrase ('Thank you.') that is not in the audio.
    """
    extra_trim = extra_full = 0
    for f, t in zip(full.results, trimmed.results):
        matcher = difflib.SequenceMatcher(a=[w.text for w in f.words], b=[w.text for w in t.words], autojunk=False)
        blocks = [b for b in matcher.get_matching_blocks() if b.size]
        end_f, end_t = (blocks[-1].a + blocks[-1].size, blocks[-1].b + blocks[-1].size) if blocks else (0, 0)
        extra_trim += len(t.words) - end_t
        extra_full += len(f.words) - end_f
    return extra_trim, extra_full


def agreement(values: list[float], full_words: int, trimmed_words: int) -> dict:
    if not values:
        return {"matched_words": 0, "full_words": full_words, "trimmed_words": trimmed_words,
                "max_s": None, "p95_s": None, "over_0_1_s": None}
    a = np.asarray(values)
    return {"matched_words": len(values), "full_words": full_words, "trimmed_words": trimmed_words,
            "max_s": round(float(a.max()), 3), "p95_s": round(float(np.percentile(a, 95)), 3),
            "over_0_1_s": round(float((a > GAP_S).mean()), 3)}


def reference_timing(s: SpeechSet, run: Run) -> dict | None:
    """Mean absolute start / end error of matched words against the reference word timestamps."""
    doc = s.docs[0]
    if doc.ref_words is None:
        return None
    ref = [(normalise(w), a, b) for w, a, b in doc.ref_words]
    hyp = [(normalise(w.text), w.start, w.end) for r in run.results for w in r.words]
    hyp = [h for h in hyp if h[0]]
    matcher = difflib.SequenceMatcher(a=[r[0] for r in ref], b=[h[0] for h in hyp], autojunk=False)
    starts, ends = [], []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            r, h = ref[block.a + k], hyp[block.b + k]
            starts.append(abs(r[1] - h[1]))
            ends.append(abs(r[2] - h[2]))
    if not starts:
        return {"matched": 0, "ref_words": len(ref)}
    return {"matched": len(starts), "ref_words": len(ref), "start_mae_s": round(float(np.mean(starts)), 3),
            "end_mae_s": round(float(np.mean(ends)), 3)}


def compare_windows(runner: Runner, s: SpeechSet, model: str) -> tuple[dict, Run, Run]:
    full = runner.run(s, model, FULL)
    trimmed = runner.run(s, model, TRIM)
    wer_full, wer_trim = wer(s, full), wer(s, trimmed)
    row = {
        "set": s.name, "language": s.language, "model": model, "utterances": len(s.utterances),
        "audio_s": round(s.audio_s, 2),
        "wer_full": round(wer_full, 4), "wer_trim": round(wer_trim, 4), "wer_diff": round(wer_trim - wer_full, 4),
        "decode_s_full": round(full.wall_s, 2), "decode_s_trim": round(trimmed.wall_s, 2),
        "rtf_full": round(full.wall_s / s.audio_s, 4), "rtf_trim": round(trimmed.wall_s / s.audio_s, 4),
        "speedup": round(full.wall_s / trimmed.wall_s, 2) if trimmed.wall_s else None,
        "fallbacks_trim": trimmed.fallbacks, "fallbacks_full": full.fallbacks,
        "timestamps": agreement(*gaps(full, trimmed)),
        "tail_words_trim_only": tail_extras(full, trimmed)[0], "tail_words_full_only": tail_extras(full, trimmed)[1],
    }
    if s.docs[0].ref_words is not None:
        row["reference_timing"] = {"full": reference_timing(s, full), "trim": reference_timing(s, trimmed)}
    return row, full, trimmed


# ---------------------------------------------------------------- report


def fmt(x, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def print_table(rows: list[dict]) -> None:
    head = (f"{'set':<16}{'model':<8}{'utt':>4}{'audio':>7}  {'WERfull':>7}{'WERtrim':>8}{'dWER':>7}  "
            f"{'t_full':>7}{'t_trim':>7}{'RTFfull':>8}{'RTFtrim':>8}{'x':>6}  {'fb':>3}  "
            f"{'ts_max':>7}{'ts_p95':>7}{'>0.1s':>6}{'tail':>5}  ref start/end MAE full | trim")
    print(head)
    print("-" * len(head))
    for r in rows:
        ts = r["timestamps"]
        ref = ""
        if "reference_timing" in r:
            f, t = r["reference_timing"]["full"], r["reference_timing"]["trim"]
            ref = (f"{fmt(f.get('start_mae_s'))}/{fmt(f.get('end_mae_s'))} | "
                   f"{fmt(t.get('start_mae_s'))}/{fmt(t.get('end_mae_s'))}")
        print(f"{r['set']:<16}{r['model']:<8}{r['utterances']:>4}{r['audio_s']:>7.1f}  {r['wer_full']:>7.3f}"
              f"{r['wer_trim']:>8.3f}{r['wer_diff']:>+7.3f}  {r['decode_s_full']:>7.2f}{r['decode_s_trim']:>7.2f}"
              f"{r['rtf_full']:>8.3f}{r['rtf_trim']:>8.3f}{fmt(r['speedup'], '.1f'):>6}  {r['fallbacks_trim']:>3}  "
              f"{fmt(ts['max_s']):>7}{fmt(ts['p95_s']):>7}{fmt(ts['over_0_1_s'], '.2f'):>6}"
              f"{r['tail_words_trim_only']:>5}  {ref}",
              flush=True)


def code_version() -> dict:
    """The commit and the decoder files measured (they may carry uncommitted edits)."""
    root = Path(__file__).resolve().parent.parent
    files = {name: hashlib.sha256((root / name).read_bytes()).hexdigest()[:16]
             for name in ("models/batched_whisper.py", "models/asr.py")}
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *files], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        head, dirty = "", []
    return {"commit": head, "sha256_16": files, "uncommitted": [f for f in files if f in dirty]}


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    return f"{model}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 FLEURS clips per language, fewer sets; no JSON")
    parser.add_argument("--skip-base-en-after-s", type=float, default=540.0,
                        help="skip base on the English sets when the run has already taken this long")
    args = parser.parse_args()
    began = time.monotonic()
    load_start = os.getloadavg()
    version = code_version()
    print(f"machine: {machine()}; load average {load_start[0]:.2f}; device cpu, threads={THREADS}", flush=True)
    print(f"trimmed window: {TRIM}; code: {version}", flush=True)
    english, spanish = load_sets(args.quick)
    runner = Runner()
    rows: list[dict] = []
    runs: dict[tuple[str, str], tuple[Run, Run]] = {}
    try:
        for s in english:
            row, full, trimmed = compare_windows(runner, s, "tiny.en")
            rows.append(row)
            runs[(s.name, "tiny.en")] = (full, trimmed)
            _line(row)
        for s in spanish:
            row, full, trimmed = compare_windows(runner, s, "base")
            rows.append(row)
            runs[(s.name, "base")] = (full, trimmed)
            _line(row)

        # Spanish beams on trimmed windows (the default), and beam 5 on the full window to tell the two apart
        beam_rows = []
        for s in spanish:
            one = runner.run(s, "base", TRIM, beam=1)
            five = runner.run(s, "base", TRIM, beam=5)
            five_full = runner.run(s, "base", FULL, beam=5)
            one_full = runs[(s.name, "base")][0]
            beam_rows.append({"set": s.name, "audio_s": round(s.audio_s, 2),
                              "wer_beam1": round(wer(s, one), 4), "wer_beam5": round(wer(s, five), 4),
                              "rtf_beam1": round(one.wall_s / s.audio_s, 4),
                              "rtf_beam5": round(five.wall_s / s.audio_s, 4),
                              "fallbacks_beam1": one.fallbacks, "fallbacks_beam5": five.fallbacks,
                              "full_window": {"wer_beam1": round(wer(s, one_full), 4),
                                              "wer_beam5": round(wer(s, five_full), 4),
                                              "rtf_beam1": round(one_full.wall_s / s.audio_s, 4),
                                              "rtf_beam5": round(five_full.wall_s / s.audio_s, 4)}})

        # margin sweep at floor 10 on FLEURS en + es: agreement with the full window
        sweep_sets = [(english[0], "tiny.en"), (spanish[0], "base")]
        sweep = []
        for margin in MARGINS:
            pooled: list[float] = []
            entry: dict = {"margin_s": margin, "floor_s": TRIM.floor_s, "sets": {}}
            for s, model in sweep_sets:
                full, _ = runs[(s.name, model)]
                trimmed = runner.run(s, model, WindowPolicy(margin_s=margin))
                values, nf, nt = gaps(full, trimmed)
                pooled += values
                entry["sets"][s.name] = {**agreement(values, nf, nt), "wer": round(wer(s, trimmed), 4),
                                         "wer_full": round(wer(s, full), 4), "fallbacks": trimmed.fallbacks,
                                         "rtf": round(trimmed.wall_s / s.audio_s, 4)}
            entry["pooled"] = agreement(pooled, 0, 0)
            sweep.append(entry)

        skipped_base_en = None
        if not args.quick:
            if time.monotonic() - began < args.skip_base_en_after_s:
                for s in english:
                    row, _, _ = compare_windows(runner, s, "base")
                    rows.append(row)
                    _line(row)
            else:
                skipped_base_en = f"run already took {time.monotonic() - began:.0f} s"
    finally:
        runner.close()

    print()
    print_table(rows)
    print("x: speed-up of trimming; fb: trimmed windows decoded again on the full window; ts_*: word-timestamp gap "
          "trimmed vs full (s); tail: words after the last word both decodes share, trimmed only")
    print("\nSpanish beams (base; trimmed windows, then the full window for reference):")
    print(f"{'set':<16}{'audio':>7}  {'WER b1':>7}{'WER b5':>7}  {'RTF b1':>7}{'RTF b5':>7}  fb b1/b5  |  full: "
          f"{'WER b1':>7}{'WER b5':>7}  {'RTF b1':>7}{'RTF b5':>7}")
    for b in beam_rows:
        f = b["full_window"]
        print(f"{b['set']:<16}{b['audio_s']:>7.1f}  {b['wer_beam1']:>7.3f}{b['wer_beam5']:>7.3f}  "
              f"{b['rtf_beam1']:>7.3f}{b['rtf_beam5']:>7.3f}  "
              f"{b['fallbacks_beam1']:>2}/{b['fallbacks_beam5']:<2}    |  "
              f"      {f['wer_beam1']:>7.3f}{f['wer_beam5']:>7.3f}  {f['rtf_beam1']:>7.3f}{f['rtf_beam5']:>7.3f}")
    beam_verdict = verdict_beams(beam_rows)
    print(beam_verdict)

    print("\nmargin_s sweep (floor 10 s; timestamp agreement with the full window, FLEURS en tiny.en + es base):")
    print(f"{'margin':>6}  {'set':<10}{'ts_max':>7}{'ts_p95':>7}{'>0.1s':>6}{'WER':>7}{'fb':>4}{'RTF':>7}")
    for e in sweep:
        for name, v in e["sets"].items():
            print(f"{e['margin_s']:>6.0f}  {name:<10}{fmt(v['max_s']):>7}{fmt(v['p95_s']):>7}"
                  f"{fmt(v['over_0_1_s'], '.2f'):>6}{v['wer']:>7.3f}{v['fallbacks']:>4}{v['rtf']:>7.3f}")
        p = e["pooled"]
        print(f"{e['margin_s']:>6.0f}  {'pooled':<10}{fmt(p['max_s']):>7}{fmt(p['p95_s']):>7}"
              f"{fmt(p['over_0_1_s'], '.2f'):>6}")
    best = min(sweep, key=lambda e: (e["pooled"]["p95_s"] if e["pooled"]["p95_s"] is not None else 9.9,
                                     e["pooled"]["over_0_1_s"] or 0.0, e["pooled"]["max_s"] or 0.0, e["margin_s"]))
    margin_verdict = (f"best margin_s: {best['margin_s']:g} (pooled p95 {fmt(best['pooled']['p95_s'])} s, "
                      f"share > 0.1 s {fmt(best['pooled']['over_0_1_s'], '.3f')}, max {fmt(best['pooled']['max_s'])} s;"
                      f" ties go to the smaller p95, then share, then max, then the smaller margin)")
    print(margin_verdict)
    if skipped_base_en:
        print(f"base on the English sets skipped: {skipped_base_en}")

    changed = code_version()["sha256_16"] != version["sha256_16"]
    if changed:
        print("WARNING: models/batched_whisper.py or models/asr.py changed during the run")
    elapsed = time.monotonic() - began
    load_end = os.getloadavg()
    print(f"\ntotal {elapsed:.0f} s; load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    if args.quick:
        return
    result = {
        "machine": machine(), "code": version, "code_changed_during_run": changed, "device": "cpu", "threads": THREADS,
        "mode": "thread pool (batching auto on CPU)",
        "window_trim": asdict(TRIM), "window_full": asdict(FULL),
        "load_average_1m": {"start": round(load_start[0], 2), "end": round(load_end[0], 2)},
        "notes": [
            "decode_s = wall clock for the whole set, all utterances submitted at once to a 2-thread pool; "
            "rtf = decode_s / audio_s",
            "fallbacks_trim = trimmed windows decoded again on the full 30 s window (AsrResult.full_windows)",
            "timestamps: words matched with difflib between full and trimmed decodes; gap = max(|d start|, |d end|)",
            "tail_words_trim_only / _full_only: words after the last word both decodes share (closing phrases "
            "written on an utterance's trailing silence)",
            "harvard-8k and voxpopuli are cut into utterances by VadSegmenter + VadStream (settings defaults)",
            "*-8k sets: 16 kHz -> 8 kHz -> G.711 mu-law -> 16 kHz",
            "voxpopuli and pocketsphinx references spell numbers out: hypotheses' digits are spelled out too",
            "workers serve one language each (no language detection or probe in the timings)",
            "a window that fails its guards on the full window is sampled at rising temperature (unseeded): "
            "such decodes, and so WER, can differ from run to run",
        ],
        "rows": rows, "beams": beam_rows, "beam_verdict": beam_verdict,
        "margin_sweep": sweep, "margin_verdict": margin_verdict, "best_margin_s": best["margin_s"],
        "skipped_base_en": skipped_base_en, "total_s": round(elapsed, 1),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "asr_window_cpu.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                                                 encoding="utf-8")


def _line(row: dict) -> None:
    ts = row["timestamps"]
    print(f"  {row['set']} ({row['model']}): WER {row['wer_full']:.3f} -> {row['wer_trim']:.3f}, "
          f"{row['decode_s_full']:.2f} -> {row['decode_s_trim']:.2f} s, fallbacks {row['fallbacks_trim']}, "
          f"ts p95 {fmt(ts['p95_s'])} max {fmt(ts['max_s'])}", flush=True)


def verdict_beams(rows: list[dict]) -> str:
    audio = sum(b["audio_s"] for b in rows)

    def mean(key: str, full: bool = False) -> float:
        return sum((b["full_window"] if full else b)[key] * b["audio_s"] for b in rows) / audio

    w1, w5, r1, r5 = mean("wer_beam1"), mean("wer_beam5"), mean("rtf_beam1"), mean("rtf_beam5")
    better = [b["set"] for b in rows if b["wer_beam5"] < b["wer_beam1"]]
    worse = [b["set"] for b in rows if b["wer_beam5"] > b["wer_beam1"]]
    return (f"beam 5 vs 1, trimmed windows (audio-weighted): WER {w1:.3f} -> {w5:.3f}, RTF {r1:.3f} -> {r5:.3f} "
            f"({r5 / r1:.1f}x); lower WER on {', '.join(better) or 'none'}, higher on {', '.join(worse) or 'none'}. "
            f"Full window: WER {mean('wer_beam1', True):.3f} -> {mean('wer_beam5', True):.3f}, "
            f"RTF {mean('rtf_beam1', True):.3f} -> {mean('rtf_beam5', True):.3f}")


if __name__ == "__main__":
    main()
