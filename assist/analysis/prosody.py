"""Prosodic features of one utterance (pitch, energy, tilt, voice quality, rate, pauses) and the
per-speaker audio buffer and baseline they are measured against. Pure numpy/scipy.

Pitch is a vectorised YIN on the telephone band (input 16 kHz, analysed at 8 kHz, 75-400 Hz).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

from streaming.types import SAMPLE_RATE, AudioFrame, Word

PITCH_RATE = 8_000
FMIN, FMAX = 75.0, 400.0
HOP_S = 0.01
_PITCH_WIN = 240  # 30 ms integration window at 8 kHz (>= 2 periods of 75 Hz)
_MAX_LAG = int(PITCH_RATE / FMIN)
_MIN_LAG = int(PITCH_RATE / FMAX)
_YIN_THRESHOLD = 0.2
_YIN_ACCEPT = 0.35
_ACTIVE_BELOW_PEAK_DB = 30.0
_SPEC_WIN = 400  # 25 ms at 16 kHz
_BAND_SOS = butter(4, [60.0, 3400.0], btype="bandpass", fs=SAMPLE_RATE, output="sos")
_PITCH_SOS = butter(4, 1000.0, btype="lowpass", fs=PITCH_RATE, output="sos")


@dataclass(frozen=True, slots=True)
class ProsodyFeatures:
    """Functionals of one stretch of speech; NaN where not measurable (too little voicing, no words)."""

    f0_median_st: float  # semitones re 100 Hz
    f0_range_st: float  # 10th-90th percentile span, semitones
    loudness_db: float  # mean frame RMS of active frames, dBFS, 60-3400 Hz
    alpha_ratio_db: float  # energy 1-3.4 kHz over 50 Hz-1 kHz (higher = more vocal effort)
    spectral_flux: float  # mean normalised spectral change between active frames
    hnr_db: float  # harmonics-to-noise ratio from the pitch autocorrelation peak
    jitter: float  # mean relative change of the pitch period between voiced frames
    voiced_ratio: float  # voiced frames / active frames
    pause_ratio: float  # inactive frames / all frames
    speech_rate: float  # words per second of active speech

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__slots__}


def _frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    n = 1 + (len(x) - length) // hop
    return np.lib.stride_tricks.sliding_window_view(x, length)[::hop][:n]


def pitch_track(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YIN over 10 ms hops of 16 kHz audio: (f0 Hz with NaN where unvoiced, periodicity r in 0..1, frame dB)."""
    y = sosfiltfilt(_PITCH_SOS, resample_poly(np.asarray(x, dtype=np.float64), 1, SAMPLE_RATE // PITCH_RATE))
    hop = int(PITCH_RATE * HOP_S)
    fr = _frames(y, _PITCH_WIN + _MAX_LAG, hop)
    head = fr[:, :_PITCH_WIN]
    nfft = 1 << int(np.ceil(np.log2(fr.shape[1] + _PITCH_WIN)))
    xcorr = np.fft.irfft(np.fft.rfft(fr, nfft) * np.conj(np.fft.rfft(head, nfft)), nfft)[:, : _MAX_LAG + 1]
    sq = np.concatenate([np.zeros((len(fr), 1)), np.cumsum(fr**2, axis=1)], axis=1)
    energy_lag = sq[:, _PITCH_WIN : _PITCH_WIN + _MAX_LAG + 1] - sq[:, : _MAX_LAG + 1]
    energy0 = energy_lag[:, :1]
    diff = np.maximum(energy0 + energy_lag - 2 * xcorr, 0.0)
    lags = np.arange(_MAX_LAG + 1)
    cum = np.cumsum(diff[:, 1:], axis=1)
    cmndf = np.ones_like(diff)
    cmndf[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(cum, 1e-12)
    frame_db = 10 * np.log10(energy0[:, 0] / _PITCH_WIN + 1e-12)

    f0 = np.full(len(fr), np.nan)
    r = np.zeros(len(fr))
    search = cmndf[:, _MIN_LAG:_MAX_LAG]
    below = search < _YIN_THRESHOLD
    active = frame_db > frame_db.max() - _ACTIVE_BELOW_PEAK_DB
    for i in np.flatnonzero(active):
        row = search[i]
        if below[i].any():
            k = int(np.argmax(below[i]))
            while k + 1 < len(row) and row[k + 1] < row[k]:
                k += 1
        else:
            k = int(np.argmin(row))
            if row[k] > _YIN_ACCEPT:
                continue
        lag = float(k + _MIN_LAG)
        if 0 < k < len(row) - 1:
            a, b, c = row[k - 1], row[k], row[k + 1]
            denom = a - 2 * b + c
            if denom > 0:
                lag += 0.5 * (a - c) / denom
        f0[i] = PITCH_RATE / lag
        tau = k + _MIN_LAG
        r[i] = np.clip(xcorr[i, tau] / math.sqrt(energy0[i, 0] * energy_lag[i, tau] + 1e-12), 0.0, 0.999)
    return _median_smooth(f0), r, frame_db


def _median_smooth(f0: np.ndarray) -> np.ndarray:
    """5-frame median over voiced frames (removes isolated octave jumps); unvoiced stays NaN."""
    out = f0.copy()
    for i in np.flatnonzero(~np.isnan(f0)):
        window = f0[max(0, i - 2) : i + 3]
        out[i] = np.nanmedian(window)
    return out


def _spectral(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 10 ms frame: band-limited RMS dB and the power spectrum (Hann, 25 ms)."""
    y = sosfiltfilt(_BAND_SOS, np.asarray(x, dtype=np.float64))
    fr = _frames(y, _SPEC_WIN, int(SAMPLE_RATE * HOP_S))
    db = 10 * np.log10(np.mean(fr**2, axis=1) + 1e-12)
    spec = np.abs(np.fft.rfft(fr * np.hanning(_SPEC_WIN), axis=1)) ** 2
    return db, spec


def extract(samples: np.ndarray, words: Sequence[Word] = ()) -> ProsodyFeatures:
    """Features of one utterance's 16 kHz audio; `words` (its ASR word timestamps) give the speech rate."""
    x = np.asarray(samples, dtype=np.float64)
    nan = float("nan")
    if len(x) < _SPEC_WIN * 2 or not np.any(x):
        return ProsodyFeatures(nan, nan, nan, nan, nan, nan, nan, 0.0, 1.0, nan)
    db, spec = _spectral(x)
    active = db > db.max() - _ACTIVE_BELOW_PEAK_DB
    active &= db > -70.0
    pause_ratio = 1.0 - float(active.mean())
    freqs = np.fft.rfftfreq(_SPEC_WIN, 1 / SAMPLE_RATE)
    act_spec = spec[active]
    low = act_spec[:, (freqs >= 50) & (freqs < 1000)].sum()
    high = act_spec[:, (freqs >= 1000) & (freqs < 3400)].sum()
    alpha = 10 * math.log10((high + 1e-12) / (low + 1e-12))
    norm = act_spec / (act_spec.sum(axis=1, keepdims=True) + 1e-12)
    flux = float(np.mean(np.sqrt(np.sum(np.diff(norm, axis=0) ** 2, axis=1)))) if len(norm) > 1 else nan

    f0, r, _ = pitch_track(x)
    voiced = ~np.isnan(f0)
    n_active = max(int(active.sum()), 1)
    if voiced.sum() >= 5:
        st = 12 * np.log2(f0[voiced] / 100.0)
        f0_med, f0_rng = float(np.median(st)), float(np.percentile(st, 90) - np.percentile(st, 10))
        hnr = float(np.median(10 * np.log10(r[voiced] / (1 - r[voiced]) + 1e-12)))
        period = 1 / f0
        rel = np.abs(np.diff(period)) / period[1:]
        jitter = float(np.nanmedian(rel)) if np.isfinite(rel).any() else nan
    else:
        f0_med = f0_rng = hnr = jitter = nan
    active_s = n_active * HOP_S
    rate = len(words) / active_s if words else nan
    return ProsodyFeatures(
        f0_median_st=f0_med,
        f0_range_st=f0_rng,
        loudness_db=float(db[active].mean()),
        alpha_ratio_db=alpha,
        spectral_flux=flux,
        hnr_db=hnr,
        jitter=jitter,
        voiced_ratio=min(1.0, float(voiced.sum()) / n_active),
        pause_ratio=pause_ratio,
        speech_rate=rate,
    )


def loudness_db(samples: np.ndarray) -> float:
    """Mean band-limited RMS dB of the active frames (cheap: no pitch), NaN for silence."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < _SPEC_WIN * 2 or not np.any(x):
        return float("nan")
    fr = _frames(sosfiltfilt(_BAND_SOS, x), _SPEC_WIN, int(SAMPLE_RATE * HOP_S))
    db = 10 * np.log10(np.mean(fr**2, axis=1) + 1e-12)
    return float(db[db > db.max() - _ACTIVE_BELOW_PEAK_DB].mean())


class AudioBuffer:
    """The last `keep_s` seconds of one speaker's frames, sliceable by call-clock time."""

    def __init__(self, keep_s: float = 40.0) -> None:
        self._keep_s = keep_s
        self._frames: deque[AudioFrame] = deque()

    def push(self, frame: AudioFrame) -> None:
        self._frames.append(frame)
        while self._frames and self._frames[0].end < frame.end - self._keep_s:
            self._frames.popleft()

    def slice(self, start: float, end: float) -> np.ndarray:
        """Samples between `start` and `end` (gaps between frames are skipped, not zero-filled)."""
        parts = []
        for f in self._frames:
            if f.end <= start or f.t >= end:
                continue
            a = max(0, round((start - f.t) * SAMPLE_RATE))
            b = min(len(f.samples), round((end - f.t) * SAMPLE_RATE))
            parts.append(f.samples[a:b])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


class Baseline:
    """A speaker's own reference for each feature in this call: learnt over their first `warmup_s`
    seconds of speech, then moved slowly (`drift_per_s` per second of speech). The spread is
    shrunk towards `prior_scale` so a few utterances cannot make z-scores explode."""

    def __init__(self, prior_scale: Mapping[str, float], warmup_s: float, drift_per_s: float) -> None:
        self._prior = dict(prior_scale)
        self._warmup_s = warmup_s
        self._drift = drift_per_s
        self._mean: dict[str, float] = {}
        self._var: dict[str, float] = {}
        self._weight: dict[str, float] = {}
        self.seconds = 0.0

    @property
    def warm(self) -> bool:
        return self.seconds >= self._warmup_s

    def update(self, values: Mapping[str, float], seconds: float) -> None:
        for name in self._prior:
            v = values.get(name, float("nan"))
            if not math.isfinite(v):
                continue
            w0 = self._weight.get(name, 0.0)
            if w0 == 0.0:
                self._mean[name], self._var[name], self._weight[name] = v, 0.0, seconds
                continue
            share = seconds / (w0 + seconds) if self.seconds < self._warmup_s else min(1.0, self._drift * seconds)
            delta = v - self._mean[name]
            self._mean[name] += share * delta
            self._var[name] = (1 - share) * (self._var[name] + share * delta * delta)
            self._weight[name] = w0 + seconds
        self.seconds += seconds

    def z(self, values: Mapping[str, float]) -> dict[str, float]:
        """z-score of each finite feature that has a baseline."""
        out = {}
        for name, prior in self._prior.items():
            v = values.get(name, float("nan"))
            if name not in self._mean or not math.isfinite(v):
                continue
            scale = math.sqrt(0.5 * prior * prior + 0.5 * self._var[name])
            out[name] = (v - self._mean[name]) / max(scale, 0.5 * prior)
        return out


def combine(z: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Weighted mean of the available signed z-scores (weights may be negative), clipped to +-4 each."""
    used = [(weights[k], max(-4.0, min(4.0, v))) for k, v in z.items() if k in weights]
    total = sum(abs(w) for w, _ in used)
    return sum(w * v for w, v in used) / total if total else 0.0
