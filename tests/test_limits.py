"""Hostile and broken input: every bad connection gets a specific close code; nothing else is affected."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
import websockets

from assist.democall import fleurs_call
from assist.replay import follow, replay
from streaming.protocols.base import CloseCode, ProtocolError
from streaming.protocols.genesys import GenesysClient
from streaming.protocols.limits import ConnectionLimits
from streaming.protocols.signatures import twilio_signature
from streaming.protocols.twilio import twilio_messages
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker
from tests.service import RunningService
from tests.tenancy import ACME_KEY, ACME_TWILIO_TOKEN, tenant_settings, token

KEY = {"X-API-KEY": ACME_KEY}


def start(call_id: str, channels=("agent", "debtor"), encoding="pcm16") -> str:
    return json.dumps({"event": "start", "call_id": call_id, "encoding": encoding, "sample_rate": 16000,
                       "channels": list(channels)})


def frame(seconds: float) -> AudioFrame:
    return AudioFrame(Speaker.AGENT, 0.0, np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32))


def test_over_rate_senders_are_slowed_not_cut_off():
    limits = ConnectionLimits(max_messages_per_s=100, max_messages_per_audio_s=200, grace=10)
    waits = [limits.throttle(0.0) for _ in range(150)]  # 150 messages in the same instant
    assert waits[:99] == [0.0] * 99 and waits[-1] == pytest.approx(0.5, abs=0.011)
    assert limits.throttle(10.0) == 0.0  # the bucket refills


def test_floods_of_tiny_frames_are_closed_but_real_audio_is_not():
    normal = ConnectionLimits(2000, max_messages_per_audio_s=200, grace=50)
    for _ in range(100 * 60):  # a minute of Twilio-style 20 ms frames, both tracks
        normal.count([frame(0.02)])
    assert normal.audio_s == pytest.approx(120)
    tiny = ConnectionLimits(2000, max_messages_per_audio_s=200, grace=50)
    with pytest.raises(ProtocolError) as err:
        for _ in range(1000):
            tiny.count([frame(1 / SAMPLE_RATE)])
    assert err.value.close_code == CloseCode.RATE_LIMITED and tiny.messages == 51
    control = ConnectionLimits(2000, max_messages_per_audio_s=200, grace=50)
    with pytest.raises(ProtocolError):
        for _ in range(100):
            control.count([])  # pings, marks... and never any audio


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    settings = tenant_settings(tmp_path_factory.mktemp("limits"), idle_timeout_s=2.0, message_grace=100)
    with RunningService(settings) as running:
        yield running


async def close_of(url: str, headers: dict, messages: list, text_bytes: bool = False) -> tuple[int, str]:
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        try:
            for m in messages:
                await ws.send(m, text=True) if text_bytes and isinstance(m, bytes) else await ws.send(m)
            while True:
                await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None, "the server must close with a code"
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("the server never closed")


def genesys_open(**media) -> list[str]:
    agent = np.zeros(SAMPLE_RATE, dtype=np.float32)
    client = GenesysClient(agent, agent, SAMPLE_RATE, api_key=ACME_KEY,
                           media=[{"type": "audio", "channels": ["external", "internal"], "rate": 8000, **media}])
    return [client.open_message()] + [client.message("ping", {}) for _ in range(300)]


BAD = [
    ("idle before start", "plain", [], 4408, "nothing received"),
    ("idle after start", "plain", [start("idle-1")], 4408, "nothing received"),
    ("flood of 1-sample frames", "plain", [start("flood-1", ["agent"])] + [b"\x00\x00"] * 300, 4429, "per second"),
    ("flood of pings", "genesys", genesys_open(format="PCMU"), 4429, "per second"),
    ("huge JSON", "plain", [json.dumps({"event": "start", "pad": "x" * 300_000})], 1009, "limit"),
    ("huge audio frame", "plain", [start("big-1"), b"\x00" * 300_000], 1009, "limit"),
    ("JSON nested too deep", "plain", ["[" * 60_000 + "]" * 60_000], 1007, "JSON"),
    ("JSON number too long", "plain", ['{"event": ' + "9" * 6000 + "}"], 1007, "JSON"),
    ("lone surrogate", "plain", [start("x").replace('"x"', '"\\ud800"')], 1007, "surrogate"),
    ("invalid UTF-8 text", "plain", [b'{"event": "st\xff\xfeart"}'], 1007, ""),
    ("misaligned audio", "plain", [start("odd-1"), b"\x00\x01\x02"], 1007, "whole number"),
    ("wrong codec", "plain", [start("opus-1", encoding="opus")], 4415, "opus"),
    ("no usable Genesys media", "genesys", genesys_open(format="OPUS")[:1], 4415, "no supported media"),
    ("call id not an id", "plain", [start("../../etc/passwd")], 4400, "call id"),
    ("JSON that is not an object", "plain", ["[1, 2]"], 4400, "object"),
    ("audio before start", "plain", [b"\x00\x00"], 4400, "before start"),
    ("Genesys seq out of order", "genesys", genesys_open(format="PCMU")[1:2], 4400, "out of order"),
]


@pytest.mark.parametrize("name, protocol, messages, code, reason", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_a_specific_close_code(service, name, protocol, messages, code, reason):
    got, why = asyncio.run(close_of(f"{service.url}/ingest/{protocol}", KEY, messages,
                                    text_bytes=name == "invalid UTF-8 text"))
    assert got == code, why
    assert reason in why


def test_twilio_wrong_codec_and_binary_frames(service):
    url = f"{service.url}/ingest/twilio"
    signed = {"X-Twilio-Signature": twilio_signature(ACME_TWILIO_TOKEN, url)}
    agent = np.zeros(SAMPLE_RATE, dtype=np.float32)
    connected, start_msg = [m for _, m in twilio_messages(agent, agent, SAMPLE_RATE)][:2]
    l16 = start_msg.replace('"audio/x-mulaw"', '"audio/x-l16"')
    assert asyncio.run(close_of(url, signed, [connected, l16]))[0] == 4415
    assert asyncio.run(close_of(url, signed, [connected, b"\x00" * 160]))[0] == 1003


def again(message: str | bytes) -> str | bytes:
    """The message with a fresh call id (a call id is used once)."""
    if not isinstance(message, str):
        return message
    return (message.replace('"call_id": "', '"call_id": "again-')
            .replace('"conversationId": "', '"conversationId": "again-'))


def test_a_live_call_is_untouched_by_a_barrage_of_bad_connections(service):
    agent, debtor, _ = fleurs_call("en", turns=2)
    url = f"{service.url}/ingest"

    async def run() -> tuple[list[dict], list[tuple[int, str]]]:
        call = asyncio.create_task(replay(service.url, "plain", agent, debtor, SAMPLE_RATE, call_id="steady-1",
                                          speed=3, api_key=ACME_KEY))
        await asyncio.sleep(1.0)
        closes = await asyncio.gather(*(
            close_of(f"{url}/{protocol}", KEY, [again(m) for m in messages], text_bytes=name == "invalid UTF-8 text")
            for name, protocol, messages, _, _ in BAD if not name.startswith("idle")))
        await call
        events: list[dict] = []
        await follow(service.url, "steady-1", events.append, token=token("acme", "agent", "steady-1"))
        return events, closes

    events, closes = asyncio.run(run())
    assert [c for c, _ in closes] == [code for name, _, _, code, _ in BAD if not name.startswith("idle")]
    ended = [e for e in events if e["type"] == "call.ended"]
    assert ended and ended[0]["reason"] == "end"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert sum(1 for e in events if e["type"] == "transcript.final") >= 2
    assert httpx.get(service.http + "/healthz").json()["status"] == "ok"
