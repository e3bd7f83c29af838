"""Prosodic features on real recordings (../shared/data)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy.stats import spearmanr

from assist.analysis.prosody import extract, pitch_track
from assist.analysis.stress import StressRules, population_scores
from assist.analysis.text import contains_phrase, normalise
from streaming.codecs import load_audio, resample

EMOTION = "../shared/data/pyaudioanalysis-speechemotion/"
HARVARD = "../shared/data/osr-harvard-8k/OSR_us_000_0034_8k.wav"  # one male speaker, 8 kHz telephone band
MEASURED_SPEARMAN = 0.84  # benchmarks/eval_stress.py, 47 clips


def _harvard() -> np.ndarray:
    x, rate = load_audio(HARVARD)
    return resample(x[0], rate, 16_000)


def test_pitch_of_telephone_speech_is_plausible():
    f0, r, _ = pitch_track(_harvard())
    voiced = f0[~np.isnan(f0)]
    assert 0.25 < len(voiced) / len(f0) < 0.8  # read sentences with pauses
    assert 85 < np.median(voiced) < 180  # adult male speaking pitch
    assert np.percentile(voiced, 95) < 300
    assert np.median(r[~np.isnan(f0)]) > 0.7  # voiced frames are strongly periodic


def test_silence_and_noise_are_not_voiced():
    rng = np.random.default_rng(0)
    f0, _, _ = pitch_track(0.05 * rng.standard_normal(16_000).astype(np.float32))
    assert np.mean(~np.isnan(f0)) < 0.1
    feats = extract(np.zeros(16_000, dtype=np.float32))
    assert np.isnan(feats.f0_median_st) and feats.pause_ratio == 1.0


def test_gain_moves_loudness_only():
    x = _harvard()[: 16_000 * 4]
    quiet, loud = extract(x), extract(x * 2.0)
    assert loud.loudness_db - quiet.loudness_db == pytest.approx(6.02, abs=0.1)
    assert loud.f0_median_st == pytest.approx(quiet.f0_median_st, abs=0.05)
    assert loud.alpha_ratio_db == pytest.approx(quiet.alpha_ratio_db, abs=0.05)


def test_arousal_score_orders_the_speech_emotion_set():
    with open(EMOTION + "manifest.tsv", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["arousal"]]
    feats = [extract(load_audio(EMOTION + r["path"])[0][0]).as_dict() for r in rows]
    arousal = np.array([float(r["arousal"]) for r in rows])
    scores = np.array(population_scores(feats, StressRules.load()))
    assert spearmanr(scores, arousal)[0] > MEASURED_SPEARMAN - 0.1
    assert scores[arousal > 0.3].mean() > scores[arousal < -0.3].mean() + 1.0


@pytest.mark.parametrize(
    ("text", "phrase", "found"),
    [
        ("¡Ya no quiero hablar, adiós!", "ya no quiero hablar", True),
        ("No me vuelvas a llamar.", "no me vuelvas a llamar", True),
        ("I'm gonna hang up.", "im gonna hang up", True),
        ("Pagaré mañana", "pague", False),
        ("Cuánto podría pagar", normalise("¿cuánto podría pagar?"), True),
    ],
)
def test_phrase_matching_is_normalised_on_word_boundaries(text, phrase, found):
    assert contains_phrase(normalise(text), phrase) is found
