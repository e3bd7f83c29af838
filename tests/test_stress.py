"""StressAnalyser against the speaker's own baseline, on a real recording and a real transform of it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.signal import resample_poly

from assist.analysis.base import CallContext
from assist.analysis.stress import StressAnalyser
from assist.events import StressLevel
from streaming.codecs import load_audio, resample
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker, Utterance

HARVARD = "../shared/data/osr-harvard-8k/OSR_us_000_0034_8k.wav"  # one speaker, 10 sentences, 35.6 s
BASELINE_S = 21.0
UTT_S = 3.5


def _speech() -> np.ndarray:
    x, rate = load_audio(HARVARD)
    return resample(x[0], rate, SAMPLE_RATE).astype(np.float32)


def _raised(x: np.ndarray) -> np.ndarray:
    """+3 semitones (resampled: pitch and tempo up by 2^(3/12)) and +6 dB."""
    return (resample_poly(x, 84, 100) * 2.0).astype(np.float32)


def _replay(analyser: StressAnalyser, x: np.ndarray, speaker: Speaker = Speaker.DEBTOR) -> list[StressLevel]:
    """Feed `x` as 3.5 s utterances of `speaker`; return the events."""
    events, step = [], int(UTT_S * SAMPLE_RATE)
    for seq, i in enumerate(range(0, len(x) - SAMPLE_RATE, step)):
        t, chunk = i / SAMPLE_RATE, x[i : i + step]
        analyser.on_audio(AudioFrame(speaker, t, chunk))
        events += analyser.on_utterance(Utterance(speaker, seq, t, t + len(chunk) / SAMPLE_RATE, "..."))
    return events


def test_raised_voice_scores_above_the_same_speakers_calm_speech():
    x = _speech()
    cut = int(BASELINE_S * SAMPLE_RATE)
    calm = _replay(StressAnalyser(CallContext("calm")), x)
    raised = _replay(StressAnalyser(CallContext("raised")), np.concatenate([x[:cut], _raised(x[cut:])]))
    calm_tail = [e.level for e in calm if e.t > BASELINE_S + 0.1]
    raised_tail = [e.level for e in raised if e.t > BASELINE_S + 0.1]
    assert np.mean(calm_tail) < 40
    assert np.mean(raised_tail) > np.mean(calm_tail) + 15
    assert raised[-1].trend > 0 and raised[-1].features["z_f0_median_st"] > 1.0


def test_analyser_exposes_debtor_level_and_waits_for_a_baseline():
    analyser = StressAnalyser(CallContext("c"))
    assert analyser.level is None and analyser.trend == 0.0
    events = _replay(analyser, _speech()[: 8 * SAMPLE_RATE])
    assert len(events) == 1  # the first 3.5 s only build the baseline
    assert analyser.level == pytest.approx(events[-1].level, abs=0.05)


def test_eu_mode_never_scores_the_agent():
    rules = StressAnalyser(CallContext("c")).rules
    both = replace(rules, speakers=(Speaker.DEBTOR, Speaker.AGENT))
    x = _speech()[: 12 * SAMPLE_RATE]
    assert _replay(StressAnalyser(CallContext("us"), both), x, Speaker.AGENT)
    assert _replay(StressAnalyser(CallContext("eu", eu_mode=True), both), x, Speaker.AGENT) == []
    assert _replay(StressAnalyser(CallContext("eu", eu_mode=True), both), x, Speaker.DEBTOR)
