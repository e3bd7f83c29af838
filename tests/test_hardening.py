"""The smaller holes: metadata at every boundary, CSV injection, media clocks, reviewer identity, /ui,
/healthz, stored logs after a restart, negative `since`, idle reasons, the README's close codes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import signal
from pathlib import Path

import httpx
import numpy as np
import pytest
import websockets

from assist.api_qa import csv_cell
from assist.democall import fleurs_call
from assist.replay import follow, replay
from streaming.protocols.base import CloseCode
from streaming.protocols.genesys import GenesysClient
from streaming.protocols.signatures import twilio_signature
from streaming.protocols.twilio import twilio_messages
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.tenancy import ACME_ACCOUNT, ACME_KEY, ACME_TWILIO_TOKEN, bearer, tenant_settings, token
from tests.test_identity import NODE, free_port, serve

KEY = {"X-API-KEY": ACME_KEY}
SILENCE = np.zeros(SAMPLE_RATE, dtype=np.float32)
SECRETS = ["123-45-6789", "4111111111111111", "4111 1111 1111 1111", "12345678Z", "Jane Doe"]
PII = {"ssn": "123-45-6789", "card_number": "4111111111111111", "FirstName": "Jane Doe", "dni": "12345678Z",
       "agent_id": "agent 4111 1111 1111 1111", "agent": "Mike", "language": "en",
       "custom_config": {"agent": "Mike", "dni": "12345678Z"}}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening")
    with RunningService(tenant_settings(tmp, idle_timeout_s=2.0, reconnect_grace_s=0.0)) as running:
        running.db_path = tmp / "recobra.db"
        yield running


def call(service, call_id: str, protocol: str = "plain", metadata: dict | None = None) -> list[dict]:
    """Stream one second of silence as a call; its events once it has ended."""
    secret = {"plain": ACME_KEY, "twilio": ACME_TWILIO_TOKEN}[protocol]
    asyncio.run(replay(service.url, protocol, SILENCE, SILENCE, SAMPLE_RATE, call_id=call_id, speed=0,
                       metadata=metadata, api_key=secret, account_sid=ACME_ACCOUNT))
    events: list[dict] = []
    asyncio.run(follow(service.url, call_id, events.append, token=token("acme", "agent", call_id)))
    return events


async def close_of(url: str, headers: dict, messages: list) -> tuple[int, str]:
    async with websockets.connect(url, additional_headers=headers) as ws:
        try:
            for m in messages:
                await ws.send(m)
            while True:
                await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("the server never closed")


def detail(service, call_id: str) -> dict:
    response = httpx.get(f"{service.http}/api/calls/{call_id}", headers=bearer("acme", "qa"))
    assert response.status_code == 200, response.text
    return response.json()


def test_identity_numbers_in_metadata_reach_no_boundary(service):
    live = call(service, "pii-twilio", "twilio", PII)[0]
    call(service, "pii-plain", "plain", PII)
    exported = httpx.get(f"{service.http}/api/calls.csv", headers=bearer("acme", "qa")).text
    stored = [detail(service, cid) for cid in ("pii-twilio", "pii-plain")]
    raw = "".join(p.read_bytes().decode("latin-1") for p in Path(service.db_path).parent.glob("recobra.db*"))
    for where in [json.dumps(live), exported, json.dumps(stored), raw]:
        for secret in SECRETS:
            assert secret not in where
    assert live["metadata"]["agent"] == "Mike" and live["metadata"]["agent_id"] == "agent [CARD]"
    assert stored[1]["metadata"] == {"agent": "Mike", "agent_id": "agent [CARD]", "language": "en",
                                     "custom_config": {"agent": "Mike"}, "protocol": "plain", "tenant": "acme"}


def test_csv_cells_cannot_be_formulas(service):
    for value, cell in [("=1+1", "'=1+1"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
                        ("\tx", "'\tx"), ("\rx", "'\rx"), ("agent-7", "agent-7"), (None, ""), (0.5, "0.5")]:
        assert csv_cell(value) == cell
    call(service, "csv-1", metadata={"agent_id": "=HYPERLINK(\"http://evil.example\",\"x\")"})
    rows = list(csv.DictReader(io.StringIO(httpx.get(f"{service.http}/api/calls.csv", headers=bearer("acme", "qa"),
                                                     params={"agent": "=HYPERLINK(\"http://evil.example\",\"x\")"}).text)))
    assert [r["agent_id"] for r in rows] == ["'=HYPERLINK(\"http://evil.example\",\"x\")"]


def twilio_with_timestamp(call_sid: str, stamp: str) -> list[str]:
    messages = [m for _, m in twilio_messages(SILENCE, SILENCE, SAMPLE_RATE, call_sid=call_sid,
                                              account_sid=ACME_ACCOUNT)][:12]
    media = json.loads(messages[-1])
    media["media"]["timestamp"] = stamp
    return [*messages[:-1], json.dumps(media)]


def genesys_with(call_id: str, steps: list[tuple[str, dict]], position: str | None = None) -> tuple[list, dict]:
    """An AudioHook session: open, 20 ms of audio, then `steps` (the last one at `position`)."""
    client = GenesysClient(SILENCE, SILENCE, SAMPLE_RATE, conversation_id=call_id, api_key=ACME_KEY)
    messages: list = [client.open_message(), b"\xff" * 320]
    for type_, parameters in steps:
        message = {**json.loads(client.message(type_, parameters)), "serverseq": 1}  # after `opened`
        messages.append(message)
    if position is not None:
        messages[-1]["position"] = position
    return [m if isinstance(m, str | bytes) else json.dumps(m) for m in messages], client.headers


HUGE = "PT999999999H"
CLOCKS = {
    "genesys discarded": [("discarded", {"start": "PT0S", "discarded": HUGE})],
    "genesys resumed": [("paused", {}), ("resumed", {"start": "PT0S", "discarded": HUGE})],
    "genesys position": [("ping", {})],
}


@pytest.mark.parametrize("case", ["twilio timestamp", *CLOCKS])
def test_media_clocks_far_ahead_of_the_audio_are_refused(service, case):
    call_id = "clock-" + case.replace(" ", "-")
    if case == "twilio timestamp":
        url = f"{service.url}/ingest/twilio"
        code, why = asyncio.run(close_of(url, {"X-Twilio-Signature": twilio_signature(ACME_TWILIO_TOKEN, url)},
                                         twilio_with_timestamp(call_id, "999999999999999")))
    else:
        messages, headers = genesys_with(call_id, CLOCKS[case], HUGE if case.endswith("position") else None)
        code, why = asyncio.run(close_of(f"{service.url}/ingest/genesys", headers, messages))
    assert code == CloseCode.BAD_MESSAGE and ("ahead" in why or "more than" in why), why
    ended = [e for e in call_events_of(service, call_id) if e["type"] == "call.ended"]
    assert ended and ended[0]["duration"] < 5 and ended[0]["reason"] == "protocol error"


def call_events_of(service, call_id: str) -> list[dict]:
    events: list[dict] = []
    asyncio.run(follow(service.url, call_id, events.append, token=token("acme", "agent", call_id)))
    return events


def test_the_override_reviewer_is_who_the_token_names(service):
    call(service, "review-1")
    item = detail(service, "review-1")["scorecard"]["items"][0]["id"]
    url = f"{service.http}/api/calls/review-1/scorecard/items/{item}/override"
    named = {"Authorization": f"Bearer {mint('rev-ana')}"}
    first = httpx.post(url, headers=named, json={"result": "pass", "reviewer": "somebody else", "comment": "ok"})
    second = httpx.post(url, headers=bearer("acme", "supervisor"), json={"result": "fail", "comment": "no"})
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert [o["reviewer"] for o in detail(service, "review-1")["overrides"]] == ["rev-ana", "supervisor@acme"]


def mint(subject: str) -> str:
    from assist.auth import mint_token
    from tests.tenancy import TOKEN_SECRET

    return mint_token(TOKEN_SECRET, "acme", "qa", ttl_s=600, subject=subject)


def test_ui_serves_page_assets_only_and_redirects_by_path(service):
    evil = {"Host": "evil.example"}
    for path in ("/ui", "/"):
        response = httpx.get(service.http + path, headers=evil, follow_redirects=False)
        assert response.status_code in (302, 307) and response.headers["location"] == "/ui/dashboard.html"
    for path in ("/api/calls/", "/calls/"):  # no slash redirects either (they were built from Host)
        assert httpx.get(service.http + path, headers=evil | bearer("acme", "qa"),
                         follow_redirects=False).status_code == 404
    for page in ("overlay.html", "dashboard.js", "qa.css"):
        assert httpx.get(f"{service.http}/ui/{page}").status_code == 200
    for hidden in ("__init__.py", "__pycache__/__init__.cpython-311.pyc", "", "x/"):
        assert httpx.get(f"{service.http}/ui/{hidden}").status_code == 404, hidden


def test_healthz_tells_anonymous_callers_only_ok(service):
    async def run() -> dict:
        live = asyncio.create_task(replay(service.url, "plain", SILENCE, SILENCE, SAMPLE_RATE, call_id="health-1",
                                          speed=1, api_key=ACME_KEY))
        await asyncio.sleep(0.5)
        body = httpx.get(service.http + "/healthz").json()
        await live
        return body

    assert asyncio.run(run()) == {"status": "ok"}


def test_negative_since_is_refused(service):
    call(service, "since-1")
    agent = token("acme", "agent", "since-1")
    assert httpx.get(f"{service.http}/calls/since-1/log", params={"since": -5, "token": agent}).status_code == 400
    code, why = asyncio.run(close_of(f"{service.url}/calls/since-1/events?since=-5&token={agent}", {}, []))
    assert code == 4400 and "since" in why


def test_an_idle_call_is_stored_as_idle(service):
    start = json.dumps({"event": "start", "call_id": "idle-9", "encoding": "pcm16", "sample_rate": 16000,
                        "channels": ["agent"]})
    assert asyncio.run(close_of(f"{service.url}/ingest/plain", KEY, [start]))[0] == 4408
    ended = [e for e in call_events_of(service, "idle-9") if e["type"] == "call.ended"]
    assert ended[0]["reason"] == "idle"


def test_a_stored_calls_log_and_events_are_served_after_a_restart(tmp_path):
    settings = tenant_settings(tmp_path)
    with RunningService(settings) as first:
        before = call(first, "kept-1")
    agent = token("acme", "agent", "kept-1")
    with RunningService(settings) as second:
        log = httpx.get(f"{second.http}/calls/kept-1/log", params={"token": agent})
        tail = httpx.get(f"{second.http}/calls/kept-1/log", params={"since": 2, "token": agent}).json()
        events: list[dict] = []
        asyncio.run(follow(second.url, "kept-1", events.append, token=agent))
        foreign = httpx.get(f"{second.http}/calls/kept-1/log", headers=bearer("globex", "supervisor"))
    assert log.status_code == 200
    assert [(e["seq"], e["type"]) for e in log.json()] == [(e["seq"], e["type"]) for e in before]
    assert [e["seq"] for e in tail] == [e["seq"] for e in before][2:]
    assert [(e["seq"], e["type"]) for e in events] == [(e["seq"], e["type"]) for e in before]
    assert foreign.status_code == 404


def test_the_readme_lists_every_close_code():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    paragraph = readme[readme.index("Bad input gets a specific close code"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    codes = {v for k, v in vars(CloseCode).items() if k.isupper() and v not in (1000, 1002)}
    assert codes <= {int(c) for c in re.findall(r"\b[14]\d{3}\b", paragraph)}


def test_on_sigterm_every_calls_last_events_reach_its_sockets(tmp_path):
    agent, debtor, _ = fleurs_call("en", turns=2)
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    process = serve(tmp_path, port)
    agent_token = token("acme", "agent", "term-1")

    async def run() -> tuple[list[dict], tuple[int | None, str | None]]:
        seen: list[dict] = []
        signalled: list[bool] = []
        streaming = asyncio.create_task(replay(url, "plain", agent, debtor, SAMPLE_RATE, call_id="term-1", speed=1,
                                               api_key=ACME_KEY))
        await asyncio.sleep(1.0)
        async with websockets.connect(f"{url}/calls/term-1/events?token={agent_token}") as ws:
            try:
                async for message in ws:
                    seen.append(json.loads(message))
                    if seen[-1]["type"] == "transcript.final" and not signalled:
                        process.send_signal(signal.SIGTERM)  # mid-call, once (a second one forces the exit)
                        signalled.append(True)
            except websockets.ConnectionClosed:
                pass
            closed = (ws.close_code, ws.close_reason)
        await asyncio.gather(streaming, return_exceptions=True)
        return seen, closed

    try:
        seen, closed = asyncio.run(run())
        assert process.wait(60) is not None
    finally:
        process.kill()
    assert closed == (1000, "call ended")
    assert [e["type"] for e in seen][-2:] == ["call.ended", "qa.score"] and seen[-2]["reason"] == "service stopped"
    with RunningService(tenant_settings(tmp_path, node_id=NODE)) as after:
        kept = detail(after, "term-1")["events"]
    assert [(e["seq"], e["type"]) for e in kept] == [(e["seq"], e["type"]) for e in seen]
