"""The shared inference queue: priorities, stale-interim replacement, batching window and per-call lag.

Thread-safe, so requests may come from any event loop or thread and be served by worker threads.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

LAG_FORGET_S = 60.0  # a call with no request for this long is dropped from `lag()`


class Priority(IntEnum):
    """Served lowest first: finals, then interims, then post-call work."""

    FINAL = 0
    INTERIM = 1
    POST_CALL = 2


def waits_by_call(submitted: Iterable[tuple[str, float]], now: float, calls: Iterable[str] = ()) -> dict[str, float]:
    """Per call: seconds its oldest request, given as (call id, submitted), has waited; 0.0 for `calls`
    without one."""
    lag = dict.fromkeys(calls, 0.0)
    for call_id, at in submitted:
        if call_id:
            lag[call_id] = max(lag.get(call_id, 0.0), now - at)
    return lag


def count_by_priority(priorities: Iterable[Priority]) -> dict[str, int]:
    """Requests per priority name (final, interim, post_call), zeros included."""
    counts = dict.fromkeys((p.name.lower() for p in Priority), 0)
    for priority in priorities:
        counts[priority.name.lower()] += 1
    return counts


@dataclass(eq=False)
class Pending:
    """One queued request and how to hand its outcome (a result or an exception) back to the caller."""

    item: object
    priority: Priority
    deliver: Callable[[object], None]
    call_id: str = ""
    key: Hashable | None = None
    submitted: float = field(default_factory=time.monotonic)
    seq: int = 0


class RequestQueue:
    """Requests wait here until a worker takes a batch of them.

    A newer interim or a final with the same key (call, channel) replaces a queued interim, which is
    returned from `put` so that its caller can be told. An interim that has waited `interim_max_wait_s`
    ranks with the finals (in arrival order), so under load interims come less often instead of never.
    Post-call work is handed out one request at a time: a long post-call decode never holds every worker
    thread, so a live request always finds one free as soon as the decode in hand ends.
    `take` waits up to `window_s` after the oldest waiting request for more to arrive, unless a full
    batch is already waiting.
    """

    def __init__(self, interim_max_wait_s: float = float("inf")) -> None:
        self.interim_max_wait_s = interim_max_wait_s
        self._cond = threading.Condition()
        self._waiting: list[Pending] = []
        self._interims: dict[Hashable, Pending] = {}
        self._running: set[Pending] = set()
        self._seen: dict[str, float] = {}
        self._seq = itertools.count()
        self._closed = False

    def put(self, pending: Pending) -> Pending | None:
        """Queue `pending`; returns the stale interim it replaced, if any."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker is closed")
            stale = None
            if pending.key is not None and pending.priority <= Priority.INTERIM:
                stale = self._interims.pop(pending.key, None)
                if stale is not None:
                    self._waiting.remove(stale)
                if pending.priority == Priority.INTERIM:
                    self._interims[pending.key] = pending
            pending.seq = next(self._seq)
            self._waiting.append(pending)
            if pending.call_id:
                self._seen[pending.call_id] = pending.submitted
            self._cond.notify()
            return stale

    def take(self, max_items: int, window_s: float) -> list[Pending]:
        """Block until a batch is due; the most urgent `max_items` requests, or [] once closed."""
        with self._cond:
            while not self._closed:
                if ready := self._ready():
                    due = min(p.submitted for p in ready) + window_s
                    wait = due - time.monotonic()
                    if len(ready) >= max_items or wait <= 0:
                        break
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            if self._closed:
                return []
            now = time.monotonic()
            ready = sorted(self._ready(), key=lambda p: (self._rank(p, now), p.seq))
            batch = ready[:max_items]
            if any(p.priority == Priority.POST_CALL for p in batch):
                batch = [p for p in batch if p.priority != Priority.POST_CALL] or batch[:1]
            taken = set(batch)
            self._waiting = [p for p in self._waiting if p not in taken]
            for p in batch:
                if p.key is not None and self._interims.get(p.key) is p:
                    del self._interims[p.key]
            self._running.update(batch)
            return batch

    def _ready(self) -> list[Pending]:
        """Waiting requests that may be handed out now (post-call work only while none is running)."""
        if any(p.priority == Priority.POST_CALL for p in self._running):
            return [p for p in self._waiting if p.priority != Priority.POST_CALL]
        return self._waiting

    def _rank(self, pending: Pending, now: float) -> Priority:
        if pending.priority == Priority.INTERIM and now - pending.submitted >= self.interim_max_wait_s:
            return Priority.FINAL
        return pending.priority

    def done(self, batch: list[Pending]) -> None:
        with self._cond:
            self._running.difference_update(batch)
            self._cond.notify_all()  # post-call work may be handed out again

    def discard(self, pending: Pending) -> None:
        """Forget a request whose caller stopped waiting (e.g. its call ended)."""
        with self._cond:
            if pending in self._waiting:
                self._waiting.remove(pending)
                if pending.key is not None and self._interims.get(pending.key) is pending:
                    del self._interims[pending.key]

    def close(self) -> list[Pending]:
        """Stop handing out work; returns the requests that were still waiting."""
        with self._cond:
            self._closed = True
            left, self._waiting = self._waiting, []
            self._interims.clear()
            self._cond.notify_all()
            return left

    def lag(self) -> dict[str, float]:
        """Per call: seconds its oldest unfinished request has been waiting (0.0 when none is)."""
        now = time.monotonic()
        with self._cond:
            for call_id, last in list(self._seen.items()):
                if now - last > LAG_FORGET_S:
                    del self._seen[call_id]
            requests = itertools.chain(self._waiting, self._running)
            return waits_by_call(((p.call_id, p.submitted) for p in requests), now, self._seen)

    def depth(self) -> dict[str, int]:
        """Waiting requests per priority name."""
        with self._cond:
            return count_by_priority(p.priority for p in self._waiting)
