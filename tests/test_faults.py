"""Overload and faults: capacity, reconnects, slow clients, a stalled database and a restart lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time

import httpx
import pytest
import websockets
from sqlalchemy import func, select

from assist.democall import fleurs_call
from assist.events import CallError, CallStarted
from assist.hub import EventHub, SlowSubscriber
from assist.replay import follow, replay
from assist.storage.recorder import Recorder
from assist.storage.tables import Event
from streaming.protocols.plain import plain_messages
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.tenancy import ACME_KEY, METRICS_TOKEN, bearer, tenant_settings, token

KEY = {"X-API-KEY": ACME_KEY}


@pytest.fixture(scope="module")
def audio():
    agent, debtor, _ = fleurs_call("en", turns=2)
    return agent, debtor


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    settings = tenant_settings(tmp, max_calls=1, reconnect_grace_s=30.0, event_store_queue=20)
    with RunningService(settings) as running:
        running.db_path = tmp / "recobra.db"
        yield running


def events_of(service, call_id: str) -> list[dict]:
    events: list[dict] = []
    asyncio.run(follow(service.url, call_id, events.append, token=token("acme", "agent", call_id)))
    return events


def stored(service, call_id: str) -> dict:
    response = httpx.get(f"{service.http}/api/calls/{call_id}", headers=bearer("acme", "qa"))
    assert response.status_code == 200, response.text
    return response.json()


def metric(service, line_start: str) -> float:
    text = httpx.get(service.http + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start))


def test_at_capacity_new_calls_are_refused_and_the_live_call_goes_on(service, audio):
    async def run() -> tuple[int, str]:
        live = asyncio.create_task(replay(service.url, "plain", *audio, SAMPLE_RATE, call_id="cap-live", speed=3,
                                          api_key=ACME_KEY))
        await asyncio.sleep(1.0)
        async with websockets.connect(f"{service.url}/ingest/plain", additional_headers=KEY) as ws:
            start, *_ = plain_messages(*audio, SAMPLE_RATE, call_id="cap-refused")
            await ws.send(start[1])
            with contextlib.suppress(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 30)
            refused = (ws.close_code, ws.close_reason)
        await live
        return refused

    code, reason = asyncio.run(run())
    assert code == 1013 and "capacity" in reason
    events = events_of(service, "cap-live")
    assert events[-2]["type"] == "call.ended" and events[-2]["reason"] == "end"
    assert any(e["type"] == "transcript.final" for e in events)
    assert metric(service, 'recobra_rejected_connections_total{reason="capacity"}') >= 1
    # the slot is free again once the live call ended
    asyncio.run(replay(service.url, "plain", *audio, SAMPLE_RATE, call_id="cap-after", speed=0, api_key=ACME_KEY))
    assert events_of(service, "cap-after")[0]["type"] == "call.started"


def test_a_telephony_reconnect_mid_call_continues_the_same_call(service, audio):
    messages = list(plain_messages(*audio, SAMPLE_RATE, call_id="reconnect-1"))
    (_, start), frames, (_, stop) = messages[0], messages[1:-1], messages[-1]
    half = len(frames) // 2
    half_s = frames[half][0]
    before = metric(service, "recobra_call_reconnects_total")

    async def run() -> None:
        async with websockets.connect(f"{service.url}/ingest/plain", additional_headers=KEY) as first:
            await first.send(start)
            for _, m in frames[:half]:
                await first.send(m)
        # the connection dropped without a stop; telephony connects again and carries on
        async with websockets.connect(f"{service.url}/ingest/plain", additional_headers=KEY) as second:
            await second.send(start)
            for _, m in frames[half:]:
                await second.send(m)
            await second.send(stop)

    asyncio.run(run())
    events = events_of(service, "reconnect-1")
    kinds = [e["type"] for e in events]
    assert kinds.count("call.started") == 1 and kinds.count("call.ended") == 1
    assert events[kinds.index("call.ended")]["reason"] == "end"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert min(f["start"] for f in finals) < half_s < max(f["start"] for f in finals), "both halves transcribed"
    for speaker in ("agent", "debtor"):
        starts = [f["start"] for f in finals if f["speaker"] == speaker]
        assert starts == sorted(starts), "the second connection continues the call clock"
    assert events[kinds.index("call.ended")]["duration"] == pytest.approx(len(frames) * 0.02, abs=0.05)
    assert metric(service, "recobra_call_reconnects_total") == before + 1
    assert len(stored(service, "reconnect-1")["events"]) == len(events)


def test_a_slow_event_subscriber_never_slows_the_call(service, audio):
    async def run() -> list[dict]:
        url = f"{service.url}/calls/slow-1/events?token={token('acme', 'agent', 'slow-1')}"
        call = asyncio.create_task(replay(service.url, "plain", *audio, SAMPLE_RATE, call_id="slow-1", speed=0,
                                          api_key=ACME_KEY))
        await asyncio.sleep(0.5)
        async with websockets.connect(url, max_queue=1) as slow:  # reads one message, then never again
            await call
            events: list[dict] = []
            await follow(service.url, "slow-1", events.append, token=token("acme", "agent", "slow-1"))
            assert slow.state is websockets.State.OPEN or slow.close_code == 1013
        return events

    events = asyncio.run(run())
    assert events[-1]["type"] == "qa.score" and events[-2]["type"] == "call.ended"


def test_hub_cuts_off_a_subscriber_that_falls_behind_and_it_resumes_without_loss():
    async def run() -> list[int]:
        hub = EventHub()
        hub.open("c")
        stream = hub.subscribe("c")
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        for i in range(3000):  # publishing never waits for the subscriber
            hub.publish(CallError(call_id="c", message=str(i)))
        seen = [(await first).seq]
        with pytest.raises(SlowSubscriber, match="since=") as slow:
            async for event in stream:
                seen.append(event.seq)
        since = int(str(slow.value).rsplit("=", 1)[1])
        hub.close("c")
        seen += [e.seq async for e in hub.subscribe("c", since)]
        return seen

    assert asyncio.run(run()) == list(range(1, 3001))


def test_recorder_bounds_queued_writes_and_loses_none(tmp_path):
    async def run() -> tuple[int, int]:
        recorder = Recorder(f"sqlite:///{tmp_path / 'r.db'}", max_pending=2)
        await recorder.start()
        await recorder.call_started(CallStarted(call_id="r1", protocol="plain", seq=1))
        events = [CallError(call_id="r1", message=f"e{i}", seq=i) for i in range(2, 302)]
        await asyncio.gather(*(recorder.record(e) for e in events))
        with recorder.db.session() as s:
            count = s.scalar(select(func.count()).select_from(Event).where(Event.call_id == "r1"))
        await recorder.close()
        return count, recorder.peak_in_flight

    count, peak = asyncio.run(run())
    assert count == 301 and peak <= 2


def test_a_stalled_database_slows_storage_but_loses_nothing(service, audio):
    def hold_write_lock(seconds: float) -> None:
        conn = sqlite3.connect(service.db_path, timeout=10)
        conn.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        conn.rollback()
        conn.close()

    async def run() -> None:
        stall = asyncio.create_task(asyncio.to_thread(hold_write_lock, 3.0))
        await asyncio.sleep(0.2)
        await replay(service.url, "plain", *audio, SAMPLE_RATE, call_id="stall-1", speed=0, api_key=ACME_KEY)
        await stall

    asyncio.run(run())
    events = events_of(service, "stall-1")
    assert events[-1]["type"] == "qa.score"
    detail = stored(service, "stall-1")
    assert [e["seq"] for e in detail["events"]] == [e["seq"] for e in events]
    assert detail["scorecard"] is not None


def test_a_restart_loses_no_persisted_data(tmp_path, audio):
    settings = tenant_settings(tmp_path)
    live: list[dict] = []

    async def before_restart(service: RunningService) -> list[dict]:
        await replay(service.url, "plain", *audio, SAMPLE_RATE, call_id="done-1", speed=0, api_key=ACME_KEY)
        done: list[dict] = []
        await follow(service.url, "done-1", done.append, token=token("acme", "agent", "done-1"))
        streaming = asyncio.create_task(replay(service.url, "plain", *audio, SAMPLE_RATE, call_id="cut-1",
                                               speed=1.5, api_key=ACME_KEY))
        following = None
        while not any(e["type"] == "transcript.final" for e in live):
            if following is None or following.done() and not live:  # until the call has started
                following = asyncio.create_task(follow(service.url, "cut-1", live.append,
                                                       token=token("acme", "agent", "cut-1")))
            await asyncio.sleep(0.2)
        await asyncio.to_thread(service.__exit__, None, None, None)  # graceful stop mid-call
        await asyncio.gather(streaming, following, return_exceptions=True)
        return done

    first = RunningService(settings)
    first.__enter__()
    done = asyncio.run(before_restart(first))
    with RunningService(settings) as second:
        done_stored = httpx.get(f"{second.http}/api/calls/done-1", headers=bearer("acme", "supervisor")).json()
        cut_stored = httpx.get(f"{second.http}/api/calls/cut-1", headers=bearer("acme", "supervisor")).json()
    assert [(e["seq"], e["type"]) for e in done_stored["events"]] == [(e["seq"], e["type"]) for e in done]
    assert done_stored["scorecard"] == done[-1]["scorecard"]
    seen = {e["seq"]: e["type"] for e in live}
    kept = {e["seq"]: e["type"] for e in cut_stored["events"]}
    assert seen and seen.items() <= kept.items(), "every event a client saw is stored"
    ended = [e["payload"] for e in cut_stored["events"] if e["type"] == "call.ended"]
    assert ended and ended[0]["reason"] == "service stopped"
    assert cut_stored["call"]["status"] == "ended" and cut_stored["scorecard"] is not None
    assert json.dumps(cut_stored)  # the whole record reads back
