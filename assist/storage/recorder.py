"""Writes a live call to the database as it happens, on one writer thread off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy.orm import Session

from assist.events import CallEnded, CallStarted, EventBase, TranscriptFinal, TranscriptPartial
from assist.privacy import Redactor, SaidBefore
from assist.storage import nodes
from assist.storage import repository as repo
from assist.storage.db import DEFAULT_URL, Database
from assist.storage.tables import Call

if TYPE_CHECKING:
    from assist.ruleset import RuleSet

T = TypeVar("T")
log = structlog.get_logger(__name__)
_DIGIT = re.compile(r"\d")
"""Masked in stored interims: the final that replaces an interim is redacted by the detectors."""


class Recorder:
    """Persists every event of every call; scores and categorises a call when it ends.

    All database work runs in order on a single worker thread; each method returns once its write
    is committed, so a caller that awaits it never loses what it recorded. At most `max_pending`
    writes wait for the thread at once: further callers wait their turn (back-pressure, no loss).

    The calls it starts are stamped with `node_id`; from `start()` to `close()` it holds that node's
    lease (renewed every `heartbeat_s`, valid `node_ttl_s`) and, on the same beat, ends and scores the
    calls of nodes whose lease ran out (`assist.storage.nodes`).
    """

    def __init__(
        self, database_url: str = DEFAULT_URL, redactor: Redactor | None = None, max_pending: int = 256,
        node_id: str = "", heartbeat_s: float = 5.0, node_ttl_s: float = 30.0, rules: RuleSet | None = None,
    ) -> None:
        self.database_url = database_url
        self.rules = rules
        """The rules calls are scored by (the service's RuleSet; None: the packaged rules)."""
        self.redactor = redactor or Redactor()
        self._said = SaidBefore()
        self.node_id = node_id or nodes.default_node_id()
        self.heartbeat_s = heartbeat_s
        self.node_ttl_s = node_ttl_s
        self._heartbeat: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recobra-db")
        self._lease_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recobra-lease")
        self._slots = asyncio.Semaphore(max_pending)
        self.in_flight = 0
        """Writes handed to the database thread and not yet committed (at most max_pending)."""
        self.peak_in_flight = 0
        self._db: Database | None = None
        self.on_recovered: Callable[[Session, str, str], None] | None = None
        """Called with (session, call id, end reason) in the transaction that claims a left-open call."""

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
        """Open the database, apply migrations, take this node's lease and keep it in the background;
        returns the database (put it on app.state.db for the QA API)."""
        loop = asyncio.get_running_loop()
        self._db = await loop.run_in_executor(self._pool, Database, self.database_url)
        await self._run(lambda s: nodes.renew(s, self.node_id, self.node_ttl_s))
        self._heartbeat = asyncio.create_task(self._keep_lease(), name="recorder-lease")
        return self._db

    async def _keep_lease(self) -> None:
        """Renew the lease and recover lost nodes' calls every heartbeat, on a thread of its own (a busy
        writer never delays the lease); a failed beat is logged and retried on the next."""
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await asyncio.get_running_loop().run_in_executor(self._lease_pool, self._beat)
            except Exception as error:  # noqa: BLE001 - the database may be down for a while; keep beating
                log.warning("recorder.heartbeat_failed", node=self.node_id, error=str(error))

    def _beat(self) -> None:
        with self.db.session() as s:
            nodes.renew(s, self.node_id, self.node_ttl_s)
        recovered = self._recover(own=False)
        if recovered:
            log.warning("calls.recovered", node=self.node_id, calls=recovered)

    def _payload(self, event: EventBase) -> dict[str, Any]:
        """The event as stored: redacted (a final read after the finals just before it), interims' digits masked."""
        context = ""
        if isinstance(event, TranscriptFinal):
            context = self._said.context(event.call_id, event.start, event.end, event.text)
        payload = self.redactor.payload(event.model_dump(mode="json"), context)
        if isinstance(event, TranscriptPartial):  # an interim may hold half a number no detector can classify
            for key in ("text", "stable_text"):
                payload[key] = _DIGIT.sub("#", payload[key])
            for word in payload["words"]:
                word["text"] = _DIGIT.sub("#", word["text"])
        return payload

    async def call_started(self, event: CallStarted) -> None:
        payload = self._payload(event)

        def work(s: Session) -> None:
            call = repo.ensure_call(s, event.call_id, event.at, event.protocol, event.metadata,
                                    event.metadata.get("language"))
            call.node_id = self.node_id
            repo.add_event(s, event.call_id, payload)

        await self._run(work)

    async def record(self, event: EventBase) -> None:
        """Store any event (duplicates by call_id + seq are ignored)."""
        payload = self._payload(event)

        def work(s: Session) -> None:
            self._ensure(s, event)
            repo.add_event(s, event.call_id, payload)

        await self._run(work)

    async def record_batch(self, events: list[EventBase]) -> None:
        """Store events of one call in one transaction (duplicates by call_id + seq are ignored)."""
        if not events:
            return
        payloads = [self._payload(e) for e in events]
        first = events[0]

        def work(s: Session) -> None:
            self._ensure(s, first)
            for payload in payloads:
                repo.add_event(s, first.call_id, payload)

        await self._run(work)

    async def call_ended(self, event: CallEnded) -> dict[str, Any]:
        """Store the end, then score and categorise; returns {"scorecard": ..., "category": ...}."""
        payload = self._payload(event)
        self._said.forget(event.call_id)

        def work(s: Session) -> dict[str, Any]:
            repo.ensure_call(s, event.call_id, event.at)
            repo.add_event(s, event.call_id, payload)
            repo.end_call(s, event.call_id, "ended", event.reason, event.duration)
            return repo.score_and_store(s, event.call_id, self.rules)

        return await self._run(work)

    def _ensure(self, s: Session, event: EventBase) -> Call:
        call = repo.ensure_call(s, event.call_id, event.at)
        call.node_id = call.node_id or self.node_id
        return call

    async def recover_interrupted(self) -> list[str]:
        """At start-up: mark the calls this node left open before it restarted, and those of nodes whose
        lease is gone, interrupted and score what was said (each call once, whichever node claims it)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._recover, True)

    def _recover(self, own: bool) -> list[str]:
        with self.db.session() as s:
            open_calls = nodes.left_open(s, self.node_id, own)
        recovered = []
        for call_id, node in open_calls:
            reason = nodes.OWN_REASON if node in (None, self.node_id) else nodes.LOST_REASON
            try:
                with self.db.session() as s:
                    if nodes.claim_and_score(s, call_id, reason, self.rules):
                        if self.on_recovered is not None:
                            self.on_recovered(s, call_id, reason)
                        recovered.append(call_id)
            except Exception:  # one call that cannot be scored stays open; the others are recovered
                log.exception("calls.recovery_failed", call_id=call_id, node=self.node_id)
        return recovered

    async def close(self) -> None:
        """Stop the heartbeat, give up the lease (what is still open may be recovered at once), close."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._lease_pool.shutdown(wait=True)
            try:
                await self._run(lambda s: nodes.release(s, self.node_id))
            except Exception as error:  # noqa: BLE001 - the lease then simply runs out
                log.warning("recorder.release_failed", node=self.node_id, error=str(error))
        self._pool.shutdown(wait=True)
        if self._db is not None:
            self._db.close()
