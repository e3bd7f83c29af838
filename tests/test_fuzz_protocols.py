"""Property-based fuzzing (hypothesis) of every protocol parser, the plain audio path and the auth parsers.

Whatever arrives, an adapter either returns outputs or raises ProtocolError with a known close code
and a reason that fits a close frame; valid audio, however it is chunked, comes out unchanged.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assist.auth import AuthError, verify_token
from streaming.codecs import decode, encode
from streaming.protocols.base import AdapterOutput, CallStart, CloseCode, ProtocolError
from streaming.protocols.genesys import OFFERED_MEDIA, GenesysAdapter, parse_duration
from streaming.protocols.plain import PlainAdapter
from streaming.protocols.signatures import SignatureError, verify_audiohook_signature
from streaming.protocols.twilio import MEDIA_FORMAT, TwilioAdapter
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker

CODES = {CloseCode.UNSUPPORTED_DATA, CloseCode.INVALID_PAYLOAD, CloseCode.POLICY_VIOLATION, CloseCode.TOO_BIG,
         CloseCode.BAD_MESSAGE, CloseCode.UNSUPPORTED_MEDIA}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)

SID = "MZ" + "0" * 32
TWILIO = [
    {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    {"event": "start", "sequenceNumber": "1", "streamSid": SID,
     "start": {"accountSid": "AC1", "streamSid": SID, "callSid": "CA1", "tracks": ["inbound", "outbound"],
               "customParameters": {"language": "en"}, "mediaFormat": MEDIA_FORMAT}},
    {"event": "media", "sequenceNumber": "2", "streamSid": SID,
     "media": {"track": "inbound", "chunk": "1", "timestamp": "0",
               "payload": base64.b64encode(b"\xff" * 160).decode()}},
    {"event": "mark", "sequenceNumber": "3", "streamSid": SID, "mark": {"name": "m"}},
    {"event": "stop", "sequenceNumber": "4", "streamSid": SID, "stop": {"accountSid": "AC1", "callSid": "CA1"}},
]
GENESYS_ID = "e160e428-53e2-487c-977d-96989bf5c99d"


def genesys_message(type_: str, seq: int, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"version": "2", "id": GENESYS_ID, "type": type_, "seq": seq, "serverseq": 0, "position": "PT0S",
            "parameters": parameters}


GENESYS = [
    genesys_message("open", 1, {"organizationId": "o", "conversationId": "c", "participant": {"id": "p"},
                                "media": OFFERED_MEDIA, "language": "en-US"}),
    genesys_message("ping", 2, {}),
    genesys_message("paused", 3, {}),
    genesys_message("resumed", 4, {"start": "PT1S", "discarded": "PT0.5S"}),
    genesys_message("close", 5, {"reason": "end"}),
]
PLAIN = [
    {"event": "start", "call_id": "c1", "encoding": "pcm16", "sample_rate": 16000, "channels": ["agent", "debtor"],
     "metadata": {"language": "en"}},
    {"event": "stop"},
]


def adapters() -> st.SearchStrategy:
    return st.sampled_from([TwilioAdapter, GenesysAdapter, PlainAdapter])


def mutate(message: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """The message with one field (at any depth) removed, retyped or added."""
    out = json.loads(json.dumps(message))
    target = out
    while True:
        keys = list(target)
        key = data.draw(st.sampled_from(keys)) if keys else data.draw(st.text(max_size=8))
        if isinstance(target.get(key), dict) and target[key] and data.draw(st.booleans()):
            target = target[key]
            continue
        action = data.draw(st.sampled_from(["drop", "replace", "add"]))
        if action == "drop":
            target.pop(key, None)
        elif action == "replace":
            target[key] = data.draw(json_values)
        else:
            target[data.draw(st.text(max_size=8))] = data.draw(json_values)
        return out


def run(adapter, messages: list[str | bytes]) -> list[AdapterOutput]:
    """Feed messages until the adapter refuses one; the refusal must be a clean ProtocolError."""
    out: list[AdapterOutput] = []
    for m in messages:
        try:
            out += adapter.feed_bytes(m) if isinstance(m, bytes) else adapter.feed_text(m)
        except ProtocolError as e:
            assert e.close_code in CODES, e.close_code
            assert e.reason and len(e.reason.encode()) <= 123, e.reason
            break
    for o in out:
        if isinstance(o, AudioFrame):
            assert o.samples.dtype == np.float32 and np.all(np.abs(o.samples) <= 1.0)
    return out


@FUZZ
@given(adapters(), st.lists(st.text(max_size=200) | st.binary(max_size=400), max_size=8))
def test_arbitrary_messages_are_refused_cleanly(cls, messages):
    run(cls(max_message_bytes=256), messages)


@FUZZ
@given(st.data())
def test_mutated_vendor_messages_are_refused_cleanly(data):
    cls, script = data.draw(st.sampled_from([(TwilioAdapter, TWILIO), (GenesysAdapter, GENESYS),
                                             (PlainAdapter, PLAIN)]))
    at = data.draw(st.integers(0, len(script) - 1))
    messages: list[str | bytes] = [json.dumps(m) for m in script]
    messages[at] = json.dumps(mutate(script[at], data))
    extra = data.draw(st.lists(st.binary(max_size=64), max_size=3))
    run(cls(), messages[: at + 1] + list(extra) + messages[at + 1 :])


@FUZZ
@given(st.data())
def test_binary_audio_of_any_length_is_framed_or_refused(data):
    genesys = GenesysAdapter()
    genesys.feed_text(json.dumps(GENESYS[0]))
    plain = PlainAdapter()
    plain.feed_text(json.dumps(PLAIN[0]))
    for adapter in (genesys, plain):
        chunks = data.draw(st.lists(st.binary(max_size=700), min_size=1, max_size=6))
        run(adapter, list(chunks))


@FUZZ
@given(
    st.lists(st.integers(-32768, 32767), min_size=2, max_size=4000).map(lambda xs: xs[: len(xs) // 2 * 2]),
    st.lists(st.integers(1, 400), min_size=1, max_size=40),
)
def test_plain_pcm16_audio_comes_out_unchanged_however_it_is_chunked(samples, cuts):
    """Interleaved 16 kHz PCM16 in any whole-sample chunking -> the same samples, contiguous in time."""
    pcm = np.array(samples, dtype="<i2")
    adapter = PlainAdapter()
    out = adapter.feed_text(json.dumps(PLAIN[0]))
    assert isinstance(out[0], CallStart)
    data, i = pcm.tobytes(), 0
    for cut in cuts:
        if i >= len(data):
            break
        out += adapter.feed_bytes(data[i : i + cut * 4])  # whole stereo samples of 4 bytes
        i += cut * 4
    if i < len(data):
        out += adapter.feed_bytes(data[i:])
    for channel, speaker in enumerate((Speaker.AGENT, Speaker.DEBTOR)):
        frames = [o for o in out if isinstance(o, AudioFrame) and o.speaker == speaker]
        joined = np.concatenate([f.samples for f in frames])
        np.testing.assert_array_equal(joined, pcm[channel::2].astype(np.float32) / 32768)
        ends = [f.t for f in frames[1:]]
        assert ends == pytest.approx([f.end for f in frames[:-1]], abs=1e-9) and frames[0].t == 0.0
    assert frames[-1].end == pytest.approx(len(pcm) // 2 / SAMPLE_RATE, abs=1e-9)


@FUZZ
@given(st.binary(max_size=2000))
def test_mulaw_decodes_any_bytes_and_round_trips(data):
    x = decode(data, "mulaw")
    assert len(x) == len(data) and np.all(np.abs(x) <= 1.0)
    np.testing.assert_array_equal(decode(encode(x, "mulaw"), "mulaw"), x)


@FUZZ
@given(st.text(max_size=40))
def test_iso_durations_parse_or_are_refused(text):
    try:
        assert parse_duration(text) >= 0
    except ProtocolError as e:
        assert e.close_code == CloseCode.BAD_MESSAGE


@FUZZ
@given(st.text(max_size=300))
def test_tokens_of_any_shape_are_refused_cleanly(text):
    try:
        verify_token("fuzz-secret-0123456789abcdef0123456789", text)
        raise AssertionError("an unsigned string verified")
    except AuthError as e:
        assert e.status == 401


@FUZZ
@given(st.text(max_size=200), st.text(max_size=200), st.text(max_size=40))
def test_signature_headers_of_any_shape_are_refused_cleanly(signature_input, signature, api_key):
    headers = {"Signature-Input": signature_input, "Signature": signature, "X-API-KEY": api_key,
               "Audiohook-Organization-Id": "o", "Audiohook-Session-Id": "s", "Audiohook-Correlation-Id": "c"}
    try:
        verify_audiohook_signature(headers, "/ingest/genesys", "host", base64.b64encode(b"secret").decode())
        raise AssertionError("a random signature verified")
    except SignatureError:
        pass
