"""Twilio Media Streams: JSON text messages carrying base64 mu-law 8 kHz, one message per track and 20 ms."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from streaming.codecs import decode, encode
from streaming.protocols.base import (
    AdapterOutput,
    CallStart,
    CallStop,
    CloseCode,
    ProtocolAdapter,
    ProtocolError,
)
from streaming.protocols.common import (
    DEFAULT_MAX_GAP_S,
    DEFAULT_MAX_MESSAGE_BYTES,
    FRAME_S,
    SpeakerTrack,
    call_audio,
    frames,
    get,
    parse_object,
)
from streaming.types import Speaker

WIRE_RATE = 8000
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": WIRE_RATE, "channels": 1}


class TwilioAdapter(ProtocolAdapter):
    """Server side of a `<Start><Stream track="both_tracks">` fork: `start`, `media`..., `stop`.

    Track `inbound` (the caller) is the debtor and `outbound` the agent, unless `inbound_speaker`
    says otherwise (for calls the centre places, where the agent may be the inbound side).
    """

    name = "twilio"

    def __init__(
        self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, inbound_speaker: Speaker = Speaker.DEBTOR,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.max_gap_s = max_gap_s
        self._received: dict[str, float] = {}
        """Seconds of audio received per track: a media timestamp may not run far ahead of it."""
        outbound_speaker = Speaker.AGENT if inbound_speaker == Speaker.DEBTOR else Speaker.DEBTOR
        self._speakers = {"inbound": inbound_speaker, "outbound": outbound_speaker}
        self._tracks: dict[str, SpeakerTrack] = {}
        self._stream_sid: str | None = None
        self._stopped = False

    def feed_bytes(self, data: bytes) -> list[AdapterOutput]:
        raise ProtocolError("Twilio Media Streams sends text messages only", CloseCode.UNSUPPORTED_DATA)

    def feed_text(self, text: str) -> list[AdapterOutput]:
        msg = parse_object(text, self.max_message_bytes)
        event = get(msg, "event", str, "message")
        if self._stopped:
            raise ProtocolError(f"'{event}' event after stop")
        if event == "connected":
            if self._stream_sid is not None:
                raise ProtocolError("'connected' event after start")
            return []
        if event == "start":
            return [self._start(msg)]
        if event not in ("media", "mark", "dtmf", "stop"):
            raise ProtocolError(f"unknown event '{event}'")
        if self._stream_sid is None:
            raise ProtocolError(f"'{event}' event before start")
        if get(msg, "streamSid", str, event) != self._stream_sid:
            raise ProtocolError(f"{event}: streamSid does not match the stream's {self._stream_sid}")
        if event == "media":
            return [self._media(get(msg, "media", dict, "media"))]
        if event == "stop":
            self._stopped = True
            return [CallStop("end")]
        return []  # mark and dtmf carry nothing the pipeline uses

    def _start(self, msg: dict[str, Any]) -> CallStart:
        if self._stream_sid is not None:
            raise ProtocolError("second 'start' event")
        start = get(msg, "start", dict, "start")
        call_sid = get(start, "callSid", str, "start")
        stream_sid = get(start, "streamSid", str, "start")
        tracks = get(start, "tracks", list, "start")
        media_format = get(start, "mediaFormat", dict, "start")
        if media_format != MEDIA_FORMAT:
            raise ProtocolError(
                "unsupported mediaFormat; need audio/x-mulaw, 8000 Hz, 1 channel",
                CloseCode.UNSUPPORTED_MEDIA,
            )
        if not tracks or any(not isinstance(t, str) or t not in self._speakers for t in tracks):
            raise ProtocolError("start: tracks must be 'inbound' and/or 'outbound'")
        self._stream_sid = stream_sid
        self._tracks = {t: SpeakerTrack(self._speakers[t], WIRE_RATE) for t in tracks}
        custom = get(start, "customParameters", dict, "start") if "customParameters" in start else {}
        metadata = {
            **custom,
            "protocol": self.name,
            "stream_sid": stream_sid,
            "account_sid": start.get("accountSid"),
            "tracks": tracks,
        }
        return CallStart(call_sid, metadata)

    def _media(self, media: dict[str, Any]) -> AdapterOutput:
        track_name = get(media, "track", str, "media")
        track = self._tracks.get(track_name)
        if track is None:
            raise ProtocolError(f"media: track '{track_name}' was not announced in start")
        timestamp = get(media, "timestamp", str, "media")
        if not timestamp.isdigit():
            raise ProtocolError(f"media: timestamp must be a string of milliseconds, got {timestamp!r}")
        t = int(timestamp) / 1000
        received = self._received.get(track_name, 0.0)
        if t - received > self.max_gap_s:
            raise ProtocolError(f"media: timestamp {timestamp} ms is more than {self.max_gap_s:g} s ahead of the "
                                f"{received:.2f} s of audio received")
        try:
            payload = base64.b64decode(get(media, "payload", str, "media"), validate=True)
        except binascii.Error as e:
            raise ProtocolError(f"media: payload is not valid base64 ({e})", CloseCode.INVALID_PAYLOAD) from e
        samples = decode(payload, "mulaw")
        self._received[track_name] = received + len(samples) / WIRE_RATE
        return track.frame(samples, t)


def twilio_messages(
    agent: np.ndarray,
    debtor: np.ndarray,
    sample_rate: int,
    *,
    call_sid: str | None = None,
    custom_parameters: dict[str, str] | None = None,
    account_sid: str | None = None,
) -> Iterator[tuple[float, str]]:
    """What Twilio sends for a both_tracks fork of this call: (send_at seconds, text message)."""
    call_sid = call_sid or "CA" + uuid.uuid4().hex
    stream_sid = "MZ" + uuid.uuid4().hex
    account_sid = account_sid or "AC" + uuid.uuid4().hex
    audio = call_audio(agent, debtor, sample_rate, WIRE_RATE)
    by_track = {
        "inbound": frames(audio[Speaker.DEBTOR], WIRE_RATE),
        "outbound": frames(audio[Speaker.AGENT], WIRE_RATE),
    }
    seq = itertools.count(1)

    def message(event: str, **body: Any) -> str:
        return json.dumps({"event": event, "sequenceNumber": str(next(seq)), "streamSid": stream_sid, **body})

    yield 0.0, json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    yield (
        0.0,
        message(
            "start",
            start={
                "accountSid": account_sid,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": list(by_track),
                "customParameters": custom_parameters or {},
                "mediaFormat": MEDIA_FORMAT,
            },
        ),
    )
    n_frames = len(by_track["inbound"])
    for k in range(n_frames):
        for track, rows in by_track.items():
            payload = base64.b64encode(encode(rows[k], "mulaw")).decode("ascii")
            media = {
                "track": track,
                "chunk": str(k + 1),
                "timestamp": str(round(k * FRAME_S * 1000)),
                "payload": payload,
            }
            yield (k + 1) * FRAME_S, message("media", media=media)
    yield n_frames * FRAME_S, message("stop", stop={"accountSid": account_sid, "callSid": call_sid})
