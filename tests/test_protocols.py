"""Protocol adapters driven by vendor-shaped messages and by our client encoders on a real recording."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest

from streaming.codecs import encode, float_to_pcm16, load_audio, mulaw_encode
from streaming.protocols.base import (
    AdapterOutput,
    CallStart,
    CallStop,
    CloseCode,
    ProtocolAdapter,
    ProtocolError,
    Reply,
)
from streaming.protocols.genesys import NULL_UUID, GenesysAdapter, GenesysClient
from streaming.protocols.plain import PlainAdapter, plain_messages
from streaming.protocols.registry import make_adapter
from streaming.protocols.twilio import TwilioAdapter, twilio_messages
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker

RECORDING = "../shared/data/faster-whisper-tests/stereo_diarization.wav"
DELAY_8K = 20  # samples at 16 kHz: the 8 -> 16 kHz resampler's group delay


@pytest.fixture(scope="module")
def call() -> tuple[np.ndarray, np.ndarray]:
    """(agent, debtor) at 16 kHz: the recording's left and right channels, different speakers."""
    audio, rate = load_audio(RECORDING)
    assert rate == SAMPLE_RATE
    return audio[0], audio[1]


def feed(adapter: ProtocolAdapter, messages: Iterable[str | bytes | dict[str, Any]]) -> list[AdapterOutput]:
    out: list[AdapterOutput] = []
    for m in messages:
        if isinstance(m, bytes):
            out += adapter.feed_bytes(m)
        else:
            out += adapter.feed_text(m if isinstance(m, str) else json.dumps(m))
    return out


def track(outputs: list[AdapterOutput], speaker: Speaker) -> np.ndarray:
    """One speaker's frames joined, after checking they tile the call clock from t=0 without gaps."""
    frames = [o for o in outputs if isinstance(o, AudioFrame) and o.speaker == speaker]
    assert frames[0].t == 0
    for a, b in itertools.pairwise(frames):
        assert b.t == pytest.approx(a.end, abs=1e-9)
    return np.concatenate([f.samples for f in frames])


def similarity(decoded: np.ndarray, original: np.ndarray, lag: int) -> float:
    """Correlation of decoded[lag:] with the original's start."""
    n = min(len(decoded) - lag, len(original))
    return float(np.corrcoef(decoded[lag : lag + n], original[:n])[0, 1])


def expect_error(adapter: ProtocolAdapter, messages: list[Any], code: int, reason: str) -> None:
    *setup, bad = messages
    feed(adapter, setup)
    with pytest.raises(ProtocolError) as err:
        feed(adapter, [bad])
    assert err.value.close_code == code
    assert reason in err.value.reason
    assert len(err.value.reason.encode()) <= 123  # fits a websocket close frame


# --- Twilio Media Streams ------------------------------------------------------------------------

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
TWILIO_START = {
    "event": "start",
    "sequenceNumber": "1",
    "streamSid": SID,
    "start": {
        "accountSid": "AC123",
        "streamSid": SID,
        "callSid": "CA123",
        "tracks": ["inbound", "outbound"],
        "customParameters": {"FirstName": "Jane", "campaign": "late-30"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
}
TWILIO_CONNECTED = {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def twilio_media(
    track: str, timestamp: str, payload: bytes = b"\xff" * 160, seq: str = "3"
) -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": seq,
        "streamSid": SID,
        "media": {
            "track": track,
            "chunk": "1",
            "timestamp": timestamp,
            "payload": base64.b64encode(payload).decode(),
        },
    }


def test_twilio_documented_messages() -> None:
    tone = mulaw_encode((8000 * np.sin(np.arange(160) / 3)).astype(np.int16))
    out = feed(
        TwilioAdapter(),
        [
            TWILIO_CONNECTED,
            TWILIO_START,
            twilio_media("inbound", "5", tone),
            twilio_media("outbound", "5", seq="4"),
            {
                "event": "dtmf",
                "sequenceNumber": "5",
                "streamSid": SID,
                "dtmf": {"track": "inbound_track", "digit": "1"},
            },
            {"event": "mark", "sequenceNumber": "6", "streamSid": SID, "mark": {"name": "label"}},
            {
                "event": "stop",
                "sequenceNumber": "7",
                "streamSid": SID,
                "stop": {"accountSid": "AC123", "callSid": "CA123"},
            },
        ],
    )
    start, debtor, agent, stop = out
    assert start == CallStart(
        "CA123",
        {
            "FirstName": "Jane",
            "campaign": "late-30",
            "protocol": "twilio",
            "stream_sid": SID,
            "account_sid": "AC123",
            "tracks": ["inbound", "outbound"],
        },
    )
    assert (debtor.speaker, debtor.t, len(debtor.samples)) == (Speaker.DEBTOR, 0.005, 320)
    assert (agent.speaker, agent.t, len(agent.samples)) == (Speaker.AGENT, 0.005, 320)
    assert np.abs(debtor.samples).max() > 0.1 and not agent.samples.any()
    assert stop == CallStop("end")


def test_twilio_round_trip(call: tuple[np.ndarray, np.ndarray]) -> None:
    agent, debtor = call
    messages = list(
        twilio_messages(agent, debtor, SAMPLE_RATE, call_sid="CAabc", custom_parameters={"k": "v"})
    )
    times = [t for t, _ in messages]
    assert times == sorted(times) and times[-1] == pytest.approx(len(agent) / SAMPLE_RATE)
    out = feed(TwilioAdapter(), [m for _, m in messages])
    assert out[0] == CallStart(
        "CAabc",
        {
            "k": "v",
            "protocol": "twilio",
            "stream_sid": json.loads(messages[1][1])["streamSid"],
            "account_sid": json.loads(messages[1][1])["start"]["accountSid"],
            "tracks": ["inbound", "outbound"],
        },
    )
    assert out[-1] == CallStop("end")
    frames = [o for o in out if isinstance(o, AudioFrame)]
    assert [f.t for f in frames[:4]] == [0.0, 0.0, 0.02, 0.02]
    got_agent, got_debtor = track(out, Speaker.AGENT), track(out, Speaker.DEBTOR)
    assert len(got_agent) == len(got_debtor) == len(agent)
    assert similarity(got_agent, agent, DELAY_8K) > 0.98
    assert similarity(got_debtor, debtor, DELAY_8K) > 0.98
    assert abs(similarity(got_agent, debtor, DELAY_8K)) < 0.2  # tracks not swapped or mixed


def test_twilio_inbound_speaker_can_be_the_agent() -> None:
    out = feed(TwilioAdapter(inbound_speaker=Speaker.AGENT), [TWILIO_START, twilio_media("inbound", "0")])
    assert out[1].speaker == Speaker.AGENT


def with_start(**changes: Any) -> dict[str, Any]:
    return {**TWILIO_START, "start": {**TWILIO_START["start"], **changes}}


@pytest.mark.parametrize(
    ("messages", "code", "reason"),
    [
        (["{not json"], CloseCode.INVALID_PAYLOAD, "malformed JSON"),
        (["[1, 2]"], CloseCode.BAD_MESSAGE, "expected a JSON object, got list"),
        ([{"event": "hangup"}], CloseCode.BAD_MESSAGE, "unknown event 'hangup'"),
        ([{"sequenceNumber": "1"}], CloseCode.BAD_MESSAGE, "field 'event' must be str, got missing"),
        ([twilio_media("inbound", "0")], CloseCode.BAD_MESSAGE, "'media' event before start"),
        ([with_start(callSid=None)], CloseCode.BAD_MESSAGE, "start: field 'callSid' must be str"),
        (
            [with_start(mediaFormat={"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1})],
            CloseCode.UNSUPPORTED_MEDIA,
            "unsupported mediaFormat",
        ),
        ([with_start(tracks=["both"])], CloseCode.BAD_MESSAGE, "tracks must be 'inbound' and/or 'outbound'"),
        ([TWILIO_START, TWILIO_START], CloseCode.BAD_MESSAGE, "second 'start'"),
        (
            [with_start(tracks=["inbound"]), twilio_media("outbound", "0")],
            CloseCode.BAD_MESSAGE,
            "track 'outbound' was not announced",
        ),
        (
            [TWILIO_START, {**twilio_media("inbound", "0"), "streamSid": "MZother"}],
            CloseCode.BAD_MESSAGE,
            "streamSid does not match",
        ),
        (
            [
                TWILIO_START,
                {
                    **twilio_media("inbound", "0"),
                    "media": {"track": "inbound", "timestamp": "0", "payload": "@@@"},
                },
            ],
            CloseCode.INVALID_PAYLOAD,
            "payload is not valid base64",
        ),
        (
            [TWILIO_START, twilio_media("inbound", "1.5")],
            CloseCode.BAD_MESSAGE,
            "timestamp must be a string of milliseconds",
        ),
        (
            [TWILIO_START, {"event": "stop", "streamSid": SID}, twilio_media("inbound", "0")],
            CloseCode.BAD_MESSAGE,
            "'media' event after stop",
        ),
        ([TWILIO_START, b"\x00" * 160], CloseCode.UNSUPPORTED_DATA, "text messages only"),
    ],
)
def test_twilio_bad_input(messages: list[Any], code: int, reason: str) -> None:
    expect_error(TwilioAdapter(), messages, code, reason)


def test_twilio_oversized_message() -> None:
    expect_error(
        TwilioAdapter(max_message_bytes=1000),
        [TWILIO_START, twilio_media("inbound", "0", b"\xff" * 800)],
        CloseCode.TOO_BIG,
        "exceeds the 1000-byte limit",
    )


# --- Genesys AudioHook v2 ------------------------------------------------------------------------

SESSION = "e160e428-53e2-487c-977d-96989bf5c99d"
CONVERSATION = "090eaa2f-72fa-480a-83e0-8667ff89c0ec"
STEREO = {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}
HEADERS = {
    "Audiohook-Organization-Id": "d7934305-0972-4844-938e-9060eef73d05",
    "Audiohook-Session-Id": SESSION,
    "Audiohook-Correlation-Id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
    "X-API-KEY": "secret-key",
}


class Session:
    """Builds client messages with consecutive seq numbers, like Genesys does."""

    def __init__(self) -> None:
        self.seq = 0

    def __call__(
        self, type_: str, parameters: dict[str, Any], serverseq: int = 0, position: str = "PT0S"
    ) -> dict[str, Any]:
        self.seq += 1
        return {
            "version": "2",
            "id": SESSION,
            "type": type_,
            "seq": self.seq,
            "serverseq": serverseq,
            "position": position,
            "parameters": parameters,
        }


def open_params(
    media: list[dict[str, Any]] | None = None, conversation: str = CONVERSATION
) -> dict[str, Any]:
    return {
        "organizationId": "d7934305-0972-4844-938e-9060eef73d05",
        "conversationId": conversation,
        "participant": {
            "id": "883efee8-3d6c-4537-b500-6d7ca4b92fa0",
            "ani": "+1-555-555-1234",
            "aniName": "John Doe",
            "dnis": "+1-800-555-6789",
        },
        "media": media
        if media is not None
        else [STEREO, {**STEREO, "channels": ["external"]}, {**STEREO, "channels": ["internal"]}],
        "language": "en-US",
        "customConfig": {"team": "collections-es"},
    }


def reply(out: AdapterOutput) -> dict[str, Any]:
    assert isinstance(out, Reply)
    return json.loads(out.text)


def test_genesys_documented_session() -> None:
    msg = Session()
    adapter = GenesysAdapter(headers=HEADERS)
    opened, start = adapter.feed_text(json.dumps(msg("open", open_params())))
    assert reply(opened) == {
        "version": "2",
        "id": SESSION,
        "type": "opened",
        "seq": 1,
        "clientseq": 1,
        "parameters": {"media": [STEREO], "startPaused": False},
    }
    assert isinstance(start, CallStart) and start.call_id == CONVERSATION
    assert start.metadata["ani"] == "+1-555-555-1234" and start.metadata["dnis"] == "+1-800-555-6789"
    assert start.metadata["language"] == "en-US" and start.metadata["custom_config"] == {
        "team": "collections-es"
    }
    assert start.metadata["headers"]["audiohook-correlation-id"] == HEADERS["Audiohook-Correlation-Id"]
    assert "secret-key" not in json.dumps(start.metadata)

    (pong,) = feed(adapter, [msg("ping", {"rtt": "PT0.05S"}, serverseq=1)])
    assert (reply(pong)["type"], reply(pong)["seq"], reply(pong)["clientseq"]) == ("pong", 2, 2)

    # 20 ms of stereo PCMU: external (debtor) loud, internal (agent) silent, interleaved.
    loud = mulaw_encode(np.full(160, 16000, dtype=np.int16))
    stereo = bytes(b for pair in zip(loud, b"\xff" * 160, strict=True) for b in pair)
    debtor, agent = adapter.feed_bytes(stereo)
    assert (debtor.speaker, agent.speaker, debtor.t, agent.t) == (Speaker.DEBTOR, Speaker.AGENT, 0.0, 0.0)
    assert (
        debtor.samples[DELAY_8K:].mean() == pytest.approx(16000 / 32768, rel=0.05) and not agent.samples.any()
    )

    (updated,) = feed(adapter, [msg("update", {"language": "es-US"}, serverseq=2, position="PT0.02S")])
    assert reply(updated)["type"] == "updated" and adapter.language == "es-US"
    assert (
        feed(
            adapter,
            [
                msg("paused", {}, serverseq=3, position="PT0.02S"),
                msg("resumed", {"start": "PT0.02S", "discarded": "PT2S"}, serverseq=3, position="PT0.02S"),
            ],
        )
        == []
    )
    assert adapter.feed_bytes(stereo)[0].t == pytest.approx(2.02)
    assert (
        feed(
            adapter,
            [msg("discarded", {"start": "PT2.04S", "discarded": "PT1.5S"}, serverseq=3, position="PT0.04S")],
        )
        == []
    )
    assert adapter.feed_bytes(stereo)[0].t == pytest.approx(3.54)

    closed, stop = feed(adapter, [msg("close", {"reason": "end"}, serverseq=3, position="PT0.06S")])
    assert reply(closed) == {
        "version": "2",
        "id": SESSION,
        "type": "closed",
        "seq": 4,
        "clientseq": 7,
        "parameters": {},
    }
    assert stop == CallStop("end")


@pytest.mark.parametrize(
    ("offer", "chosen"),
    [
        ([{**STEREO, "channels": ["internal"]}, {**STEREO, "format": "L16"}, STEREO], STEREO),
        (
            [{**STEREO, "format": "L16", "channels": ["external"]}, {**STEREO, "channels": ["external"]}],
            {**STEREO, "channels": ["external"]},
        ),
        (
            [
                {"type": "audio", "format": "opus", "channels": ["external"], "rate": 48000},
                {**STEREO, "format": "L16"},
            ],
            {**STEREO, "format": "L16"},
        ),
    ],
)
def test_genesys_media_choice(offer: list[dict[str, Any]], chosen: dict[str, Any]) -> None:
    opened, _ = GenesysAdapter().feed_text(json.dumps(Session()("open", open_params(offer))))
    assert reply(opened)["parameters"]["media"] == [chosen]


def test_genesys_mono_and_l16_audio() -> None:
    adapter = GenesysAdapter()
    adapter.feed_text(
        json.dumps(Session()("open", open_params([{**STEREO, "format": "L16", "channels": ["internal"]}])))
    )
    (frame,) = adapter.feed_bytes(np.full(160, 8192, dtype="<i2").tobytes())
    assert frame.speaker == Speaker.AGENT and frame.samples[DELAY_8K:].mean() == pytest.approx(0.25, rel=1e-3)


def test_genesys_connection_probe_closes_cleanly() -> None:
    msg = Session()
    adapter = GenesysAdapter()
    out = feed(adapter, [msg("open", open_params(conversation=NULL_UUID))])
    assert [reply(o)["type"] for o in out] == ["opened"]
    out = feed(adapter, [msg("close", {"reason": "end"}, serverseq=1)])
    assert [reply(o)["type"] for o in out] == ["closed"]


def test_genesys_disconnect_message() -> None:
    adapter = GenesysAdapter()
    adapter.feed_text(json.dumps(Session()("open", open_params())))
    assert reply(adapter.disconnect("error", "seq out of order")) == {
        "version": "2",
        "id": SESSION,
        "type": "disconnect",
        "seq": 2,
        "clientseq": 1,
        "parameters": {"reason": "error", "info": "seq out of order"},
    }


def test_genesys_round_trip(call: tuple[np.ndarray, np.ndarray]) -> None:
    agent, debtor = call
    client = GenesysClient(agent, debtor, SAMPLE_RATE, language="es-US", ping_interval_s=1.0)
    adapter = GenesysAdapter(headers=client.headers)
    out = adapter.feed_text(client.open_message())
    for o in out:
        if isinstance(o, Reply):
            client.receive(o.text)
    assert client.opened == STEREO
    outputs = list(out)
    pings = 0
    for _, m in client.audio_messages():
        got = adapter.feed_bytes(m) if isinstance(m, bytes) else adapter.feed_text(m)
        for o in got:
            if isinstance(o, Reply):
                pings += client.receive(o.text) == "pong"
        outputs += got
    assert pings == 5 and client.closed
    start = outputs[1]
    assert isinstance(start, CallStart) and start.call_id == client.conversation_id
    assert start.metadata["language"] == "es-US" and start.metadata["session_id"] == client.session_id
    assert outputs[-1] == CallStop("end")
    got_agent, got_debtor = track(outputs, Speaker.AGENT), track(outputs, Speaker.DEBTOR)
    assert len(got_agent) == len(got_debtor) == len(agent)
    assert similarity(got_agent, agent, DELAY_8K) > 0.98
    assert similarity(got_debtor, debtor, DELAY_8K) > 0.98
    assert abs(similarity(got_debtor, agent, DELAY_8K)) < 0.2


def genesys_case(*steps: Any) -> list[Any]:
    """Messages for a bad-input case; dict steps become numbered client messages."""
    msg = Session()
    return [msg(*s) if isinstance(s, tuple) else s for s in steps]


OPEN = ("open", open_params())


@pytest.mark.parametrize(
    ("messages", "code", "reason"),
    [
        (genesys_case(b"\xff" * 320), CloseCode.BAD_MESSAGE, "audio received while the session is new"),
        (
            genesys_case(
                (
                    "open",
                    open_params(
                        [{"type": "audio", "format": "opus", "channels": ["external"], "rate": 48000}]
                    ),
                )
            ),
            CloseCode.UNSUPPORTED_MEDIA,
            "no supported media offered",
        ),
        (
            genesys_case(("open", open_params([{**STEREO, "rate": 16000}]))),
            CloseCode.UNSUPPORTED_MEDIA,
            "no supported media offered",
        ),
        (
            genesys_case(OPEN, {**Session()("ping", {}), "seq": 3}),
            CloseCode.BAD_MESSAGE,
            "ping: seq 3 out of order; expected 2",
        ),
        (
            genesys_case(OPEN, {**Session()("ping", {}), "seq": 2, "serverseq": 5}),
            CloseCode.BAD_MESSAGE,
            "serverseq 5 is ahead",
        ),
        (
            genesys_case(OPEN, {**Session()("ping", {}), "seq": 2, "id": CONVERSATION}),
            CloseCode.BAD_MESSAGE,
            "does not match",
        ),
        (
            genesys_case({**Session()("open", open_params()), "version": "1"}),
            CloseCode.BAD_MESSAGE,
            "unsupported AudioHook version",
        ),
        (
            genesys_case({**Session()("open", open_params()), "parameters": None}),
            CloseCode.BAD_MESSAGE,
            "open: field 'parameters'",
        ),
        (
            genesys_case(("open", {**open_params(), "conversationId": 7})),
            CloseCode.BAD_MESSAGE,
            "field 'conversationId' must be str",
        ),
        (genesys_case(("opened", {})), CloseCode.BAD_MESSAGE, "unknown message type 'opened'"),
        (
            genesys_case(("ping", {}), ("update", {"language": "es"})),
            CloseCode.BAD_MESSAGE,
            "'update' message before open",
        ),
        (genesys_case(OPEN, ("open", open_params())), CloseCode.BAD_MESSAGE, "second 'open'"),
        (
            genesys_case(OPEN, b"\xff" * 321),
            CloseCode.INVALID_PAYLOAD,
            "not a whole number of 2-byte samples",
        ),
        (
            genesys_case(OPEN, ("paused", {}), b"\xff" * 320),
            CloseCode.BAD_MESSAGE,
            "audio received while the session is paused",
        ),
        (
            genesys_case(OPEN, ("resumed", {"start": "PT0S", "discarded": "2 seconds"})),
            CloseCode.BAD_MESSAGE,
            "invalid ISO-8601 duration",
        ),
        (
            genesys_case(OPEN, ("close", {"reason": "end"}), ("ping", {})),
            CloseCode.BAD_MESSAGE,
            "'ping' message after close",
        ),
        (
            genesys_case(OPEN, ("close", {"reason": "end"}), b"\xff" * 320),
            CloseCode.BAD_MESSAGE,
            "session is closed",
        ),
        (genesys_case("{'type': 'open'}"), CloseCode.INVALID_PAYLOAD, "malformed JSON"),
        (genesys_case('"open"'), CloseCode.BAD_MESSAGE, "expected a JSON object, got str"),
        (
            genesys_case(OPEN, json.dumps(Session()("ping", {"pad": "x" * 70_000}))),
            CloseCode.TOO_BIG,
            "exceeds the 65535-byte limit",
        ),
    ],
)
def test_genesys_bad_input(messages: list[Any], code: int, reason: str) -> None:
    expect_error(GenesysAdapter(), messages, code, reason)


def test_genesys_close_after_error_reports_it() -> None:
    msg = Session()
    out = feed(
        GenesysAdapter(),
        [
            msg(*OPEN),
            msg("error", {"code": 500, "message": "Internal client error"}),
            msg("close", {"reason": "error"}),
        ],
    )
    assert out[-1] == CallStop("error: 500 Internal client error")


# --- Plain protocol ------------------------------------------------------------------------------

PLAIN_START = {
    "event": "start",
    "call_id": "call-42",
    "encoding": "pcm16",
    "sample_rate": 16000,
    "channels": ["agent", "debtor"],
    "metadata": {"campaign": "late-30"},
}


def test_plain_pcm16_16k_is_lossless(call: tuple[np.ndarray, np.ndarray]) -> None:
    agent, debtor = call
    out = feed(
        PlainAdapter(),
        [m for _, m in plain_messages(agent, debtor, SAMPLE_RATE, call_id="call-42", metadata={"a": 1})],
    )
    assert out[0] == CallStart("call-42", {"a": 1, "protocol": "plain"}) and out[-1] == CallStop("end")
    np.testing.assert_allclose(track(out, Speaker.AGENT), agent, atol=1 / 32768)
    np.testing.assert_allclose(track(out, Speaker.DEBTOR), debtor, atol=1 / 32768)


def test_plain_mulaw_8k_round_trip(call: tuple[np.ndarray, np.ndarray]) -> None:
    agent, debtor = call
    messages = list(plain_messages(agent, debtor, SAMPLE_RATE, call_id="c", encoding="mulaw", wire_rate=8000))
    assert all(len(m) == 320 for _, m in messages[1:-1])  # 20 ms, 2 channels, 1 byte per sample
    out = feed(PlainAdapter(), [m for _, m in messages])
    assert similarity(track(out, Speaker.AGENT), agent, DELAY_8K) > 0.98
    assert similarity(track(out, Speaker.DEBTOR), debtor, DELAY_8K) > 0.98


def test_plain_mono_channel() -> None:
    adapter = PlainAdapter()
    adapter.feed_text(json.dumps({**PLAIN_START, "channels": ["debtor"]}))
    (a,) = adapter.feed_bytes(float_to_pcm16(np.full(320, 0.5)))
    (b,) = adapter.feed_bytes(encode(np.zeros(160), "pcm16"))
    assert (a.speaker, a.t, len(a.samples), b.t) == (Speaker.DEBTOR, 0.0, 320, 0.02)


@pytest.mark.parametrize(
    ("messages", "code", "reason"),
    [
        ([b"\x00" * 640], CloseCode.BAD_MESSAGE, "audio before start"),
        (["{"], CloseCode.INVALID_PAYLOAD, "malformed JSON"),
        (["null"], CloseCode.BAD_MESSAGE, "expected a JSON object, got NoneType"),
        ([{"event": "media"}], CloseCode.BAD_MESSAGE, "unknown event 'media'"),
        ([{"event": "stop"}], CloseCode.BAD_MESSAGE, "'stop' event before start"),
        ([{**PLAIN_START, "encoding": "opus"}], CloseCode.UNSUPPORTED_MEDIA, "unsupported encoding 'opus'"),
        (
            [{**PLAIN_START, "sample_rate": 44100}],
            CloseCode.UNSUPPORTED_MEDIA,
            "unsupported sample_rate 44100",
        ),
        (
            [{**PLAIN_START, "sample_rate": "16000"}],
            CloseCode.BAD_MESSAGE,
            "field 'sample_rate' must be int, got str",
        ),
        (
            [{**PLAIN_START, "channels": ["agent", "customer"]}],
            CloseCode.BAD_MESSAGE,
            "channels must be one or two distinct names",
        ),
        (
            [{**PLAIN_START, "channels": ["agent", "agent"]}],
            CloseCode.BAD_MESSAGE,
            "channels must be one or two distinct names",
        ),
        (
            [{**PLAIN_START, "call_id": None}],
            CloseCode.BAD_MESSAGE,
            "start: field 'call_id' must be str, got missing",
        ),
        ([PLAIN_START, PLAIN_START], CloseCode.BAD_MESSAGE, "second 'start'"),
        (
            [PLAIN_START, b"\x00" * 642],
            CloseCode.INVALID_PAYLOAD,
            "642 bytes is not a whole number of 4-byte samples",
        ),
        ([PLAIN_START, {"event": "stop"}, b"\x00" * 640], CloseCode.BAD_MESSAGE, "audio after stop"),
        (
            [PLAIN_START, {"event": "stop"}, {"event": "stop"}],
            CloseCode.BAD_MESSAGE,
            "'stop' event after stop",
        ),
        ([PLAIN_START, b"\x00" * 4096], CloseCode.TOO_BIG, "4096 bytes exceeds the 2048-byte limit"),
    ],
)
def test_plain_bad_input(messages: list[Any], code: int, reason: str) -> None:
    expect_error(PlainAdapter(max_message_bytes=2048), messages, code, reason)


def test_registry() -> None:
    assert isinstance(make_adapter("twilio"), TwilioAdapter)
    assert isinstance(make_adapter("plain", max_message_bytes=10), PlainAdapter)
    genesys = make_adapter("genesys", headers=HEADERS)
    assert isinstance(genesys, GenesysAdapter) and genesys.session_id == SESSION
    with pytest.raises(ValueError, match="unknown protocol 'vonage'"):
        make_adapter("vonage")
