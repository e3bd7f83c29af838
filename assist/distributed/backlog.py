"""What a node still has to publish to Redis (assist/distributed/redis_bus.py), bounded.

No queue of events: per call with unsent work, its hub log and how much of it Redis has, so a live call
waits out a Redis outage whole, however long (the hub holds its log anyway). The bound is on ended calls:
beyond `max_ended` of them with unsent events, the oldest one's unsent events are dropped, logged as
`bus.dropped` (the call is still stored in the database; Redis keeps the prefix it had, with no gap). A
call's close is never dropped, so no node goes on mirroring it as live.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

import structlog

from assist.events import EventBase
from assist.hub import CallLog

log = structlog.get_logger(__name__)

MAX_ENDED = 200
"""Ended calls whose unsent events are kept while Redis is unreachable (the hub's own `keep_ended`)."""


@dataclass(frozen=True, slots=True)
class Closed:
    """A call's close notice, after its `events` events."""

    call_id: str
    events: int


@dataclass(frozen=True, slots=True)
class Mark:
    """What a batch holds of one call: its events up to `upto`, and its close when `close`."""

    call_id: str
    upto: int
    close: bool


@dataclass(slots=True)
class _Call:
    log: CallLog  # held even after the hub forgets the ended call
    sent: int  # events Redis has (or that were dropped)
    closed: bool = False


class Backlog:
    """This node's calls with work for Redis, oldest first."""

    def __init__(self, max_ended: int = MAX_ENDED) -> None:
        self.max_ended = max_ended
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._ready = asyncio.Event()  # set while there may be work
        self._drained = asyncio.Event()  # set while there is none
        self._drained.set()

    def event(self, log_: CallLog, seq: int) -> None:
        """Event `seq` of the call was published in this node's hub."""
        self._calls.setdefault(log_.call_id, _Call(log_, seq - 1))
        self._wake()

    def closed(self, log_: CallLog) -> None:
        """The call ended in this node's hub."""
        self._calls.setdefault(log_.call_id, _Call(log_, len(log_.events))).closed = True
        waiting = [(cid, c) for cid, c in self._calls.items() if c.closed and c.sent < len(c.log.events)]
        for call_id, call in waiting[:max(0, len(waiting) - self.max_ended)]:
            log.warning("bus.dropped", call_id=call_id, events=len(call.log.events) - call.sent,
                        max_ended=self.max_ended)
            call.sent = len(call.log.events)
        self._wake()

    def _wake(self) -> None:
        self._ready.set()
        self._drained.clear()

    async def take(self, limit: int) -> tuple[list[EventBase | Closed], list[Mark]]:
        """Wait for work, then up to `limit` events, oldest call first, each call's in order and its close
        after its last event. Nothing leaves the backlog until `sent` says Redis took it."""
        while True:
            await self._ready.wait()
            items: list[EventBase | Closed] = []
            marks: list[Mark] = []
            for call_id, call in self._calls.items():
                upto = min(len(call.log.events), call.sent + limit - len(items))
                items += call.log.events[call.sent:upto]
                close = call.closed and upto == len(call.log.events)
                if close:
                    items.append(Closed(call_id, upto))
                marks.append(Mark(call_id, upto, close))
                if len(items) >= limit:
                    break
            if marks:
                return items, marks
            self._ready.clear()
            self._drained.set()

    def sent(self, marks: list[Mark]) -> None:
        """Redis took a batch: a call with nothing left to send leaves the backlog (closed or not)."""
        for mark in marks:
            call = self._calls.get(mark.call_id)
            if call is None:
                continue
            call.sent = max(call.sent, mark.upto)
            if mark.close or (not call.closed and call.sent == len(call.log.events)):
                del self._calls[mark.call_id]

    async def drained(self) -> None:
        """Wait until Redis has everything."""
        await self._drained.wait()

    def unsent(self) -> tuple[int, int]:
        """(calls, events) still to send."""
        return len(self._calls), sum(len(c.log.events) - c.sent for c in self._calls.values())
