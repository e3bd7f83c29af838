"""Our own plain protocol: a JSON `start`, binary interleaved PCM16 or mu-law frames, a JSON `stop`.

{"event": "start", "call_id": "c1", "encoding": "pcm16", "sample_rate": 16000,
 "channels": ["agent", "debtor"], "metadata": {...}}
<binary: samples interleaved in `channels` order>...
{"event": "stop"}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast, get_args

import numpy as np

from streaming.codecs import BYTES_PER_SAMPLE, Encoding, decode, encode
from streaming.protocols.base import (
    AdapterOutput,
    CallStart,
    CallStop,
    CloseCode,
    ProtocolAdapter,
    ProtocolError,
)
from streaming.protocols.common import (
    DEFAULT_MAX_MESSAGE_BYTES,
    FRAME_S,
    SpeakerTrack,
    call_audio,
    check_size,
    frames,
    get,
    parse_object,
)
from streaming.types import Speaker

SAMPLE_RATES = (8000, 16000)


class PlainAdapter(ProtocolAdapter):
    """Server side of the plain protocol; the call clock is the count of samples received."""

    name = "plain"

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_message_bytes = max_message_bytes
        self.state = "new"  # new -> streaming -> stopped
        self._encoding: Encoding = "pcm16"
        self._rate = 0
        self._tracks: list[SpeakerTrack] = []
        self._samples = 0

    def feed_text(self, text: str) -> list[AdapterOutput]:
        msg = parse_object(text, self.max_message_bytes)
        event = get(msg, "event", str, "message")
        if event not in ("start", "stop"):
            raise ProtocolError(f"unknown event '{event}'")
        if self.state == "stopped":
            raise ProtocolError(f"'{event}' event after stop")
        if event == "stop":
            if self.state == "new":
                raise ProtocolError("'stop' event before start")
            self.state = "stopped"
            return [CallStop("end")]
        if self.state != "new":
            raise ProtocolError("second 'start' event")
        return [self._start(msg)]

    def _start(self, msg: dict[str, Any]) -> CallStart:
        call_id = get(msg, "call_id", str, "start")
        encoding = get(msg, "encoding", str, "start")
        rate = get(msg, "sample_rate", int, "start")
        channels = get(msg, "channels", list, "start")
        metadata = get(msg, "metadata", dict, "start") if "metadata" in msg else {}
        if encoding not in get_args(Encoding):
            raise ProtocolError(
                f"unsupported encoding {encoding!r}; expected one of {get_args(Encoding)}",
                CloseCode.UNSUPPORTED_MEDIA,
            )
        if rate not in SAMPLE_RATES:
            raise ProtocolError(
                f"unsupported sample_rate {rate}; expected one of {SAMPLE_RATES}", CloseCode.UNSUPPORTED_MEDIA
            )
        speakers = [s.value for s in Speaker]
        if not 0 < len(channels) == len(set(map(str, channels))) or any(c not in speakers for c in channels):
            raise ProtocolError(f"channels must be one or two distinct names from {speakers}")
        self.state = "streaming"
        self._encoding, self._rate = cast(Encoding, encoding), rate
        self._tracks = [SpeakerTrack(Speaker(c), rate) for c in channels]
        return CallStart(call_id, {**metadata, "protocol": self.name})

    def feed_bytes(self, data: bytes) -> list[AdapterOutput]:
        check_size(len(data), self.max_message_bytes)
        if self.state != "streaming":
            raise ProtocolError("audio before start" if self.state == "new" else "audio after stop")
        width = BYTES_PER_SAMPLE[self._encoding] * len(self._tracks)
        if len(data) % width:
            raise ProtocolError(
                f"audio frame of {len(data)} bytes is not a whole number of {width}-byte samples",
                CloseCode.INVALID_PAYLOAD,
            )
        samples = decode(data, self._encoding).reshape(-1, len(self._tracks))
        t = self._samples / self._rate
        self._samples += len(samples)
        return [track.frame(samples[:, i], t) for i, track in enumerate(self._tracks)]


def plain_messages(
    agent: np.ndarray,
    debtor: np.ndarray,
    sample_rate: int,
    *,
    call_id: str,
    encoding: Encoding = "pcm16",
    wire_rate: int = 16000,
    metadata: dict[str, Any] | None = None,
) -> Iterator[tuple[float, str | bytes]]:
    """(send_at seconds, message) for streaming this call: start, 20 ms interleaved frames, stop."""
    audio = call_audio(agent, debtor, sample_rate, wire_rate)
    order = [Speaker.AGENT, Speaker.DEBTOR]
    start = {
        "event": "start",
        "call_id": call_id,
        "encoding": encoding,
        "sample_rate": wire_rate,
        "channels": [s.value for s in order],
        "metadata": metadata or {},
    }
    yield 0.0, json.dumps(start)
    rows = np.stack([frames(audio[s], wire_rate) for s in order], axis=-1)
    for k, frame in enumerate(rows):
        yield (k + 1) * FRAME_S, encode(frame.reshape(-1), encoding)
    yield len(rows) * FRAME_S, json.dumps({"event": "stop"})
