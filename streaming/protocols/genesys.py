"""Genesys Cloud AudioHook v2: JSON control messages with seq numbers, binary PCMU/L16 8 kHz audio."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from streaming.codecs import BYTES_PER_SAMPLE, Encoding, decode, encode
from streaming.protocols.base import (
    AdapterOutput,
    CallStart,
    CallStop,
    CloseCode,
    ProtocolAdapter,
    ProtocolError,
    Reply,
)
from streaming.protocols.common import (
    DEFAULT_MAX_GAP_S,
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

WIRE_RATE = 8000
MAX_TEXT_BYTES = 65535
"""The reference server rejects text messages over 64 KB."""
NULL_UUID = "00000000-0000-0000-0000-000000000000"
"""conversationId of the connection probe Genesys sends when an integration is saved."""
FORMATS: dict[str, Encoding] = {"PCMU": "mulaw", "L16": "pcm16"}  # L16 samples are little-endian
SPEAKERS = {"external": Speaker.DEBTOR, "internal": Speaker.AGENT}
CLIENT_TYPES = {"open", "close", "ping", "update", "paused", "resumed", "discarded", "error"}

_DURATION = re.compile(r"PT(?=\d)(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?")


def parse_duration(text: str) -> float:
    """An ISO-8601 time duration ("PT1.5S", "PT2M3S") in seconds, or ProtocolError 4400."""
    m = _DURATION.fullmatch(text)
    if m is None:
        raise ProtocolError(f"invalid ISO-8601 duration {text!r}")
    h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mins * 60 + s


def iso_duration(seconds: float) -> str:
    """Seconds as AudioHook writes them ("PT0S", "PT12.34S")."""
    return "PT" + f"{seconds:.3f}".rstrip("0").rstrip(".") + "S"


def select_media(offered: list[Any]) -> dict[str, Any] | None:
    """The offer to accept: stereo before mono, PCMU before L16, else the first offered; None if none fits."""
    usable = [
        m
        for m in offered
        if isinstance(m, dict)
        and m.get("type") == "audio"
        and isinstance(m.get("format"), str)
        and m["format"] in FORMATS
        and m.get("rate") == WIRE_RATE
        and isinstance(m.get("channels"), list)
        and all(isinstance(c, str) and c in SPEAKERS for c in m["channels"])
        and 0 < len(m["channels"]) == len(set(m["channels"]))
    ]
    return min(usable, key=lambda m: (-len(m["channels"]), m["format"] != "PCMU"), default=None)


class GenesysAdapter(ProtocolAdapter):
    """Server side of an AudioHook session: `open` -> `opened`, audio, `ping` -> `pong`, `close` -> `closed`.

    `external` (the customer) is the debtor and `internal` the agent. The call clock is the count of
    audio samples received plus the gaps reported by `discarded` and `resumed`.
    `headers` are the HTTP upgrade request's headers; the Audiohook-* ones go into the call metadata.
    """

    name = "genesys"

    def __init__(
        self, headers: Mapping[str, str] | None = None, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.max_gap_s = max_gap_s
        self.headers = {
            k.lower(): v for k, v in (headers or {}).items() if k.lower().startswith("audiohook-")
        }
        self.session_id: str | None = self.headers.get("audiohook-session-id")
        self.state = "new"  # new -> active <-> paused -> closed
        self.language: str | None = None
        self.probe = False
        self._seq = 0
        self._clientseq = 0
        self._encoding: Encoding = "mulaw"
        self._tracks: list[SpeakerTrack] = []
        self._samples = 0
        self._gap = 0.0
        self._last_error = ""

    @property
    def clock(self) -> float:
        """Call time of the next audio sample, in seconds."""
        return self._samples / WIRE_RATE + self._gap

    def reply(self, type_: str, parameters: dict[str, Any]) -> Reply:
        """A server message with the next seq and the last client seq seen."""
        self._seq += 1
        msg = {
            "version": "2",
            "id": self.session_id,
            "type": type_,
            "seq": self._seq,
            "clientseq": self._clientseq,
            "parameters": parameters,
        }
        return Reply(json.dumps(msg))

    def disconnect(self, reason: str, info: str = "") -> Reply:
        """The `disconnect` to send before closing the socket: reason completed | unauthorized | error."""
        return self.reply("disconnect", {"reason": reason, "info": info} if info else {"reason": reason})

    def feed_bytes(self, data: bytes) -> list[AdapterOutput]:
        check_size(len(data), self.max_message_bytes)
        if self.state != "active":
            raise ProtocolError(
                f"audio received while the session is {self.state} (not opened and streaming)"
            )
        width = BYTES_PER_SAMPLE[self._encoding] * len(self._tracks)
        if len(data) % width:
            raise ProtocolError(
                f"audio frame of {len(data)} bytes is not a whole number of {width}-byte samples",
                CloseCode.INVALID_PAYLOAD,
            )
        samples = decode(data, self._encoding).reshape(-1, len(self._tracks))
        t = self.clock
        self._samples += len(samples)
        if self.probe:
            return []
        return [track.frame(samples[:, i], t) for i, track in enumerate(self._tracks)]

    def feed_text(self, text: str) -> list[AdapterOutput]:
        check_size(len(text.encode("utf-8", "surrogatepass")), min(MAX_TEXT_BYTES, self.max_message_bytes))
        msg = parse_object(text, self.max_message_bytes)
        type_ = self._check_envelope(msg)
        params = msg["parameters"]
        if self.state == "closed":
            raise ProtocolError(f"'{type_}' message after close")
        if type_ == "open":
            return self._open(params)
        if type_ == "close":
            return self._close(params)
        if type_ == "ping":
            return [self.reply("pong", {})]
        if type_ == "error":
            self._last_error = f"{params.get('code')} {params.get('message', '')}".strip()
            return []
        if self.state == "new":
            raise ProtocolError(f"'{type_}' message before open")
        if type_ == "update":
            self.language = get(params, "language", str, "update")
            return [self.reply("updated", {})]
        if type_ == "paused":
            self.state = "paused"
        elif type_ == "resumed":
            self._add_gap(parse_duration(get(params, "discarded", str, "resumed")), type_)
            self.state = "active"
        else:  # discarded
            self._add_gap(parse_duration(get(params, "discarded", str, "discarded")), type_)
        return []

    def _add_gap(self, seconds: float, where: str) -> None:
        """Audio the client reports it discarded; more than max_gap_s in all is refused (4400)."""
        if self._gap + seconds > self.max_gap_s:
            raise ProtocolError(f"{where}: discarded audio would total more than {self.max_gap_s:g} s")
        self._gap += seconds

    def _check_envelope(self, msg: dict[str, Any]) -> str:
        if msg.get("version") != "2":
            raise ProtocolError(f"unsupported AudioHook version {msg.get('version')!r}; expected '2'")
        type_ = get(msg, "type", str, "message")
        if type_ not in CLIENT_TYPES:
            raise ProtocolError(f"unknown message type '{type_}'")
        session_id = get(msg, "id", str, type_)
        seq = get(msg, "seq", int, type_)
        serverseq = get(msg, "serverseq", int, type_)
        position = parse_duration(get(msg, "position", str, type_))
        if position > self.clock + self.max_gap_s:
            raise ProtocolError(f"{type_}: position {position:g} s is more than {self.max_gap_s:g} s ahead of the "
                                f"{self.clock:.2f} s of audio received")
        get(msg, "parameters", dict, type_)
        if seq != self._clientseq + 1:
            raise ProtocolError(f"{type_}: seq {seq} out of order; expected {self._clientseq + 1}")
        if serverseq > self._seq:
            raise ProtocolError(f"{type_}: serverseq {serverseq} is ahead of the last server seq {self._seq}")
        if self.session_id is None:
            self.session_id = session_id
        elif session_id != self.session_id:
            raise ProtocolError(f"{type_}: session id {session_id} does not match {self.session_id}")
        self._clientseq = seq
        return type_

    def _open(self, params: dict[str, Any]) -> list[AdapterOutput]:
        if self.state != "new":
            raise ProtocolError("second 'open' message")
        conversation_id = get(params, "conversationId", str, "open")
        participant = get(params, "participant", dict, "open")
        offered = get(params, "media", list, "open")
        media = select_media(offered)
        if media is None:
            raise ProtocolError(
                "open: no supported media offered (need PCMU or L16, 8000 Hz, channels external/internal)",
                CloseCode.UNSUPPORTED_MEDIA,
            )
        self.state = "active"
        self.language = params.get("language")
        self.probe = conversation_id == NULL_UUID
        self._encoding = FORMATS[media["format"]]
        self._tracks = [SpeakerTrack(SPEAKERS[c], WIRE_RATE) for c in media["channels"]]
        opened = self.reply("opened", {"media": [media], "startPaused": False})
        if self.probe:
            return [opened]
        metadata = {
            "protocol": self.name,
            "session_id": self.session_id,
            "organization_id": params.get("organizationId"),
            "ani": participant.get("ani"),
            "ani_name": participant.get("aniName"),
            "dnis": participant.get("dnis"),
            "language": self.language,
            "custom_config": params.get("customConfig") or {},
            "media": media,
            "headers": self.headers,
        }
        return [opened, CallStart(conversation_id, metadata)]

    def _close(self, params: dict[str, Any]) -> list[AdapterOutput]:
        started = self.state != "new" and not self.probe
        self.state = "closed"
        reason = get(params, "reason", str, "close")
        if reason == "error" and self._last_error:
            reason = f"error: {self._last_error}"
        closed = self.reply("closed", {})
        return [closed, CallStop(reason)] if started else [closed]


OFFERED_MEDIA = [
    {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": WIRE_RATE},
    {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": WIRE_RATE},
    {"type": "audio", "format": "PCMU", "channels": ["internal"], "rate": WIRE_RATE},
]


class GenesysClient:
    """What Genesys Cloud sends for this call, I/O-free.

    Connect with `headers`, send `open_message()`, pass every server text message to `receive()`,
    and once `opened` is set send `audio_messages()` (20 ms binary frames, pings, then `close`).
    """

    def __init__(
        self,
        agent: np.ndarray,
        debtor: np.ndarray,
        sample_rate: int,
        *,
        conversation_id: str | None = None,
        organization_id: str | None = None,
        api_key: str = "recobra-replay",
        language: str = "en-US",
        custom_config: dict[str, Any] | None = None,
        media: list[dict[str, Any]] | None = None,
        ping_interval_s: float | None = 5.0,
    ) -> None:
        self.session_id = str(uuid.uuid4())
        self.conversation_id = conversation_id or str(uuid.uuid4())
        self.organization_id = organization_id or str(uuid.uuid4())
        self.headers = {
            "Audiohook-Organization-Id": self.organization_id,
            "Audiohook-Session-Id": self.session_id,
            "Audiohook-Correlation-Id": str(uuid.uuid4()),
            "X-API-KEY": api_key,
        }
        self.language = language
        self.custom_config = custom_config or {}
        self.media = media or OFFERED_MEDIA
        self.ping_interval_s = ping_interval_s
        self.opened: dict[str, Any] | None = None
        """The selected media once the server's `opened` arrived."""
        self.closed = False
        self._audio = call_audio(agent, debtor, sample_rate, WIRE_RATE)
        self._seq = 0
        self._serverseq = 0
        self._position = 0.0

    def message(self, type_: str, parameters: dict[str, Any]) -> str:
        """A client message with the next seq, the last server seq seen and the audio position."""
        self._seq += 1
        return json.dumps(
            {
                "version": "2",
                "id": self.session_id,
                "type": type_,
                "seq": self._seq,
                "serverseq": self._serverseq,
                "position": iso_duration(self._position),
                "parameters": parameters,
            }
        )

    def open_message(self) -> str:
        return self.message(
            "open",
            {
                "organizationId": self.organization_id,
                "conversationId": self.conversation_id,
                "participant": {
                    "id": str(uuid.uuid4()),
                    "ani": "+15550100",
                    "aniName": "Replay Caller",
                    "dnis": "+18005550199",
                },
                "media": self.media,
                "language": self.language,
                "customConfig": self.custom_config,
            },
        )

    def receive(self, text: str) -> str:
        """Note a server message (its seq; the selected media of `opened`) and return its type."""
        msg = json.loads(text)
        self._serverseq = msg["seq"]
        if msg["type"] == "opened":
            self.opened = msg["parameters"]["media"][0]
        elif msg["type"] == "closed":
            self.closed = True
        return msg["type"]

    def audio_messages(self) -> Iterator[tuple[float, str | bytes]]:
        """(send_at seconds after `opened`, message): binary audio every 20 ms, pings, then `close`."""
        if self.opened is None:
            raise RuntimeError("audio_messages() before the server's 'opened'")
        encoding = FORMATS[self.opened["format"]]
        rows = np.stack(
            [frames(self._audio[SPEAKERS[c]], WIRE_RATE) for c in self.opened["channels"]], axis=-1
        )
        ping_every = round(self.ping_interval_s / FRAME_S) if self.ping_interval_s else 0
        for k, frame in enumerate(rows):
            send_at = (k + 1) * FRAME_S
            self._position = send_at
            yield send_at, encode(frame.reshape(-1), encoding)
            if ping_every and (k + 1) % ping_every == 0:
                yield send_at, self.message("ping", {})
        yield len(rows) * FRAME_S, self.message("close", {"reason": "end"})
