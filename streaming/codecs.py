"""Audio codecs: G.711 mu-law, 16-bit PCM, streaming and one-shot resampling, file loading."""

from __future__ import annotations

from math import gcd
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
from scipy.signal import firwin, resample_poly

Encoding = Literal["mulaw", "pcm16"]
BYTES_PER_SAMPLE: dict[Encoding, int] = {"mulaw": 1, "pcm16": 2}

_MULAW_BIAS = 0x84
_MULAW_CLIP = 32635


def _mulaw_table() -> np.ndarray:
    """The 256 G.711 mu-law codes decoded to int16 (codes are stored bit-inverted)."""
    code = ~np.arange(256, dtype=np.uint8)
    exponent = (code >> 4) & 0x07
    mantissa = (code & 0x0F).astype(np.int32)
    magnitude = (((mantissa << 3) + _MULAW_BIAS) << exponent) - _MULAW_BIAS
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


MULAW_TABLE = _mulaw_table()


def mulaw_decode(data: bytes) -> np.ndarray:
    """mu-law bytes -> int16 samples."""
    return MULAW_TABLE[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(samples: np.ndarray) -> bytes:
    """int16 samples -> mu-law bytes (G.711 segment encoding, 0 -> 0xFF)."""
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), _MULAW_CLIP) + _MULAW_BIAS
    exponent = np.frexp(magnitude)[1] - 8  # floor(log2(magnitude)) - 7, in 0..7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def int16_to_float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


def float_to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian 16-bit PCM bytes -> float32 in [-1, 1)."""
    return int16_to_float(np.frombuffer(data, dtype="<i2"))


def float_to_pcm16(x: np.ndarray) -> bytes:
    """float32 in [-1, 1] -> little-endian 16-bit PCM bytes (clipped)."""
    return float_to_int16(x).astype("<i2").tobytes()


def decode(data: bytes, encoding: Encoding) -> np.ndarray:
    """Wire bytes -> float32 samples (still interleaved if the wire carries several channels)."""
    return int16_to_float(mulaw_decode(data)) if encoding == "mulaw" else pcm16_to_float(data)


def encode(x: np.ndarray, encoding: Encoding) -> bytes:
    """float32 samples -> wire bytes."""
    return mulaw_encode(float_to_int16(x)) if encoding == "mulaw" else float_to_pcm16(x)


class Resampler:
    """Streaming polyphase FIR resampler: chunked `process` calls give the same output as one call.

    The filter is scipy's `resample_poly` design (Kaiser-windowed sinc, beta 5) run causally, so the
    output lags the input by `delay` seconds (1.25 ms for 8 kHz -> 16 kHz; 0 for equal rates, which
    pass through unchanged). n input samples in total yield ceil(n * dst / src) output samples.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        g = gcd(src_rate, dst_rate)
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self.up, self.down = dst_rate // g, src_rate // g
        if self.up == self.down:  # equal rates: an identity filter
            half_len, h = 0, np.ones(1)
        else:
            half_len = 10 * max(self.up, self.down)
            h = firwin(2 * half_len + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0)) * self.up
        self.taps = -(-len(h) // self.up)
        h = np.pad(h, (0, self.taps * self.up - len(h)))
        # bank[phase, j] weighs input sample floor(n*down/up) - j for output n with n*down % up == phase.
        self.bank = h.reshape(self.taps, self.up).T.astype(np.float32)
        self.delay = half_len / (self.up * src_rate)
        self._history = np.zeros(self.taps - 1, dtype=np.float32)
        self._n_in = 0
        self._n_out = 0

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Resample the next run of mono float32 samples."""
        buf = np.concatenate([self._history, np.asarray(chunk, dtype=np.float32)])
        start = self._n_in - len(self._history)  # stream index of buf[0]
        self._n_in += len(chunk)
        end_out = -(-self._n_in * self.up // self.down)
        n = np.arange(self._n_out, end_out, dtype=np.int64)
        self._n_out = end_out
        newest = n * self.down // self.up - start
        idx = newest[:, None] - np.arange(self.taps)[None, :]
        out = np.einsum("ij,ij->i", self.bank[n * self.down % self.up], buf[idx])
        self._history = buf[len(buf) - (self.taps - 1) :]
        return out.astype(np.float32)


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """One-shot zero-delay resampling of a whole signal (last axis) for files."""
    if src_rate == dst_rate:
        return np.asarray(x, dtype=np.float32)
    g = gcd(src_rate, dst_rate)
    return resample_poly(x, dst_rate // g, src_rate // g, axis=-1).astype(np.float32)


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV/FLAC/OGG file as float32 [channels, n] and its sample rate."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), int(rate)
