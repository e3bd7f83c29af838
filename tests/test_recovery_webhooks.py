"""A call left open by a lost front end still gets its end: the survivor that claims it stores call.ended and
qa.score, queues its outcome webhooks in the same transaction and sends call.ended on the Redis bus, once
however many survivors try; a node that was only cut off and ends the call later queues nothing new."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import func, select

from assist.distributed.recovery import RecoveredEnds
from assist.distributed.redis_bus import RedisEventBus
from assist.events import CallEnded, CallStarted
from assist.hub import EventHub
from assist.qa.script import Script
from assist.settings import Settings, Tenant
from assist.storage.db import Database
from assist.storage.recorder import Recorder
from assist.storage.tables import Event, WebhookDelivery
from assist.webhooks import Outbox, outcome_items
from tests.service import RunningService
from tests.tenancy import TENANTS, TOKEN_SECRET, bearer
from tests.test_redis_bus import prefix, redis_url  # noqa: F401 - the Redis fixtures
from tests.test_storage import _postgres_url, db_url  # noqa: F401 - the SQLite / PostgreSQL fixture
from tests.test_webhooks import FAST_RETRIES, SECRET, Receiver, verify

CALL = Script.load(Path(__file__).parent / "data" / "qa_calls" / "en_promise_to_pay.yaml")


def hooked_tenants(url: str) -> list[Tenant]:
    return [Tenant.model_validate({**TENANTS[0], "webhook_url": url, "webhook_secret": SECRET}),
            Tenant.model_validate(TENANTS[1])]


def acme_call(call_id: str) -> list:
    """The scripted call's events up to where its node was lost, held for tenant acme."""
    events = CALL.live_events(call_id, ended=False)
    started = events[0]
    return [started.model_copy(update={"metadata": {**started.metadata, "tenant": "acme"}}), *events[1:]]


async def store(recorder: Recorder, events: list) -> None:
    await recorder.call_started(events[0])
    await recorder.record_batch(events[1:])


async def crash(recorder: Recorder) -> None:
    """Stop as a killed process does: no more heartbeats, the lease left to run out, nothing ended."""
    assert recorder._heartbeat is not None
    recorder._heartbeat.cancel()
    recorder._heartbeat = None
    await recorder.close()


def rows(url: str, model, *where) -> list:
    db = Database(url, migrate=False)
    with db.session() as s:
        found = list(s.scalars(select(model).where(*where)))
        s.expunge_all()
    db.close()
    return found


def test_two_survivors_end_each_lost_call_once_with_its_webhooks(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    ids = [f"lost-{i}" for i in range(6)]
    tenants = {t.id: t for t in hooked_tenants("http://127.0.0.1:9/hooks")}

    async def run() -> list[str]:
        lost = Recorder(db_url, node_id="lost", node_ttl_s=0.1)
        await lost.start()
        for call_id in ids:
            await store(lost, acme_call(call_id))
        await crash(lost)
        await asyncio.sleep(0.2)
        survivors = [Recorder(db_url, node_id=name) for name in ("one", "two")]
        for survivor in survivors:
            survivor.on_recovered = RecoveredEnds(tenants, on_bus=False).in_claim
            await survivor.start()
        claimed = await asyncio.gather(*(s.recover_interrupted() for s in survivors))
        # the lost node was only cut off: it ends a call after all, and queues its outcome again
        settings = Settings(**FAST_RETRIES, tenants=list(tenants.values()), token_secret=TOKEN_SECRET)
        outbox = Outbox(settings, survivors[0].db, tenants)
        late = await outbox.enqueue("acme", ids[0], outcome_items(ids[0], acme_call(ids[0])))
        await outbox.close()
        for survivor in survivors:
            await survivor.close()
        assert sorted(claimed[0] + claimed[1]) == ids and not set(claimed[0]) & set(claimed[1])
        return late

    assert asyncio.run(run()) == []
    for call_id in ids:
        hooks = rows(db_url, WebhookDelivery, WebhookDelivery.call_id == call_id)
        assert sorted(h.event for h in hooks) == ["call.completed", "promise_to_pay.captured"]
        data = json.loads(next(h.body for h in hooks if h.event == "call.completed"))["data"]
        assert data["end_reason"] == "node lost" and data["promise"]["amount"] == 150.0
        assert data["qa"]["score"] is not None and data["summary"]["lines"]
        ends = rows(db_url, Event, Event.call_id == call_id, Event.type.in_(["call.ended", "qa.score"]))
        assert sorted(e.type for e in ends) == ["call.ended", "qa.score"]
        ended = next(e.payload for e in ends if e.type == "call.ended")
        assert ended["reason"] == "node lost" and ended["summary"]["recovered"] is True
        assert ended["seq"] == len(acme_call(call_id)) + 1


# ---- on the Redis bus, with two running survivors and a real webhook receiver --------------------------

@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    yield from _postgres_url()


def test_a_lost_nodes_call_ends_once_on_the_bus_and_at_the_receiver(tmp_path: Path, pg_url: str, redis_url: str,  # noqa: F811
                                                                     prefix: str) -> None:  # noqa: F811
    call_id, doomed = "lost-live-1", f"{prefix}-doomed"
    events = acme_call(call_id)

    async def doomed_node() -> None:
        """A front end holding the call, on the bus and in the database, then killed (asyncio.run cancels its
        bus tasks: no close notice, no call.ended, its heartbeats stop)."""
        hub = EventHub()
        bus = RedisEventBus(hub, redis_url, prefix, doomed)
        await bus.start()
        recorder = Recorder(pg_url, node_id=doomed, node_ttl_s=1.0, heartbeat_s=0.2)
        await recorder.start()
        hub.open(call_id)
        for event in events:
            hub.publish(event)
        await store(recorder, events)
        client = redis.asyncio.Redis.from_url(redis_url)
        while await client.xlen(bus.log_key(call_id)) < len(events):
            await asyncio.sleep(0.05)
        await client.aclose()
        await crash(recorder)

    watcher = redis.Redis.from_url(redis_url, decode_responses=True).pubsub(ignore_subscribe_messages=True)
    watcher.subscribe(f"{prefix}:events")
    receiver = Receiver([])

    def settings(name: str) -> Settings:
        return Settings(asr_model="tiny.en", language="en", cache_dir=tmp_path / "cache", database_url=pg_url,
                        event_bus="redis", redis_url=redis_url, redis_prefix=prefix, node_id=f"{prefix}-{name}",
                        node_heartbeat_s=0.2, node_ttl_s=2.0, tenants=hooked_tenants(receiver.url),
                        token_secret=TOKEN_SECRET, **FAST_RETRIES)

    try:
        with RunningService(settings("one")) as one, RunningService(settings("two")) as two:
            asyncio.run(doomed_node())  # the survivors mirror its call, then recover it on a heartbeat
            deadline = time.monotonic() + 60
            while not any(json.loads(b)["type"] == "call.completed" for _, b, _ in receiver.requests):
                assert time.monotonic() < deadline, "no call.completed webhook for the lost node's call"
                time.sleep(0.2)
            time.sleep(2.0)  # ten more heartbeats of both survivors: nothing goes out twice
            logs = [httpx.get(f"{node.http}/calls/{call_id}/log", headers=bearer("acme", "supervisor")).json()
                    for node in (one, two)]
        messages = []
        until = time.monotonic() + 1.0  # what the channel carried (a subscribe confirmation reads as None)
        while time.monotonic() < until:
            if (message := watcher.get_message(timeout=0.2)) is not None:
                messages.append(json.loads(message["data"]))
    finally:
        receiver.close()
        watcher.close()
    kinds = sorted(json.loads(b)["type"] for _, b, _ in receiver.requests)
    assert kinds == ["call.completed", "promise_to_pay.captured"]
    assert all(verify(h, b) for h, b, _ in receiver.requests)
    completed = next(json.loads(b) for _, b, _ in receiver.requests if json.loads(b)["type"] == "call.completed")
    assert completed["data"]["call_id"] == call_id and completed["data"]["end_reason"] == "node lost"
    stream = redis.Redis.from_url(redis_url, decode_responses=True).xrange(f"{prefix}:log:{call_id}")
    on_stream = [json.loads(fields["e"]) for _, fields in stream]
    assert [e["type"] for e in on_stream].count("call.ended") == 1 and on_stream[-1]["type"] == "call.ended"
    assert on_stream[0]["type"] == CallStarted.model_fields["type"].default and on_stream[-1]["seq"] == len(events) + 1
    ended = [m for m in messages if m["kind"] == "event" and m["event"]["type"] == "call.ended"]
    assert len(ended) == 1 and ended[0]["node"] == doomed and ended[0]["event"]["reason"] == "node lost"
    assert [m["call_id"] for m in messages if m["kind"] == "close"] == [call_id]
    assert CallEnded.model_validate(ended[0]["event"]).call_id == call_id
    for log in logs:  # both survivors' event logs (their mirrors, or the database) end with it, once
        assert [e["type"] for e in log].count("call.ended") == 1 and log[-1]["type"] in ("call.ended", "qa.score")
    assert len(rows(pg_url, WebhookDelivery, WebhookDelivery.call_id == call_id)) == 2
    db = Database(pg_url, migrate=False)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.call_id == call_id,
                                                                       Event.type == "call.ended")) == 1
    db.close()
