"""A call id is used once per tenant: ended, stored, interrupted and live calls cannot be started again;
only the reconnect of a dropped connection with the same stream continues a call."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets

from assist.democall import fleurs_call
from assist.replay import follow, replay
from streaming.protocols.plain import plain_messages
from streaming.protocols.signatures import twilio_signature
from streaming.protocols.twilio import twilio_messages
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.tenancy import (
    ACME_ACCOUNT,
    ACME_KEY,
    ACME_TWILIO_TOKEN,
    METRICS_TOKEN,
    TENANTS,
    TOKEN_SECRET,
    bearer,
    tenant_settings,
    token,
)

KEY = {"X-API-KEY": ACME_KEY}
NODE = "identity-node"


@pytest.fixture(scope="module")
def audio():
    agent, debtor, _ = fleurs_call("en", turns=2)
    return agent, debtor


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with RunningService(tenant_settings(tmp_path_factory.mktemp("identity"), reconnect_grace_s=30.0)) as running:
        yield running


def signed(url: str) -> dict[str, str]:
    return {"X-Twilio-Signature": twilio_signature(ACME_TWILIO_TOKEN, url)}


def twilio(audio, call_sid: str) -> list[str]:
    return [m for _, m in twilio_messages(*audio, SAMPLE_RATE, call_sid=call_sid, account_sid=ACME_ACCOUNT)]


async def close_of(url: str, headers: dict, messages: list) -> tuple[int, str, float]:
    """(close code, reason, seconds from the last message sent to the close)."""
    async with websockets.connect(url, additional_headers=headers) as ws:
        sent = time.monotonic()
        try:
            for m in messages:
                await ws.send(m)
            sent = time.monotonic()
            while True:
                await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason, time.monotonic() - sent
    raise AssertionError("the server never closed")


def finished(service, call_id: str) -> list[dict]:
    """The call's events, once it has ended (and been stored)."""
    events: list[dict] = []
    asyncio.run(follow(service.url, call_id, events.append, token=token("acme", "agent", call_id)))
    return events


def stored(service, call_id: str) -> dict:
    response = httpx.get(f"{service.http}/api/calls/{call_id}", headers=bearer("acme", "qa"))
    assert response.status_code == 200, response.text
    return response.json()


def reconnects(service) -> float:
    text = httpx.get(service.http + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("recobra_call_reconnects_total"))


def test_a_twilio_start_naming_an_ended_call_is_refused_and_the_call_kept(service, audio):
    asyncio.run(replay(service.url, "twilio", *audio, SAMPLE_RATE, call_id="CAended1", speed=0,
                       api_key=ACME_TWILIO_TOKEN, account_sid=ACME_ACCOUNT))
    finished(service, "CAended1")
    before = stored(service, "CAended1")
    url = f"{service.url}/ingest/twilio"
    code, reason, waited = asyncio.run(close_of(url, signed(url), twilio(audio, "CAended1")[:40]))
    assert code == 1008 and "already used" in reason and waited < 2.0
    after = stored(service, "CAended1")
    kinds = [e["type"] for e in after["events"]]
    assert kinds.count("call.started") == 1 and kinds.count("call.ended") == 1
    assert after["events"] == before["events"] and after["call"]["duration"] == before["call"]["duration"]


def test_a_duplicate_of_a_live_call_is_refused_at_once(service, audio):
    url = f"{service.url}/ingest/twilio"

    async def run() -> tuple[tuple[int, str, float], tuple[int, str, float]]:
        live = asyncio.create_task(replay(service.url, "twilio", *audio, SAMPLE_RATE, call_id="CAlive1", speed=3,
                                          api_key=ACME_TWILIO_TOKEN, account_sid=ACME_ACCOUNT))
        await asyncio.sleep(1.0)
        other_stream = await close_of(url, signed(url), twilio(audio, "CAlive1")[:2])
        plain_start = json.dumps({"event": "start", "call_id": "CAlive1", "encoding": "pcm16", "sample_rate": 16000,
                                  "channels": ["agent"]})
        other_protocol = await close_of(f"{service.url}/ingest/plain", KEY, [plain_start])
        await live
        return other_stream, other_protocol

    for code, reason, waited in asyncio.run(run()):
        assert code == 1008 and "already streaming" in reason and waited < 2.0
    ended = [e for e in finished(service, "CAlive1") if e["type"] == "call.ended"]
    assert len(ended) == 1 and ended[0]["reason"] == "end"


def test_a_reconnect_continues_the_call_only_with_the_same_stream(service, audio):
    messages = twilio(audio, "CAdrop1")
    connected, start, media, stop = messages[0], messages[1], messages[2:-1], messages[-1]
    half = len(media) // 2
    url = f"{service.url}/ingest/twilio"
    before = reconnects(service)

    async def run() -> tuple[int, str, float]:
        async with websockets.connect(url, additional_headers=signed(url)) as first:
            for m in [connected, start, *media[:half]]:
                await first.send(m)
        # someone else, with a captured signature, names the parked call on a stream of their own
        intruder = await close_of(url, signed(url), twilio(audio, "CAdrop1")[:2])
        async with websockets.connect(url, additional_headers=signed(url)) as second:
            for m in [connected, start, *media[half:], stop]:
                await second.send(m)
            await asyncio.wait_for(second.wait_closed(), 60)
        return intruder

    code, reason, waited = asyncio.run(run())
    assert code == 1008 and "already streaming" in reason and waited < 2.0
    assert reconnects(service) == before + 1
    finished(service, "CAdrop1")
    events = stored(service, "CAdrop1")["events"]
    kinds = [e["type"] for e in events]
    assert kinds.count("call.started") == 1 and kinds.count("call.ended") == 1
    assert [e["payload"] for e in events if e["type"] == "call.ended"][0]["reason"] == "end"


def serve(tmp, port: int) -> subprocess.Popen:
    """`recobra serve` with the test tenants on `port` (a real process, so it can be killed)."""
    env = {**os.environ, "RECOBRA_TENANTS": json.dumps(TENANTS), "RECOBRA_TOKEN_SECRET": TOKEN_SECRET,
           "RECOBRA_METRICS_TOKEN": METRICS_TOKEN, "RECOBRA_DATABASE_URL": f"sqlite:///{tmp / 'recobra.db'}",
           "RECOBRA_ASR_MODEL": "tiny.en", "RECOBRA_LANGUAGE": "en", "RECOBRA_CACHE_DIR": str(tmp / "cache"),
           "RECOBRA_LOG_LEVEL": "WARNING", "RECOBRA_NODE_ID": NODE}
    recobra = str(Path(sys.executable).parent / "recobra")
    process = subprocess.Popen([recobra, "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("recobra serve did not start")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_after_a_crash_and_restart_stored_and_interrupted_ids_stay_used(tmp_path, audio):
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    process = serve(tmp_path, port)
    try:
        asyncio.run(replay(url, "plain", *audio, SAMPLE_RATE, call_id="done-k", speed=0, api_key=ACME_KEY))
        asyncio.run(follow(url, "done-k", lambda e: None, token=token("acme", "agent", "done-k")))

        async def stream_until_first_final() -> None:
            seen: list[dict] = []
            call = asyncio.create_task(replay(url, "plain", *audio, SAMPLE_RATE, call_id="cut-k", speed=1,
                                              api_key=ACME_KEY))
            await asyncio.sleep(1.0)
            follower = asyncio.create_task(follow(url, "cut-k", seen.append, token=token("acme", "agent", "cut-k")))
            while not any(e["type"] == "transcript.final" for e in seen):
                await asyncio.sleep(0.1)
            process.send_signal(signal.SIGKILL)  # a crash: nothing is ended or stored any more
            await asyncio.gather(call, follower, return_exceptions=True)

        asyncio.run(stream_until_first_final())
    finally:
        process.kill()
        process.wait(30)
    with RunningService(tenant_settings(tmp_path, node_id=NODE)) as second:  # the same node, restarted
        before = {cid: stored(second, cid) for cid in ("done-k", "cut-k")}
        assert before["cut-k"]["call"]["status"] == "interrupted"
        for call_id in ("done-k", "cut-k"):
            start = [m for _, m in plain_messages(*audio, SAMPLE_RATE, call_id=call_id)][:30]
            code, reason, waited = asyncio.run(close_of(f"{second.url}/ingest/plain", KEY, start))
            assert code == 1008 and "already used" in reason and waited < 2.0, call_id
            after = stored(second, call_id)
            assert after["events"] == before[call_id]["events"]
            assert after["call"]["status"] == before[call_id]["call"]["status"]
