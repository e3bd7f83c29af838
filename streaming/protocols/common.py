"""Helpers shared by the protocol adapters and client encoders: message checks, speaker tracks, framing."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from streaming.codecs import Resampler, resample
from streaming.protocols.base import CloseCode, ProtocolError
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker

T = TypeVar("T")

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
DEFAULT_MAX_GAP_S = 3600.0
"""How far a peer's media clock (timestamps, reported gaps) may run ahead of the audio it sent."""
FRAME_S = 0.02
"""Clients send 20 ms of audio per media message, like the telephony vendors do."""
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ProtocolError(f"message of {size} bytes exceeds the {max_bytes}-byte limit", CloseCode.TOO_BIG)


def parse_object(text: str, max_bytes: int) -> dict[str, Any]:
    """A text message as a JSON object, or ProtocolError (too big 1009, not JSON 1007, not an object 4400).

    JSON that Python cannot hold (nesting too deep, huge numbers) or that escapes a lone UTF-16
    surrogate is invalid payload too.
    """
    check_size(len(text.encode("utf-8", "surrogatepass")), max_bytes)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProtocolError(f"malformed JSON: {e.msg} at position {e.pos}", CloseCode.INVALID_PAYLOAD) from e
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"unreadable JSON: {type(e).__name__}", CloseCode.INVALID_PAYLOAD) from e
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            raise ProtocolError("JSON escapes a lone UTF-16 surrogate", CloseCode.INVALID_PAYLOAD) from e
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def get(obj: Mapping[str, Any], key: str, kind: type[T], where: str) -> T:
    """obj[key] checked to be a `kind` (bools are not ints), or ProtocolError 4400 naming the field."""
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        got = "missing" if value is None else type(value).__name__
        raise ProtocolError(f"{where}: field '{key}' must be {kind.__name__}, got {got}")
    return value


class SpeakerTrack:
    """One speaker's wire audio on its way to 16 kHz frames (one resampler per track)."""

    def __init__(self, speaker: Speaker, rate: int) -> None:
        self.speaker = speaker
        self.resampler = Resampler(rate, SAMPLE_RATE)

    def frame(self, samples: np.ndarray, t: float) -> AudioFrame:
        """A frame of `samples` (float32 at the wire rate) starting at call time `t`, within [-1, 1]
        (resampling full-scale audio rings slightly past it)."""
        return AudioFrame(self.speaker, t, np.clip(self.resampler.process(samples), -1.0, 1.0))


def call_audio(
    agent: np.ndarray, debtor: np.ndarray, sample_rate: int, wire_rate: int
) -> dict[Speaker, np.ndarray]:
    """Both sides resampled to `wire_rate`, zero-padded to the same whole number of 20 ms frames."""
    sides = {
        Speaker.AGENT: resample(agent, sample_rate, wire_rate),
        Speaker.DEBTOR: resample(debtor, sample_rate, wire_rate),
    }
    step = round(FRAME_S * wire_rate)
    n = -(-max(len(x) for x in sides.values()) // step) * step
    return {s: np.pad(x, (0, n - len(x))) for s, x in sides.items()}


def frames(x: np.ndarray, wire_rate: int) -> np.ndarray:
    """x (a whole number of frames long, see `call_audio`) as rows of 20 ms."""
    return x.reshape(-1, round(FRAME_S * wire_rate))
