"""The end a recovered call never had: when a node claims a call left open by a lost (or restarted) node
(assist/storage/nodes.py), the claim's own transaction also stores the call's `call.ended` ("node lost" /
"service stopped") and `qa.score` events and queues its outcome webhooks; once it commits, `call.ended` goes
out on the Redis bus. The claim succeeds on one node only, so each happens once: the webhooks' ids follow
from (tenant, call, kind) as well, so a node that was only cut off and ends the call later queues nothing new.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

import structlog
from redis.exceptions import RedisError
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from assist.events import EVENT_ADAPTER, CallEnded, EventBase, QaScore, TranscriptFinal
from assist.settings import Tenant
from assist.storage import repository as repo
from assist.storage.tables import Call, QaResult
from assist.webhooks import add_once, deliveries, outcome_items
from streaming.types import Speaker

if TYPE_CHECKING:
    from assist.distributed.redis_bus import RedisEventBus

log = structlog.get_logger(__name__)
BUS_ATTEMPTS = 5


def _ended(call_id: str, reason: str, events: Sequence[EventBase]) -> CallEnded:
    """call.ended after the stored events, summarised as a live call's end summarises them."""
    finals = [e for e in events if isinstance(e, TranscriptFinal)]
    last = max((e.t for e in events), default=0.0)
    summary = {"utterances": {s.value: sum(1 for e in finals if e.speaker == s) for s in Speaker},
               "words": sum(len(e.words) for e in finals), "recovered": True}
    seq = max((e.seq for e in events), default=0) + 1
    return CallEnded(call_id=call_id, seq=seq, t=last, reason=reason, duration=last, summary=summary)


class RecoveredEnds:
    """Plugged into the Recorder (`on_recovered`): ends recovered calls in the claim's transaction, then on
    the bus (attached once it runs; ends recovered before are sent then)."""

    def __init__(self, tenants: Mapping[str, Tenant], on_bus: bool) -> None:
        self.tenants, self.on_bus = tenants, on_bus
        self._bus: RedisEventBus | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[str, CallEnded]] = []
        self._sending: set[asyncio.Future] = set()

    def in_claim(self, s: Session, call_id: str, reason: str) -> None:
        """In the transaction that claimed and scored the call (on a database thread)."""
        s.flush()  # the claim's score, written by the same transaction
        call = s.get_one(Call, call_id)
        stored = repo.event_payloads(s, call_id) or []
        events: list[EventBase] = [EVENT_ADAPTER.validate_python(p) for p in stored]
        ended = _ended(call_id, reason, events)
        result = s.get_one(QaResult, call_id)
        qa = QaScore(call_id=call_id, seq=ended.seq + 1, t=ended.t, scorecard=result.scorecard,
                     category=result.category)
        for e in (ended, qa):
            repo.add_event(s, call_id, e.model_dump(mode="json"))
        tenant = (call.meta or {}).get("tenant")
        target = self.tenants.get(tenant) if tenant else None
        if target is not None and target.webhook_url:
            queued = [row.event for row in deliveries(target.id, call_id, outcome_items(call_id, [*events, ended, qa]))
                      if add_once(s, row)]
            log.info("webhook.queued", tenant=target.id, call_id=call_id, events=queued, recovered=True)
        origin = call.node_id or ""
        sa_event.listen(s, "after_commit", lambda _s: self._committed(origin, ended), once=True)

    def _committed(self, origin: str, ended: CallEnded) -> None:
        loop = self._loop
        if not self.on_bus:
            return
        if self._bus is None or loop is None:
            self._waiting.append((origin, ended))
            return
        loop.call_soon_threadsafe(self._send, origin, ended)

    def _send(self, origin: str, ended: CallEnded) -> None:
        future = asyncio.ensure_future(self._publish(origin, ended))
        self._sending.add(future)
        future.add_done_callback(self._sending.discard)

    def attach(self, bus: RedisEventBus) -> None:
        """Send ends on `bus` from now on (on this event loop), and those recovered before it ran."""
        self._bus, self._loop = bus, asyncio.get_running_loop()
        waiting, self._waiting = self._waiting, []
        for origin, ended in waiting:
            self._send(origin, ended)

    async def close(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _publish(self, origin: str, ended: CallEnded) -> None:
        """call.ended at the end of the call's Redis log (which may hold events the database missed), then
        the close notice, both in the name of the node that held the call, as that node would have sent them."""
        bus = self._bus
        assert bus is not None
        key = bus.log_key(ended.call_id)
        for attempt in range(BUS_ATTEMPTS):
            try:
                last = cast(list[tuple[str, dict[str, str]]], await bus.redis.xrevrange(key, count=1))
                seq = max(ended.seq, int(last[0][0].split("-")[0]) + 1 if last else 0)
                if last and json.loads(last[0][1]["e"])["type"] == "call.ended":
                    return  # an earlier attempt got through
                data = ended.model_copy(update={"seq": seq}).model_dump_json()
                pipe = bus.redis.pipeline(transaction=True)
                pipe.xadd(key, {"e": data}, id=f"{seq}-0")
                pipe.publish(bus.channel, json.dumps({"node": origin, "kind": "event", "event": json.loads(data)}))
                pipe.hdel(bus.live_key, ended.call_id)
                pipe.expire(key, bus.log_ttl_s)
                pipe.publish(bus.channel, json.dumps({"node": origin, "kind": "close", "call_id": ended.call_id,
                                                      "events": seq}))
                await pipe.execute()
                log.info("recovery.call_ended", call_id=ended.call_id, node=origin, seq=seq)
                return
            except (RedisError, OSError) as error:
                log.warning("recovery.bus_failed", call_id=ended.call_id, error=str(error), attempt=attempt + 1)
                await asyncio.sleep(0.5 * 2**attempt)

