"""G.711 mu-law, PCM16 and the streaming resampler against references written from first principles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from streaming.codecs import (
    Resampler,
    float_to_pcm16,
    load_audio,
    mulaw_decode,
    mulaw_encode,
    pcm16_to_float,
    resample,
)

DATA = "../shared/data/faster-whisper-tests"


def g711_decode(code: int) -> int:
    """ITU-T G.711 mu-law expansion: (2*step + 33) * 2^segment - 33 in 14-bit units, scaled to 16 bits."""
    inverted = code ^ 0xFF
    segment, step = (inverted >> 4) & 0x07, inverted & 0x0F
    magnitude = ((2 * step + 33) * 2**segment - 33) * 4
    return -magnitude if inverted & 0x80 else magnitude


def g711_encode(sample: int) -> int:
    """G.711 mu-law compression by segment search over biased 16-bit magnitudes."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 132
    segment = next(s for s in range(8) if magnitude < 256 << s)
    step = (magnitude >> (segment + 3)) & 0x0F
    return (sign | segment << 4 | step) ^ 0xFF


def test_mulaw_decode_reference_values() -> None:
    assert mulaw_decode(bytes([0xFF, 0x7F, 0x00, 0x80])).tolist() == [0, 0, -32124, 32124]
    assert mulaw_decode(bytes(range(256))).tolist() == [g711_decode(c) for c in range(256)]


def test_mulaw_encode_matches_reference_for_every_int16() -> None:
    samples = np.arange(-32768, 32768, dtype=np.int16)
    expected = bytes(g711_encode(int(s)) for s in samples)
    assert mulaw_encode(samples) == expected


def test_mulaw_round_trip_of_every_code() -> None:
    codes = [c for c in range(256) if c != 0x7F]  # 0x7F is negative zero; zero encodes as 0xFF
    assert mulaw_encode(mulaw_decode(bytes(codes))) == bytes(codes)
    assert mulaw_encode(mulaw_decode(b"\x7f")) == b"\xff"


def test_pcm16_is_little_endian_and_clips() -> None:
    assert (
        float_to_pcm16(np.array([0.5, -1.0, 2.0, -2.0], dtype=np.float32))
        == b"\x00\x40\x00\x80\xff\x7f\x00\x80"
    )
    x = np.random.default_rng(1).uniform(-1, 1, 1000).astype(np.float32)
    np.testing.assert_allclose(pcm16_to_float(float_to_pcm16(x)), x, atol=1 / 32768)


RATES = [(8000, 16000), (16000, 16000), (24000, 16000), (44100, 16000), (48000, 16000)]


@pytest.mark.parametrize(("src", "dst"), RATES)
def test_resampler_chunked_equals_one_shot(src: int, dst: int) -> None:
    x = np.random.default_rng(0).standard_normal(src).astype(np.float32)
    whole = Resampler(src, dst).process(x)
    r = Resampler(src, dst)
    chunked = np.concatenate([r.process(c) for c in np.split(x, len(x) // (src // 50))])
    uneven = Resampler(src, dst)
    ragged = np.concatenate([uneven.process(c) for c in np.array_split(x, [7, 100, 101, 3000, 3333])])
    assert len(whole) == -(-len(x) * dst // src)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    np.testing.assert_allclose(ragged, whole, atol=1e-6)


@pytest.mark.parametrize(("src", "dst"), RATES)
def test_resampler_is_resample_poly_delayed(src: int, dst: int) -> None:
    x = np.random.default_rng(2).standard_normal(src // 2).astype(np.float32)
    r = Resampler(src, dst)
    lag = round(r.delay * dst)
    assert r.delay * dst == pytest.approx(lag)
    reference = resample_poly(x, r.up, r.down)
    np.testing.assert_allclose(r.process(x)[lag:], reference[: len(reference) - lag], atol=1e-5)


def tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate).astype(np.float32)


def spectrum(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate), mag


@pytest.mark.parametrize("src", [8000, 24000, 44100, 48000])
def test_tone_keeps_its_frequency(src: int) -> None:
    r = Resampler(src, 16000)
    y = np.concatenate([r.process(c) for c in np.array_split(tone(1000, src), 50)])
    freqs, mag = spectrum(y[len(y) // 10 :], 16000)
    assert abs(freqs[np.argmax(mag)] - 1000) < 2
    assert np.sqrt(np.mean(y[len(y) // 10 :] ** 2)) == pytest.approx(np.sqrt(0.5), rel=0.02)


def test_downsampling_rejects_aliases() -> None:
    # 11 kHz is above the 8 kHz Nyquist of 16 kHz and would alias to 5 kHz if not filtered.
    y = Resampler(48000, 16000).process(tone(11000, 48000))
    assert np.sqrt(np.mean(y[100:] ** 2)) < 0.01 * np.sqrt(0.5)


def test_upsampling_rejects_images() -> None:
    # A 1 kHz tone at 8 kHz zero-stuffed to 16 kHz has an image at 7 kHz.
    freqs, mag = spectrum(Resampler(8000, 16000).process(tone(1000, 8000)), 16000)
    image = mag[np.abs(freqs - 7000) < 50].max()
    assert image < 0.001 * mag.max()


def test_one_shot_resample_and_load_audio() -> None:
    audio, rate = load_audio(f"{DATA}/jfk.flac")
    assert (audio.shape[0], rate, audio.dtype) == (2, 44100, np.float32)
    y = resample(audio, rate, 16000)
    assert y.shape == (2, -(-audio.shape[1] * 160 // 441))
    stereo, rate = load_audio(f"{DATA}/stereo_diarization.wav")
    assert (stereo.shape, rate) == ((2, 80000), 16000)
    np.testing.assert_array_equal(resample(stereo, 16000, 16000), stereo)
