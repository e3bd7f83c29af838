"""Live events across front ends through a real Redis: real services, real calls, real connections dropped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import redis
import redis.asyncio
import websockets
from structlog.testing import capture_logs

from assist.dashboard import Dashboard
from assist.democall import fleurs_call
from assist.distributed.redis_bus import RedisEventBus
from assist.events import CallEnded, CallStarted, TranscriptFinal
from assist.hub import EventHub
from assist.replay import follow
from assist.settings import Settings
from streaming.protocols.plain import plain_messages
from streaming.types import SAMPLE_RATE, Speaker
from tests.service import RunningService

CONFIGURED_REDIS = os.environ.get("RECOBRA_TEST_REDIS", "redis://127.0.0.1:6379/0")
WAIT_S = 180.0


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """RECOBRA_TEST_REDIS (default: the local server) or, when that is down, a private redis-server started
    here; skip when there is neither (fail with RECOBRA_REQUIRE_SERVICES=1)."""
    if _reachable(CONFIGURED_REDIS):
        yield CONFIGURED_REDIS
        return
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("RECOBRA_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis required: none at {CONFIGURED_REDIS} and no redis-server to start")
        pytest.skip(f"Redis not reachable at {CONFIGURED_REDIS} and no redis-server (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 30
        while not _reachable(url):
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"the redis-server started for the tests did not come up on port {port}")
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def _reachable(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key/channel prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"recobra-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def node(tmp_path: Path, url: str, prefix: str, name: str) -> RunningService:
    """A front end on the Redis bus; nodes share the model cache, each records to its own database."""
    return RunningService(Settings(
        asr_model="tiny.en", language="en", cache_dir=tmp_path / "cache",
        database_url=f"sqlite:///{tmp_path / name}.db", event_bus="redis", redis_url=url,
        redis_prefix=prefix, node_id=f"{prefix}-{name}",
    ))


async def send_call(url: str, call_id: str, hold: asyncio.Event | None = None, hold_at: float = 8.0) -> None:
    """Stream a real two-turn call over the plain protocol as fast as possible; with `hold`, stop sending
    at `hold_at` seconds of audio until the test sets it (the call stays live meanwhile)."""
    agent, debtor, _ = fleurs_call("en", turns=2)
    async with websockets.connect(f"{url}/ingest/plain") as ws:
        for at, message in plain_messages(agent, debtor, SAMPLE_RATE, call_id=call_id):
            if hold is not None and at >= hold_at:
                await hold.wait()
            await ws.send(message)
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.recv()


async def until(check: Callable[[], Awaitable], what: str):
    """Poll `check` until it returns something truthy (bounded, so a broken bus fails instead of hanging)."""
    deadline = time.monotonic() + WAIT_S
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)
    return result


async def get(http: httpx.AsyncClient, service: RunningService, path: str):
    return (await http.get(service.http + path)).json()


def assert_whole_log(events: list[dict]) -> None:
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "call.started" and [e["type"] for e in events[-2:]] == ["call.ended", "qa.score"]
    assert any(e["type"] == "transcript.final" and e["text"] for e in events)


def test_a_call_on_one_node_is_seen_live_on_another(tmp_path, redis_url, prefix):
    with node(tmp_path, redis_url, prefix, "a") as a, node(tmp_path, redis_url, prefix, "b") as b:

        async def run():
            hold = asyncio.Event()
            async with httpx.AsyncClient() as http:
                sender = asyncio.create_task(send_call(a.url, "fan-out", hold))
                await until(lambda: _row(get(http, b, "/calls"), "fan-out"), "node b to list the call held by a")
                on_b: list[dict] = []
                follower = asyncio.create_task(follow(b.url, "fan-out", on_b.append))
                await until(lambda: _has_final(on_b), "a transcript final on node b while the call is live")
                listed = await _row(get(http, b, "/calls"), "fan-out")
                dashboard = await get(http, b, "/calls/live")
                clash = await _start_and_close_code(b.url, "fan-out")
                hold.set()
                await sender
                await follower
                on_a = await get(http, a, "/calls/fan-out/log")
                return listed, on_b, on_a, dashboard, clash, await get(http, b, "/calls")

        listed, on_b, on_a, dashboard, clash, after = asyncio.run(run())
    assert listed == {"call_id": "fan-out", "protocol": "plain", "t": listed["t"], "language": "en",
                      "node": f"{prefix}-a"}
    assert "fan-out" in [c["call_id"] for c in dashboard["calls"]]
    assert clash[0] == 1008 and "already streaming" in clash[1]
    assert_whole_log(on_a)
    assert on_b == on_a
    assert after == []


def test_a_late_node_backfills_live_and_ended_calls(tmp_path, redis_url, prefix):
    a = node(tmp_path, redis_url, prefix, "a")
    with a:

        async def run():
            hold = asyncio.Event()
            async with httpx.AsyncClient() as http:
                sender = asyncio.create_task(send_call(a.url, "late", hold))
                await until(lambda: _at_least(get(http, a, "/calls/late/log"), 3), "the call's first events on a")
                late = node(tmp_path, redis_url, prefix, "late")
                await asyncio.to_thread(late.__enter__)
                try:
                    listed = await get(http, late, "/calls")
                    tail: list[dict] = []
                    follower = asyncio.create_task(follow(late.url, "late", tail.append, since=2))
                    hold.set()
                    await sender
                    await follower
                finally:
                    await asyncio.to_thread(late.__exit__)
                return listed, tail, await get(http, a, "/calls/late/log")

        listed, tail, full = asyncio.run(run())
    assert [row["call_id"] for row in listed] == ["late"]
    assert_whole_log(full)
    assert tail == full[2:]

    # a node started after the call ended (and after node a left) still serves it, `since` included
    with node(tmp_path, redis_url, prefix, "after") as after:
        log_ = httpx.get(after.http + "/calls/late/log").json()
        resumed: list[dict] = []
        asyncio.run(follow(after.url, "late", resumed.append, since=5))
        calls = httpx.get(after.http + "/calls").json()
        missing = httpx.get(after.http + "/calls/never/log")
    assert log_ == full
    assert resumed == full[5:]
    assert calls == []
    assert missing.status_code == 404


def test_dropped_redis_connections_lose_nothing(tmp_path, redis_url, prefix):
    admin = redis.Redis.from_url(redis_url)
    with node(tmp_path, redis_url, prefix, "a") as a, node(tmp_path, redis_url, prefix, "b") as b:

        async def run():
            hold = asyncio.Event()
            async with httpx.AsyncClient() as http:
                sender = asyncio.create_task(send_call(a.url, "drop", hold))
                await until(lambda: _at_least(get(http, b, "/calls/drop/log"), 3), "the call mirrored on b")
                killed = _kill_connections(admin, [f"recobra:{prefix}-a", f"recobra:{prefix}-b"])
                hold.set()
                await sender
                full = await get(http, a, "/calls/drop/log")
                mirrored = await until(lambda: _ended_log(http, b, "drop", len(full)), "node b to catch up")
                return killed, full, mirrored, await get(http, b, "/calls")

        killed, full, mirrored, calls = asyncio.run(run())
    admin.close()
    assert killed >= 2  # at least a's publisher and b's subscriber connections
    assert_whole_log(full)
    assert mirrored == full
    assert calls == []


def test_calls_of_a_cut_off_node_are_closed_everywhere_and_come_back_with_it(redis_url, prefix):
    """A node cut off from Redis (partition; a crash looks the same to the others): its heartbeat lapses
    and the others close its calls; once it is back, they mirror the call again, nothing lost."""

    def final(seq: int) -> TranscriptFinal:
        return TranscriptFinal(call_id="cut", t=2.0 * seq, speaker=Speaker.DEBTOR, utterance=seq, start=0.5,
                               end=2.0 * seq, text=f"I can pay {seq} hundred", language="en")

    async def run():
        link = await Link.open(redis_url)
        hub_a, hub_b = EventHub(), EventHub()
        dashboard_b = Dashboard()
        hub_b.add_listener(dashboard_b.on_event)
        hub_b.add_close_listener(dashboard_b.on_closed)
        a = RedisEventBus(hub_a, link.url, prefix, f"{prefix}-a")
        b = RedisEventBus(hub_b, redis_url, prefix, f"{prefix}-b")
        await a.start()
        await b.start()
        hub_a.open("cut")
        hub_a.publish(CallStarted(call_id="cut", protocol="plain"))
        hub_a.publish(final(1))
        await until(lambda: _has(hub_b, "cut", 2), "node b to mirror the call")
        link.cut()
        await b.redis.delete(a.node_key(a.node_id))  # what NODE_TTL_S expiry does, without the wait
        await until(lambda: _closed(hub_b, "cut"), "node b to close the cut-off node's call")
        closed = len(hub_b.calls["cut"].events)
        shown_while_cut = "cut" in dashboard_b.calls
        hub_a.publish(final(2))  # while a is cut off: it waits in a's outbox
        link.heal()
        hub_a.publish(final(3))
        await until(lambda: _has(hub_b, "cut", 4), "node b to mirror the call again")
        live_again = hub_b.calls["cut"].live and "cut" in dashboard_b.calls
        hub_a.close("cut")
        await until(lambda: _closed(hub_b, "cut"), "node b to close the ended call")
        await a.close()
        await b.close()
        await link.close()
        return closed, shown_while_cut, live_again, [(e.seq, e.type) for e in hub_b.calls["cut"].events]

    closed, shown_while_cut, live_again, events = asyncio.run(run())
    assert closed == 2
    assert not shown_while_cut  # the supervisor's dashboard drops it ...
    assert live_again  # ... and shows it again when its node is back
    assert events == [(1, "call.started"), (2, "transcript.final"), (3, "transcript.final"),
                      (4, "transcript.final")]


def test_an_outage_keeps_live_calls_whole_and_bounds_the_ended_ones(redis_url, prefix):
    """While Redis is out of reach a node keeps every unsent event of its live calls and of its last
    `max_unsent_ended` ended calls, and publishes them all once it is back; an older ended call's unsent
    events are dropped (logged), never its close, so no node mirrors it as live. A call the hub has already
    forgotten is still published."""

    def final(call_id: str, seq: int) -> TranscriptFinal:
        return TranscriptFinal(call_id=call_id, t=float(seq), speaker=Speaker.DEBTOR, utterance=seq, start=0.0,
                               end=float(seq), text=f"puedo pagar {seq}" if call_id == "dos" else f"I pay {seq}",
                               language="es" if call_id == "dos" else "en")

    def whole_call(hub: EventHub, call_id: str) -> None:
        hub.open(call_id)
        hub.publish(CallStarted(call_id=call_id, protocol="plain"))
        hub.publish(final(call_id, 1))
        hub.publish(CallEnded(call_id=call_id, t=2.0, reason="stop", duration=2.0))
        hub.close(call_id)

    async def run():
        link = await Link.open(redis_url)
        hub = EventHub(keep_ended=1)
        bus = RedisEventBus(hub, link.url, prefix, f"{prefix}-a", max_unsent_ended=2)
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        await bus.start()
        hub.open("early")
        hub.publish(CallStarted(call_id="early", protocol="plain"))
        await until(lambda: client.xlen(bus.log_key("early")), "the first event in Redis")
        link.cut()
        with capture_logs() as logs:  # all at once: the publisher is idle, then fails until the link heals
            hub.publish(final("early", 1))
            hub.publish(CallEnded(call_id="early", t=2.0, reason="stop", duration=2.0))
            hub.close("early")
            hub.open("live")
            hub.publish(CallStarted(call_id="live", protocol="plain"))
            for seq in range(1, 301):  # more than one publish batch
                hub.publish(final("live", seq))
            whole_call(hub, "one")
            whole_call(hub, "dos")
        forgotten = "one" not in hub.calls
        await asyncio.sleep(1.0)
        link.heal()
        await until(lambda: _stream_lengths(client, bus, ["live", "one", "dos"], [301, 3, 3]), "the backlog sent")
        await bus.close()
        early = await client.xlen(bus.log_key("early"))
        ttls = [await client.ttl(bus.log_key(c)) for c in ("early", "one", "dos", "live")]
        last = await client.xrevrange(bus.log_key("live"), count=1)
        live = await client.hgetall(bus.live_key)
        await client.aclose()
        await link.close()
        return [e for e in logs if e["event"] == "bus.dropped"], forgotten, early, ttls, last[0][0], live

    dropped, forgotten, early, ttls, last_id, live = asyncio.run(run())
    assert [(e["call_id"], e["events"], e["log_level"]) for e in dropped] == [("early", 2, "warning")]
    assert early == 1  # what Redis had before the outage, no gap after it
    assert forgotten  # the hub kept one ended call ("dos"); the bus still published "one"
    assert all(ttl > 0 for ttl in ttls[:3]) and ttls[3] == -1  # the ended calls' closes went out
    assert last_id == "301-0"
    assert live == {"live": f"{prefix}-a"}


async def _stream_lengths(client: redis.asyncio.Redis, bus: RedisEventBus, call_ids: list[str],
                          lengths: list[int]) -> bool:
    return [await client.xlen(bus.log_key(c)) for c in call_ids] == lengths


def test_the_hub_appends_mirrored_events_in_order_only():
    """A mirror keeps the holder's numbering: repeats are skipped and a gap stops the rest."""
    hub = EventHub()
    seen: list[int] = []
    hub.add_listener(lambda e: seen.append(e.seq))
    hub.open("m", origin="node-b")
    started = CallStarted(call_id="m", protocol="plain", seq=1)
    ended = CallEnded(call_id="m", t=1.0, reason="stop", duration=1.0, seq=2)
    later = CallEnded(call_id="m", t=1.0, reason="stop", duration=1.0, seq=4)
    assert hub.append("m", [started, started, ended, later]) == 2
    assert hub.append("m", [ended]) == 0
    assert hub.append("unknown", [started]) == 0
    assert seen == [1, 2] and hub.last_seq("m") == 2 and hub.calls["m"].origin == "node-b"
    assert hub.last_seq("unknown") == 0


class Link:
    """A TCP relay to Redis that the test can cut (every connection dropped, new ones refused) and heal."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.down = False
        self.db = "0"
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    @classmethod
    async def open(cls, url: str) -> Link:
        parsed = urlparse(url)
        link = cls(parsed.hostname or "127.0.0.1", parsed.port or 6379)
        link.db = parsed.path.strip("/") or "0"
        link.server = await asyncio.start_server(link._relay, "127.0.0.1", 0)
        return link

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/{self.db}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    def cut(self) -> None:
        self.down = True
        for writer in self.writers:
            writer.close()

    def heal(self) -> None:
        self.down = False

    async def close(self) -> None:
        self.cut()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def test_a_bus_on_an_unreachable_redis_fails_at_startup():
    async def run():
        bus = RedisEventBus(EventHub(), "redis://127.0.0.1:1/0")
        try:
            await bus.start()
        finally:
            await bus.redis.aclose()

    with pytest.raises(redis.ConnectionError):
        asyncio.run(run())


def test_mirrored_events_reach_local_listeners_but_are_never_republished(redis_url, prefix):
    """Node b's own listeners (dashboard, metrics) see a's call; b writes nothing of it back to Redis."""

    async def run():
        hub_a, hub_b = EventHub(), EventHub()
        seen_on_b: list[tuple[int, str]] = []
        hub_b.add_listener(lambda e: seen_on_b.append((e.seq, e.type)))
        a = RedisEventBus(hub_a, redis_url, prefix, f"{prefix}-a")
        b = RedisEventBus(hub_b, redis_url, prefix, f"{prefix}-b")
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        channel = client.pubsub()
        await channel.subscribe(a.channel)
        await a.start()
        await b.start()
        hub_a.open("once")
        hub_a.publish(CallStarted(call_id="once", protocol="plain"))
        hub_a.publish(CallEnded(call_id="once", t=1.0, reason="stop", duration=1.0))
        hub_a.close("once")
        await until(lambda: _closed(hub_b, "once"), "node b to mirror the whole call")
        await a.close()
        await b.close()  # flushes anything b would have published
        senders = []
        while (message := await channel.get_message(timeout=0.5)) is not None:
            if message["type"] == "message":
                senders.append((json.loads(message["data"])["node"], json.loads(message["data"])["kind"]))
        stored = await client.xlen(a.log_key("once"))
        ttl = await client.ttl(a.log_key("once"))
        live = await client.hgetall(a.live_key)
        await channel.aclose()
        await client.aclose()
        return seen_on_b, senders, stored, ttl, live

    seen_on_b, senders, stored, ttl, live = asyncio.run(run())
    assert seen_on_b == [(1, "call.started"), (2, "call.ended")]
    assert senders == [(f"{prefix}-a", "event"), (f"{prefix}-a", "event"), (f"{prefix}-a", "close")]
    assert stored == 2
    assert 0 < ttl <= Settings().distributed.redis_log_ttl_s
    assert live == {}


async def _row(rows: Awaitable[list[dict]], call_id: str) -> dict | None:
    return next((row for row in await rows if row["call_id"] == call_id), None)


async def _has_final(events: list[dict]) -> bool:
    return any(e["type"] == "transcript.final" for e in events)


async def _at_least(log_: Awaitable[list[dict] | dict], n: int) -> bool:
    events = await log_
    return isinstance(events, list) and len(events) >= n


async def _ended_log(http: httpx.AsyncClient, service: RunningService, call_id: str, n: int) -> list[dict] | None:
    events = await get(http, service, f"/calls/{call_id}/log")
    calls = await get(http, service, "/calls")
    return events if len(events) >= n and not [c for c in calls if c["call_id"] == call_id] else None


async def _closed(hub: EventHub, call_id: str) -> bool:
    return call_id in hub.calls and not hub.calls[call_id].live


async def _has(hub: EventHub, call_id: str, n: int) -> bool:
    return call_id in hub.calls and len(hub.calls[call_id].events) >= n


async def _start_and_close_code(url: str, call_id: str) -> tuple[int, str]:
    start = {"event": "start", "call_id": call_id, "encoding": "pcm16", "sample_rate": 16000,
             "channels": ["agent", "debtor"]}
    async with websockets.connect(f"{url}/ingest/plain") as ws:
        await ws.send(json.dumps(start))
        try:
            await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("the duplicate call was accepted")


def _kill_connections(admin: redis.Redis, names: list[str]) -> int:
    """Drop these clients' connections server-side, as a network blip would (the data stays)."""
    killed = 0
    for client in admin.client_list():
        if client.get("name") in names:
            killed += admin.client_kill_filter(_id=client["id"])
    return killed
