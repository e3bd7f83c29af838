"""Per-call event logs with sequence numbers, fanned out to subscribers with bounded queues; stored
calls' logs read back from the database; the `EventBus` seam between this node's hub and other nodes'."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from assist.events import EventBase
from assist.storage import repository as repo
from assist.storage.db import Database

SUBSCRIBER_QUEUE = 1000


class _Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[EventBase | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.overflowed = False
        self.closed = False

    def put(self, item: EventBase | None) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


@dataclass
class CallLog:
    """Every event of one call, in order; `seq` of event i is i + 1."""

    call_id: str
    events: list[EventBase] = field(default_factory=list)
    subscribers: set[_Subscriber] = field(default_factory=set)
    live: bool = True
    origin: str | None = None
    """The node holding the call when this hub mirrors it from another front end; None for its own calls."""


class SlowSubscriber(Exception):
    """A subscriber fell too far behind; it reconnects with `since` and loses nothing."""


class EventHub:
    """Keeps live calls' logs and the most recent ended ones, so a reconnect can resume."""

    def __init__(self, keep_ended: int = 200) -> None:
        self.calls: OrderedDict[str, CallLog] = OrderedDict()
        self.keep_ended = keep_ended
        self.listeners: list[Callable[[EventBase], None]] = []
        self.close_listeners: list[Callable[[str], None]] = []

    def add_listener(self, listener: Callable[[EventBase], None]) -> None:
        """Call `listener` (synchronously, on the event loop) with every event published on any call."""
        self.listeners.append(listener)

    def add_close_listener(self, listener: Callable[[str], None]) -> None:
        """Call `listener` (synchronously, on the event loop) with the id of every call that is closed."""
        self.close_listeners.append(listener)

    def open(self, call_id: str, origin: str | None = None) -> CallLog:
        """The call's log (created when new), live; `origin`: the node holding it, when this hub mirrors it."""
        log = self.calls.get(call_id)
        if log is None:
            log = self.calls[call_id] = CallLog(call_id)
        log.live = True
        log.origin = origin
        return log

    def publish(self, event: EventBase) -> EventBase:
        """Append an event of this node's call, numbered next, and deliver it."""
        log = self.calls[event.call_id]
        event = event.model_copy(update={"seq": len(log.events) + 1})
        self._deliver(log, event)
        return event

    def append(self, call_id: str, events: Iterable[EventBase]) -> int:
        """Append a mirrored call's events keeping their seq (another node numbered them) and deliver them:
        those already here are skipped, and the first that would leave a gap stops the rest. Returns how many
        were appended (none when the hub does not hold the call)."""
        log = self.calls.get(call_id)
        if log is None:
            return 0
        added = 0
        for event in events:
            if event.seq == len(log.events) + 1:
                self._deliver(log, event)
                added += 1
            elif event.seq > len(log.events):
                break
        return added

    def last_seq(self, call_id: str) -> int:
        """The seq of the call's latest event (0: none yet, or a call this hub does not hold)."""
        log = self.calls.get(call_id)
        return len(log.events) if log is not None else 0

    def _deliver(self, log: CallLog, event: EventBase) -> None:
        log.events.append(event)
        for sub in list(log.subscribers):
            sub.put(event)
            if sub.overflowed:
                log.subscribers.discard(sub)
        for listener in self.listeners:
            listener(event)

    def close(self, call_id: str) -> None:
        log = self.calls[call_id]
        log.live = False
        for sub in log.subscribers:
            sub.closed = True
            sub.put(None)
        for listener in self.close_listeners:
            listener(call_id)
        ended = [cid for cid, c in self.calls.items() if not c.live]
        for cid in ended[: max(0, len(ended) - self.keep_ended)]:
            del self.calls[cid]

    def live_calls(self) -> list[str]:
        return [cid for cid, c in self.calls.items() if c.live]

    async def subscribe(self, call_id: str, since: int = 0) -> AsyncIterator[EventBase]:
        """Yield events with seq > since, then live ones until the call ends."""
        log = self.calls.get(call_id)
        if log is None:
            raise KeyError(call_id)
        sub = _Subscriber()
        backlog = log.events[since:]
        if log.live:
            log.subscribers.add(sub)
        else:
            sub.closed = True
        try:
            for event in backlog:
                yield event
            last = backlog[-1].seq if backlog else since
            while not (sub.closed and sub.queue.empty()):
                if sub.overflowed and sub.queue.empty():
                    raise SlowSubscriber(f"subscriber fell behind; resume with since={last}")
                item = await sub.queue.get()
                if item is not None and item.seq > last:
                    last = item.seq
                    yield item
        finally:
            log.subscribers.discard(sub)


class EventBus(Protocol):
    """How this node's calls reach other front ends and theirs reach this hub: `LocalBus` in one process,
    `RedisEventBus` (assist/distributed/redis_bus.py) across nodes sharing a Redis."""

    async def start(self) -> None:
        """Connect, before the service takes requests (fails fast when the shared store is unreachable)."""
        ...

    async def close(self) -> None:
        """Deliver what is still unsent (bounded wait), then disconnect."""
        ...

    async def load(self, call_id: str) -> bool:
        """Whether the hub holds the call, after bringing it in from other nodes when it can."""
        ...

    def remote_calls(self) -> list[dict[str, Any]]:
        """Live calls held by other nodes, shaped like `GET /calls` rows plus the node."""
        ...


class LocalBus:
    """The `EventBus` of a single front end: its hub holds every call there is."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing left unsent."""

    async def load(self, call_id: str) -> bool:
        return call_id in self.hub.calls

    def remote_calls(self) -> list[dict[str, Any]]:
        return []


async def stored_events(db: Database, call_id: str, since: int = 0) -> list[dict[str, Any]] | None:
    """A stored call's event payloads after `since` (a call no longer in memory, e.g. after a restart);
    None when the database has no such call."""

    def read() -> list[dict[str, Any]] | None:
        with db.session() as s:
            return repo.event_payloads(s, call_id, since)

    return await asyncio.to_thread(read)
