"""The agreement policy and the VAD segmenter, on real speech."""

from __future__ import annotations

import numpy as np

from assist.democall import DATA, load_mono
from models.vad import VadStream
from streaming.agreement import LocalAgreement, join_words
from streaming.segmenter import VadSegmenter
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker, Word


def words(text: str) -> list[Word]:
    return [Word(w, i * 0.3, i * 0.3 + 0.25) for i, w in enumerate(text.split())]


def test_local_agreement_commits_common_prefix_only():
    la = LocalAgreement()
    assert la.update(words("the cabbage")) == []
    assert join_words(la.update(words("the cabbage juice changes"))) == "the cabbage"
    assert join_words(la.update(words("the cabbage juice changes colour"))) == "juice changes"
    # a hypothesis that rewrites committed words commits nothing and keeps the committed prefix
    assert la.update(words("a garbage juice")) == []
    assert join_words(la.committed) == "the cabbage juice changes"
    assert join_words(la.tail(words("the cabbage juice changes colour depending"))) == "colour depending"


def test_agreement_ignores_case_and_punctuation():
    la = LocalAgreement()
    la.update(words("Hello, there"))
    assert join_words(la.update(words("hello there friend"))) == "hello there"


def _segments(audio: np.ndarray, chunk: int = 320):
    seg = VadSegmenter(VadStream(), min_silence_s=0.5, pad_s=0.2, max_s=15.0)
    out = []
    for i in range(0, len(audio), chunk):
        out += seg.push(AudioFrame(Speaker.DEBTOR, i / SAMPLE_RATE, audio[i : i + chunk]))
    if (last := seg.flush()) is not None:
        out.append(last)
    return out


def test_segmenter_splits_harvard_sentences_at_pauses():
    audio = load_mono(DATA / "osr-harvard-8k" / "OSR_us_000_0034_8k.wav")
    segments = _segments(audio)
    # 10 sentences read with pauses of about a second: one utterance each (a few may merge or split)
    assert 8 <= len(segments) <= 12
    assert all(0.8 < len(s.audio) / SAMPLE_RATE < 6 for s in segments)
    starts = [s.t0 for s in segments]
    assert starts == sorted(starts) and starts[0] < 2.5


def test_segmenter_caps_long_speech_and_finds_nothing_in_silence():
    audio = load_mono(DATA / "voxpopuli-cuttledoc" / next(p.name for p in (DATA / "voxpopuli-cuttledoc").iterdir()
                                                       if p.suffix in (".wav", ".flac", ".ogg")))
    assert all(len(s.audio) / SAMPLE_RATE <= 15.0 + 0.05 for s in _segments(audio))
    assert _segments(np.zeros(SAMPLE_RATE * 10, dtype=np.float32)) == []


def test_segmenter_is_the_same_whatever_the_chunking():
    audio = load_mono(DATA / "faster-whisper-tests" / "jfk.flac")
    a = [(round(s.t0, 3), len(s.audio)) for s in _segments(audio, 160)]
    b = [(round(s.t0, 3), len(s.audio)) for s in _segments(audio, 4000)]
    assert a == b and a

