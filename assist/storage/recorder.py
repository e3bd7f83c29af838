"""Writes a live call to the database as it happens, on one writer thread off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from assist.events import CallEnded, CallStarted, EventBase
from assist.privacy import Redactor
from assist.storage import repository as repo
from assist.storage.db import DEFAULT_URL, Database

T = TypeVar("T")


class Recorder:
    """Persists every event of every call; scores and categorises a call when it ends.

    All database work runs in order on a single worker thread; each method returns once its write
    is committed, so a caller that awaits it never loses what it recorded. At most `max_pending`
    writes wait for the thread at once: further callers wait their turn (back-pressure, no loss).
    """

    def __init__(
        self, database_url: str = DEFAULT_URL, redactor: Redactor | None = None, max_pending: int = 256
    ) -> None:
        self.database_url = database_url
        self.redactor = redactor or Redactor()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recobra-db")
        self._slots = asyncio.Semaphore(max_pending)
        self.in_flight = 0
        """Writes handed to the database thread and not yet committed (at most max_pending)."""
        self.peak_in_flight = 0
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("Recorder.start() was not awaited")
        return self._db

    async def _run(self, fn: Callable[[Session], T]) -> T:
        def work() -> T:
            with self.db.session() as s:
                return fn(s)

        async with self._slots:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                return await asyncio.get_running_loop().run_in_executor(self._pool, work)
            finally:
                self.in_flight -= 1

    async def start(self) -> Database:
        """Open the database and apply migrations; returns it (put it on app.state.db for the QA API)."""
        loop = asyncio.get_running_loop()
        self._db = await loop.run_in_executor(self._pool, Database, self.database_url)
        return self._db

    def _payload(self, event: EventBase) -> dict[str, Any]:
        return self.redactor.payload(event.model_dump(mode="json"))

    async def call_started(self, event: CallStarted) -> None:
        payload = self._payload(event)

        def work(s: Session) -> None:
            repo.ensure_call(s, event.call_id, event.at, event.protocol, event.metadata,
                             event.metadata.get("language"))
            repo.add_event(s, event.call_id, payload)

        await self._run(work)

    async def record(self, event: EventBase) -> None:
        """Store any event (duplicates by call_id + seq are ignored)."""
        payload = self._payload(event)

        def work(s: Session) -> None:
            repo.ensure_call(s, event.call_id, event.at)
            repo.add_event(s, event.call_id, payload)

        await self._run(work)

    async def record_batch(self, events: list[EventBase]) -> None:
        """Store events of one call in one transaction (duplicates by call_id + seq are ignored)."""
        if not events:
            return
        payloads = [self._payload(e) for e in events]
        first = events[0]

        def work(s: Session) -> None:
            repo.ensure_call(s, first.call_id, first.at)
            for payload in payloads:
                repo.add_event(s, first.call_id, payload)

        await self._run(work)

    async def call_ended(self, event: CallEnded) -> dict[str, Any]:
        """Store the end, then score and categorise; returns {"scorecard": ..., "category": ...}."""
        payload = self._payload(event)

        def work(s: Session) -> dict[str, Any]:
            repo.ensure_call(s, event.call_id, event.at)
            repo.add_event(s, event.call_id, payload)
            repo.end_call(s, event.call_id, "ended", event.reason, event.duration)
            return repo.score_and_store(s, event.call_id)

        return await self._run(work)

    async def recover_interrupted(self) -> list[str]:
        """Mark calls left active by a stopped service as interrupted and score what was said."""

        def work(s: Session) -> list[str]:
            ids = repo.unfinished_call_ids(s)
            for call_id in ids:
                repo.end_call(s, call_id, "interrupted", "service stopped", None)
                repo.score_and_store(s, call_id)
            return ids

        return await self._run(work)

    async def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._db is not None:
            self._db.close()
