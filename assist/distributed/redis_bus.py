"""Live events across front ends through Redis: each node publishes its own calls and mirrors the others'.

Redis layout (every name starts with the prefix, one per deployment):

- `{p}:events` pub/sub channel: every event as it happens, and a close notice when a call ends;
- `{p}:log:{call_id}` stream: the call's event log; entry id `{seq}-0`, so a retried write is refused
  instead of duplicated, and `?since=N` reads from `N+1-0`; expires `log_ttl_s` after the call ends;
- `{p}:live` hash: live call -> node holding it; `{p}:node:{node}`: a node's heartbeat.

Remote calls are mirrored into the local EventHub with their own sequence numbers, so event sockets,
`GET /calls` and hub listeners see every call. Pub/sub is the fast path; a reconcile against the live hash
and the streams (on connect and every RECONCILE_S) repairs whatever it missed: a late-joining node, a
dropped connection, a node that died without closing its calls.

What this node still has to publish waits in a bounded `Backlog` (assist/distributed/backlog.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any, cast

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from assist.distributed.backlog import MAX_ENDED, Backlog, Closed
from assist.distributed.redis_subscription import RETRY_MAX_S, RETRY_MIN_S, Message, RedisSubscription
from assist.events import EVENT_ADAPTER, CallStarted, EventBase, TranscriptBase
from assist.hub import EventHub
from assist.storage.nodes import default_node_id

log = structlog.get_logger(__name__)

RECONCILE_S = 2.0
"""How often a node refreshes its heartbeat and checks its mirrors against Redis."""
NODE_TTL_S = 10
"""A node silent for this long is gone: its calls are closed on every other node."""
PUBLISH_BATCH = 256
CLOSE_TIMEOUT_S = 5.0


class RedisEventBus:
    """Fans this node's call events out through Redis and mirrors every other node's calls locally."""

    def __init__(self, hub: EventHub, url: str, prefix: str = "recobra", node_id: str = "",
                 log_ttl_s: int = 3600, max_unsent_ended: int = MAX_ENDED) -> None:
        self.hub = hub
        self.node_id = node_id or default_node_id()
        self.prefix = prefix
        self.log_ttl_s = log_ttl_s
        # no hidden retries: a dropped connection surfaces here, so the reconnect can reconcile
        self.redis = Redis.from_url(url, decode_responses=True, retry=Retry(NoBackoff(), 0),
                                    health_check_interval=int(RECONCILE_S), client_name=f"recobra:{self.node_id}")
        self.remote: dict[str, str] = {}
        """Live remote calls mirrored here -> the node that holds each."""
        self.backlog = Backlog(max_unsent_ended)
        """This node's calls with events or a close not yet in Redis."""
        self._lock = asyncio.Lock()  # mirror updates: pub/sub messages, reconciles, on-demand loads
        self._orphaned: set[str] = set()  # mirrors closed because their node went silent
        self._publisher: asyncio.Task | None = None
        self._subscription = RedisSubscription(
            self.redis, "bus", channels=[self.channel], poll_s=RECONCILE_S, on_connect=self._resync,
            describe=lambda: {"node": self.node_id, "remote_calls": len(self.remote)}, drop_idle_connections=True)
        self._reconcile_due = 0.0
        hub.add_listener(self._on_local_event)
        hub.add_close_listener(self._on_local_close)

    @property
    def channel(self) -> str:
        return f"{self.prefix}:events"

    def log_key(self, call_id: str) -> str:
        return f"{self.prefix}:log:{call_id}"

    @property
    def live_key(self) -> str:
        return f"{self.prefix}:live"

    def node_key(self, node: str) -> str:
        return f"{self.prefix}:node:{node}"

    async def start(self) -> None:
        """Connect (fails fast when Redis is unreachable), then publish and mirror in the background."""
        await self.redis.ping()
        stale = [cid for cid, node in (await self._live()).items() if node == self.node_id]
        if stale:
            await self.redis.hdel(self.live_key, *stale)
        # subscribed, and every live remote call mirrored, before the service takes requests
        await self._subscription.start(self._on_pubsub)
        self._publisher = asyncio.create_task(self._run_publisher(), name="bus-publish")
        log.info("bus.started", node=self.node_id, prefix=self.prefix, remote_calls=len(self.remote))

    async def close(self) -> None:
        """Flush what this node still has to publish (bounded wait), then disconnect."""
        try:
            await asyncio.wait_for(self.backlog.drained(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            calls, events = self.backlog.unsent()
            log.warning("bus.unpublished", node=self.node_id, calls=calls, events=events)
        if self._publisher is not None:
            self._publisher.cancel()
            await asyncio.gather(self._publisher, return_exceptions=True)
        await self._subscription.close()
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self.node_key(self.node_id))
        await self.redis.aclose()

    def remote_calls(self) -> list[dict[str, Any]]:
        """Live calls held by other nodes, shaped like `GET /calls` rows plus the node; the language is the
        last transcript's (or the call's metadata's until one arrives)."""
        rows = []
        for call_id, node in self.remote.items():
            events = self.hub.calls[call_id].events
            started = next((e for e in events if isinstance(e, CallStarted)), None)
            language = next((e.language for e in reversed(events) if isinstance(e, TranscriptBase)),
                            started.metadata.get("language") if started else None)
            rows.append({"call_id": call_id, "protocol": started.protocol if started else None,
                         "t": events[-1].t if events else 0.0, "language": language, "node": node})
        return rows

    async def load(self, call_id: str) -> bool:
        """Bring a call this node has not seen (e.g. ended before it joined) in from Redis; False if unknown."""
        async with self._lock:
            if call_id in self.hub.calls:
                return True
            try:
                entries = await self.redis.xrange(self.log_key(call_id))
                node = cast("str | None", await self.redis.hget(self.live_key, call_id))  # decode_responses
            except RedisError as error:
                log.warning("bus.load_failed", call_id=call_id, error=str(error))
                return False
            if not entries:
                return False
            self.remote[call_id] = node or ""
            self.hub.open(call_id, origin=node or "")
            self.hub.append(call_id, _events(entries))
            if not node or node == self.node_id:
                self._close_mirror(call_id)
            return True

    # -- this node's calls -> Redis

    def _on_local_event(self, event: EventBase) -> None:
        log_ = self.hub.calls[event.call_id]
        if log_.origin is None:  # not a mirror of another node's call
            self.backlog.event(log_, event.seq)

    def _on_local_close(self, call_id: str) -> None:
        log_ = self.hub.calls[call_id]
        if log_.origin is None:
            self.backlog.closed(log_)

    async def _run_publisher(self) -> None:
        """A batch per round trip; a failed batch is retried until Redis takes it (stream ids dedupe)."""
        while True:
            batch, marks = await self.backlog.take(PUBLISH_BATCH)
            delay = RETRY_MIN_S
            while True:
                try:
                    await self._send(batch)
                    break
                except (RedisError, OSError) as error:
                    log.warning("bus.publish_retry", node=self.node_id, error=str(error), items=len(batch),
                                retry_in=delay)
                    await self._drop_idle_connections()
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, RETRY_MAX_S)
            self.backlog.sent(marks)

    async def _send(self, batch: list[EventBase | Closed]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        node = json.dumps(self.node_id)
        for item in batch:
            if isinstance(item, Closed):
                pipe.hdel(self.live_key, item.call_id)
                pipe.expire(self.log_key(item.call_id), self.log_ttl_s)
                pipe.publish(self.channel, json.dumps({"node": self.node_id, "kind": "close",
                                                       "call_id": item.call_id, "events": item.events}))
                continue
            data = item.model_dump_json()
            if isinstance(item, CallStarted):
                pipe.hset(self.live_key, item.call_id, self.node_id)
            pipe.xadd(self.log_key(item.call_id), {"e": data}, id=f"{item.seq}-0")
            pipe.publish(self.channel, f'{{"node":{node},"kind":"event","event":{data}}}')
        for result in await pipe.execute(raise_on_error=False):
            if isinstance(result, Exception) and "equal or smaller" not in str(result):
                raise result  # anything but "already written by an earlier try"

    async def _drop_idle_connections(self) -> None:
        """After a connection error the pool's idle connections are likely dead too: open fresh ones."""
        with contextlib.suppress(RedisError, OSError):
            await self.redis.connection_pool.disconnect(inuse_connections=False)

    # -- other nodes' calls -> this hub

    async def _resync(self) -> None:
        """On (re)subscribing: reconcile, so whatever was missed while not subscribed is caught up; what is
        published meanwhile waits in the subscription."""
        async with self._lock:
            await self._reconcile()
        self._reconcile_due = time.monotonic() + RECONCILE_S

    async def _on_pubsub(self, message: Message | None) -> None:
        """Mirror a message; reconcile every RECONCILE_S (a Redis error here reconnects the subscription)."""
        async with self._lock:
            if message is not None:
                await self._on_message(message["data"])
            if time.monotonic() >= self._reconcile_due:
                await self._reconcile()
                self._reconcile_due = time.monotonic() + RECONCILE_S

    async def _on_message(self, data: str) -> None:
        try:
            message = json.loads(data)
            if message["node"] == self.node_id:
                return
            if message["kind"] == "close":
                if message["call_id"] in self.remote:
                    await self._backfill([message["call_id"]])
                    self._close_mirror(message["call_id"])
                return
            event = EVENT_ADAPTER.validate_python(message["event"])
        except (ValueError, KeyError, TypeError) as error:
            log.warning("bus.bad_message", error=str(error), data=data[:200])
            return
        call_id = event.call_id
        if call_id not in self.remote and not self._adopt(call_id, message["node"], event.seq):
            return
        expected = self.hub.last_seq(call_id) + 1
        if event.seq == expected:
            self.hub.append(call_id, [event])
        elif event.seq > expected:
            await self._backfill([call_id])
            if self.hub.last_seq(call_id) < expected:  # Redis lost them (e.g. restarted empty)
                log.warning("bus.gap", call_id=call_id, missing_from=expected, got=event.seq)

    def _adopt(self, call_id: str, node: str, seq: int = 1) -> bool:
        """Start mirroring a remote call (again, if its node was only out of touch for a while); refused
        when this hub already has a call by that id."""
        existing = self.hub.calls.get(call_id)
        if existing is not None and call_id in self._orphaned:
            self._orphaned.discard(call_id)
            log.info("bus.node_back", call_id=call_id, node=node)
        elif existing is not None:
            if existing.live or seq > len(existing.events):
                log.warning("bus.call_id_clash", call_id=call_id, node=node, local_live=existing.live)
            return False
        self.remote[call_id] = node
        self.hub.open(call_id, origin=node)
        return True

    async def _live(self) -> dict[str, str]:
        """The live hash: call -> node (str: the client decodes responses, which redis-py's types omit)."""
        return cast(dict[str, str], await self.redis.hgetall(self.live_key))

    async def _reconcile(self) -> None:
        """Heartbeat and re-assert this node's calls; adopt and backfill every live remote call; close
        mirrors of ended calls and of calls whose node went silent."""
        await self.redis.set(self.node_key(self.node_id), "1", ex=NODE_TTL_S)
        own = [cid for cid in self.hub.live_calls() if cid not in self.remote]
        if own:
            await self.redis.hset(self.live_key, mapping=dict.fromkeys(own, self.node_id))
        live = {cid: node for cid, node in (await self._live()).items() if node != self.node_id}
        nodes = sorted(set(live.values()))
        pipe = self.redis.pipeline(transaction=False)
        for node in nodes:
            pipe.exists(self.node_key(node))
        alive = dict(zip(nodes, await pipe.execute(), strict=True))
        orphaned = [cid for cid, node in live.items() if not alive[node]]
        if orphaned:
            log.warning("bus.node_gone", calls=orphaned, nodes=sorted({live[c] for c in orphaned}))
            await self.redis.hdel(self.live_key, *orphaned)
        for cid, node in live.items():
            if alive[node] and cid not in self.remote:
                self._adopt(cid, node)
        ended = [cid for cid in self.remote if cid not in live or not alive[live[cid]]]
        await self._backfill(list(self.remote))
        for cid in ended:
            self._close_mirror(cid)
        self._orphaned = (self._orphaned | set(orphaned)) & set(self.hub.calls)

    async def _backfill(self, call_ids: list[str]) -> None:
        """Append what Redis has beyond each mirror's last event (one round trip for all)."""
        call_ids = [cid for cid in call_ids if cid in self.hub.calls]
        if not call_ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        for cid in call_ids:
            pipe.xrange(self.log_key(cid), min=f"{self.hub.last_seq(cid) + 1}-0")
        for cid, entries in zip(call_ids, await pipe.execute(), strict=True):
            if entries:
                self.hub.append(cid, _events(entries))

    def _close_mirror(self, call_id: str) -> None:
        self.remote.pop(call_id, None)
        log_ = self.hub.calls.get(call_id)
        if log_ is not None and log_.live:
            self.hub.close(call_id)


def _events(entries: list[Any]) -> list[EventBase]:
    """The events of a call's stream entries, (id, {"e": event json})."""
    return [EVENT_ADAPTER.validate_json(fields["e"]) for _, fields in entries]
