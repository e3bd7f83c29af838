"""Call outcomes to the tenant's systems: signed webhooks from a durable outbox in the database.

When a call held by this front end ends, its outcome (category, promise to pay, dispute, hardship,
cease request, QA score and gate, compliance breaches, account facts, after-call summary) is written to
the outbox as `call.completed`; `promise_to_pay.captured` is written as soon as a promise with its amount
and date is heard (assist/live_promise.py), or at the end when only the end's categorisation finds it.
A worker POSTs each to the tenant's `webhook_url`, signed
`X-Recobra-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with `X-Recobra-Event-Id`, and
retries with exponential backoff (each wait as long as the delivery is old: `webhook_backoff_s`, then
doubling up to `webhook_backoff_max_s`) until it gets a 2xx or `webhook_give_up_s` has passed. Rows
survive restarts; front ends claim a row by its attempt count, so each attempt is made by one of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import structlog
from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assist.events import AccountUpdated, CallEnded, EventBase, QaScore, TranscriptFinal
from assist.live_promise import promise_so_far
from assist.qa.calldata import standing_warnings
from assist.settings import Settings, Tenant
from assist.storage.db import Database
from assist.storage.repository import utc
from assist.storage.tables import WebhookDelivery
from assist.summary import after_call_summary

log = structlog.get_logger(__name__)
BATCH = 16
USER_AGENT = "Recobra-Webhooks/1"


def signature(secret: str, timestamp: int, body: str) -> str:
    """The X-Recobra-Signature header value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _outcomes(category: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    return {o["code"]: o for o in (category or {}).get("outcomes", [])}


def _promise(outcomes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    found = outcomes.get("promise_to_pay") or outcomes.get("payment_plan")
    if found is None:
        return None
    details = found.get("details", {})
    return {"kind": found["code"], **{k: details.get(k) for k in ("amount", "currency", "date", "method")}}


def call_outcome(call_id: str, events: Iterable[EventBase]) -> dict[str, Any]:
    """What the call achieved, from its event log (the call's last events: call.ended, qa.score)."""
    events = list(events)
    ended = next((e for e in reversed(events) if isinstance(e, CallEnded)), None)
    qa = next((e for e in reversed(events) if isinstance(e, QaScore)), None)
    facts = next((e.facts for e in reversed(events) if isinstance(e, AccountUpdated)), None)
    category = qa.category if qa else None
    card = qa.scorecard if qa else {}
    outcomes = _outcomes(category)
    dispute = outcomes.get("dispute")
    warnings = standing_warnings([e.model_dump(mode="json") for e in events], lambda p: p)
    return {
        "call_id": call_id,
        "ended_at": ended.at.isoformat() if ended else None,
        "end_reason": ended.reason if ended else None,
        "duration": ended.duration if ended else None,
        "category": {"contact": category.get("contact"), "primary": category.get("primary"),
                     "outcomes": list(outcomes)} if category else None,
        "promise": _promise(outcomes),
        "dispute": {"kind": dispute.get("details", {}).get("kind")} if dispute else None,
        "hardship": [c for c in outcomes if c.startswith("hardship_") or c == "vulnerability"],
        "cease_request": "cease_contact" in outcomes,
        "qa": {"score": card.get("score"), "band": card.get("band"), "compliance_fail": card.get("compliance_fail"),
               "gate": [{"id": g["id"], "result": g["result"]} for g in card.get("gate", [])]} if qa else None,
        "compliance_breaches": sorted({w["rule_id"] for w in warnings}),
        "account_facts": facts,
        "summary": after_call_summary(events),
    }


ONCE_PER_CALL = ("call.completed", "promise_to_pay.captured")
"""Kinds sent once per call: their event id follows from (tenant, call, kind), so a second write is refused."""


def outcome_items(call_id: str, events: list[EventBase], promise_sent: bool = False) -> list[tuple[str, dict]]:
    """The webhooks of an ended call: its promise to pay (unless one went out live) and call.completed."""
    outcome = call_outcome(call_id, events)
    kinds = (["promise_to_pay.captured"] if outcome["promise"] and not promise_sent else []) + ["call.completed"]
    return [(k, outcome) for k in kinds]


def deliveries(tenant: str, call_id: str | None, items: list[tuple[str, dict[str, Any]]]) -> list[WebhookDelivery]:
    """Outbox rows for the items, due now."""
    now = datetime.now(UTC)
    rows = []
    for event, data in items:
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"recobra:{tenant}:{call_id}:{event}")
                       if call_id is not None and event in ONCE_PER_CALL else uuid.uuid4())
        body = json.dumps({"id": event_id, "type": event, "created_at": now.isoformat(), "tenant": tenant,
                           "data": data}, separators=(",", ":"), sort_keys=True)
        rows.append(WebhookDelivery(id=event_id, tenant=tenant, call_id=call_id, event=event, body=body,
                                    status="pending", attempts=0, created_at=now, queued_at=now, next_attempt_at=now))
    return rows


def add_once(s: Session, row: WebhookDelivery) -> bool:
    """Add the row to the session's transaction unless the outbox has it already."""
    if s.get(WebhookDelivery, row.id) is not None:
        return False
    s.add(row)
    s.flush()
    return True


class Outbox:
    """The webhook outbox: `enqueue` rows, a worker delivers them; `close` waits for writes in flight."""

    def __init__(self, settings: Settings, db: Database, tenants: Mapping[str, Tenant]) -> None:
        self.settings, self.db, self.tenants = settings, db, tenants
        self._wake = asyncio.Event()
        self._writes: set[asyncio.Task] = set()
        self._promised: set[str] = set()  # calls whose promise went out live
        self._client = httpx.AsyncClient(timeout=settings.webhooks.webhook_timeout_s, follow_redirects=False,
                                         headers={"User-Agent": USER_AGENT})
        self._task = asyncio.create_task(self._run())

    def _target(self, tenant: str | None) -> Tenant | None:
        target = self.tenants.get(tenant) if tenant else None
        return target if target is not None and target.webhook_url else None

    def _spawn(self, tenant: str, call_id: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        task = asyncio.create_task(self.enqueue(tenant, call_id, items))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def call_event(self, event: EventBase, tenant: str | None, events: list[EventBase]) -> None:
        """A live event of a call this node holds: a final may complete a promise to pay (sent at once)."""
        if not isinstance(event, TranscriptFinal) or event.call_id in self._promised:
            return
        if (target := self._target(tenant)) is None or (promise := promise_so_far(event.call_id, events)) is None:
            return
        self._promised.add(event.call_id)
        self._spawn(target.id, event.call_id,
                    [("promise_to_pay.captured", {"call_id": event.call_id, "promise": promise, "live": True})])

    def summary_edited(self, tenant: str, call_id: str, lines: list[dict[str, Any]], editor: str) -> None:
        """An ended call's summary was rewritten: the new lines go out as `call.summary_edited`."""
        if (target := self._target(tenant)) is not None:
            self._spawn(target.id, call_id, [("call.summary_edited", {"call_id": call_id, "lines": lines,
                                                                       "edited_by": editor})])

    def call_closed(self, call_id: str, tenant: str | None, events: list[EventBase]) -> None:
        """Queue the outcome webhooks of a call this node held (from the hub's close listener)."""
        live = call_id in self._promised
        self._promised.discard(call_id)
        if (target := self._target(tenant)) is not None:
            self._spawn(target.id, call_id, outcome_items(call_id, events, promise_sent=live))

    async def enqueue(self, tenant: str, call_id: str | None, items: list[tuple[str, dict[str, Any]]]) -> list[str]:
        """Write webhooks to the outbox, each in its own transaction; the event ids of those written (a call's
        outcome already queued, e.g. by the node that recovered the call, is not queued again)."""
        rows = deliveries(tenant, call_id, items)

        def write() -> list[str]:
            written = []
            for row in rows:
                try:
                    with self.db.session() as s:
                        if add_once(s, row):
                            written.append(row.id)
                except IntegrityError:  # another node wrote the same outcome at the same moment
                    pass
            return written

        written = await asyncio.to_thread(write)
        log.info("webhook.queued", tenant=tenant, call_id=call_id, events=[r.event for r in rows if r.id in written])
        self._wake.set()
        return written

    def wake(self) -> None:
        """Look for due deliveries now (a redelivery was asked for)."""
        self._wake.set()

    async def close(self) -> None:
        """Finish queued writes, stop the worker (undelivered rows stay for the next start)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                due = await asyncio.to_thread(self._claim_due)
                if due:
                    await asyncio.gather(*(self._attempt(row) for row in due))
                    continue
            except Exception:  # a database hiccup must not stop deliveries for good
                log.exception("webhook.worker_failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.webhooks.webhook_poll_s)
            except TimeoutError:
                pass

    def _claim_due(self) -> list[dict[str, Any]]:
        """Due rows this node claims: attempts bumped where no other node bumped them first."""
        now = datetime.now(UTC)
        lease = now + timedelta(seconds=self.settings.webhooks.webhook_timeout_s + 30)
        claimed = []
        with self.db.session() as s:
            rows = s.execute(select(WebhookDelivery.id, WebhookDelivery.attempts)
                             .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                             .order_by(WebhookDelivery.next_attempt_at).limit(BATCH)).all()
            for event_id, attempts in rows:
                won = s.execute(update(WebhookDelivery)
                                .where(WebhookDelivery.id == event_id, WebhookDelivery.attempts == attempts,
                                       WebhookDelivery.status == "pending")
                                .values(attempts=attempts + 1, next_attempt_at=lease, last_attempt_at=now))
                if cast(CursorResult, won).rowcount == 1:
                    row = s.get_one(WebhookDelivery, event_id)
                    claimed.append({"id": row.id, "tenant": row.tenant, "body": row.body, "attempts": attempts + 1,
                                    "queued_at": utc(row.queued_at), "event": row.event})
        return claimed

    async def _attempt(self, row: dict[str, Any]) -> None:
        status, error = await self._post(row)
        ok = status is not None and 200 <= status < 300
        now = datetime.now(UTC)
        age = (now - row["queued_at"]).total_seconds()
        policy = self.settings.webhooks
        delay = min(max(policy.webhook_backoff_s, age), policy.webhook_backoff_max_s)  # doubles the age
        state = "delivered" if ok else "failed" if age + delay > policy.webhook_give_up_s else "pending"
        values: dict[str, Any] = {"status": state, "last_status": status, "last_error": error and error[:256],
                                  "next_attempt_at": now + timedelta(seconds=0 if ok else delay)}
        if ok:
            values["delivered_at"] = now

        def write() -> None:
            with self.db.session() as s:
                s.execute(update(WebhookDelivery).where(WebhookDelivery.id == row["id"]).values(**values))

        await asyncio.to_thread(write)
        log.info("webhook.attempt", id=row["id"], tenant=row["tenant"], kind=row["event"], attempt=row["attempts"],
                 status=status, error=error, state=state, retry_in_s=None if state != "pending" else delay)

    async def _post(self, row: dict[str, Any]) -> tuple[int | None, str | None]:
        """(HTTP status or None, error text or None) of one POST to the tenant's webhook now."""
        tenant = self.tenants.get(row["tenant"])
        if tenant is None or not tenant.webhook_url or tenant.webhook_secret is None:
            return None, "the tenant has no webhook configured"
        body = row["body"]
        headers = {"Content-Type": "application/json", "X-Recobra-Event-Id": row["id"],
                   "X-Recobra-Signature": signature(tenant.webhook_secret.get_secret_value(), int(time.time()), body)}
        try:
            response = await self._client.post(tenant.webhook_url, content=body.encode(), headers=headers)
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        return response.status_code, None if response.is_success else f"HTTP {response.status_code}"


def list_deliveries(db: Database, tenant: str | None, status: str | None, call_id: str | None,
                    limit: int, offset: int) -> list[WebhookDelivery]:
    """The tenant's deliveries (every tenant's for `None`: development mode), newest first."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
    for column, value in ((WebhookDelivery.tenant, tenant), (WebhookDelivery.status, status),
                          (WebhookDelivery.call_id, call_id)):
        if value is not None:
            query = query.where(column == value)
    with db.session() as s:
        rows = list(s.scalars(query.limit(limit).offset(offset)))
        s.expunge_all()
    return rows


def redeliver(db: Database, tenant: str | None, event_id: str) -> WebhookDelivery | None:
    """Queue a delivery again at once (same event id and body); None when the tenant has no such one."""
    now = datetime.now(UTC)
    with db.session() as s:
        row = s.get(WebhookDelivery, event_id)
        if row is None or (tenant is not None and row.tenant != tenant):
            return None
        row.status, row.next_attempt_at, row.queued_at = "pending", now, now
        s.flush()
        s.expunge(row)
    return row

