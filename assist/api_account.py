"""`PUT` / `PATCH` / `GET /calls/{call_id}/account`: the creditor's live account facts for a call.

Facts sent before the call starts wait for it (`account_facts_wait_s`, at most `account_facts_max_waiting`
calls); at the start they join the call's context, and during the call each change is applied at once
and published as an `account.updated` event. The tenant's X-API-KEY or a supervisor token may write;
an agent token reads its own call's facts.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from assist.account import (
    FACTS_KEY,
    AccountFacts,
    apply_to_context,
    describe_changes,
    dump,
    legacy_metadata,
    merge_patch,
)
from assist.analysis.fact_prompts import changed_cards, fact_cards, prompt_events
from assist.auth import Principal, principal_of
from assist.distributed.facts_relay import FactsRelay, RouteFailed
from assist.event_session import EventSession
from assist.events import AccountUpdated, CallEnded
from assist.ingest import CALL_ID
from assist.storage.db import Database
from assist.storage.tables import Call

log = structlog.get_logger(__name__)
router = APIRouter(tags=["account"])
WRITERS = ("dev", "integration", "supervisor")
Key = tuple[str | None, str]
"""(tenant, call id)."""


def writer(request: Request) -> Principal:
    """FastAPI dependency of the lender's writes (account facts, written conversations): the caller, when it
    holds the tenant's X-API-KEY or a supervisor token (anyone in development mode); 403 otherwise."""
    principal = principal_of(request)
    if principal.role not in WRITERS:
        raise HTTPException(403, "this is written with the tenant's X-API-KEY or a supervisor token")
    return principal


Writer = Annotated[Principal, Depends(writer)]


class AccountOut(BaseModel):
    call_id: str
    status: Literal["applied", "waiting"]
    facts: dict[str, Any]
    changed: list[str] = []


class FactsDesk:
    """Facts waiting for their call to start, per (tenant, call id), for a bounded time and number; with the
    Redis bus (`relay`), waiting facts live in Redis too, as bounded, where the node that starts the call
    takes them."""

    def __init__(self, wait_s: float, max_waiting: int) -> None:
        self.wait_s, self.max_waiting = wait_s, max_waiting
        self._waiting: OrderedDict[Key, tuple[float, dict[str, Any]]] = OrderedDict()
        self.relay: FactsRelay | None = None
        self._taking: set[asyncio.Task] = set()

    def _expire(self) -> None:
        now = time.monotonic()
        while self._waiting and (len(self._waiting) > self.max_waiting
                                 or next(iter(self._waiting.values()))[0] + self.wait_s < now):
            self._waiting.popitem(last=False)

    def waiting(self, key: Key) -> dict[str, Any] | None:
        self._expire()
        entry = self._waiting.get(key)
        return None if entry is None else entry[1]

    def hold(self, key: Key, facts: dict[str, Any]) -> None:
        self._waiting.pop(key, None)
        self._waiting[key] = (time.monotonic(), facts)
        self._expire()

    def start_metadata(self, tenant: str | None, call_id: str, meta: Mapping[str, Any]) -> dict[str, Any]:
        """The start metadata with waiting facts the rule packs read (account.time_barred...) merged in."""
        facts = self.waiting((tenant, call_id))
        if facts is None:
            return dict(meta)
        account = meta.get("account") if isinstance(meta.get("account"), Mapping) else None
        return {**meta, "account": legacy_metadata(facts, account)}

    def started(self, session: EventSession, tenant: str | None) -> None:
        """The new call takes the facts that waited for it here (published as its first account.updated),
        then, with the relay, those waiting in Redis when they differ (sent to another node, or changed since)."""
        self._expire()
        entry = self._waiting.pop((tenant, session.call_id), None)
        if entry is not None:
            publish(session, entry[1])
        if self.relay is not None:
            task = asyncio.create_task(self._take(self.relay, session, tenant))
            self._taking.add(task)
            task.add_done_callback(self._taking.discard)

    async def _take(self, relay: FactsRelay, session: EventSession, tenant: str | None) -> None:
        try:
            facts = await relay.take(tenant, session.call_id)
        except RedisError as error:
            log.warning("account.take_failed", call_id=session.call_id, error=str(error))
            return
        if facts is not None and facts != session.ctx.metadata.get(FACTS_KEY) and _open(session):
            publish(session, facts)


def publish(session: EventSession, facts: dict[str, Any]) -> list[str]:
    """Apply the facts to the live call's context and publish what changed with the cards the facts call for
    (the overlay drops the fact cards no longer listed), then the prompt cards the change makes new or
    different (assist/analysis/fact_prompts.py); the changed fields."""
    ctx, old = session.ctx, session.ctx.metadata.get(FACTS_KEY) or {}
    changed, changes = describe_changes(old, facts)
    apply_to_context(ctx, facts)
    in_force = [card.card_id for card in fact_cards(facts, ctx.language, ctx.jurisdiction)]
    session.emit(AccountUpdated(call_id=session.call_id, t=session.clock, facts=facts, changed=changed,
                                changes=changes, cards=in_force))
    cards = changed_cards(old, facts, ctx.language, ctx.jurisdiction)
    for card in prompt_events(session.call_id, session.clock, cards, ctx.language):
        session.emit(card)
    log.info("account.updated", call_id=session.call_id, changed=changed, cards=[c.card_id for c in cards])
    return changed


def _open(session: EventSession) -> bool:
    """The session can still take events (its call has not ended)."""
    log_ = session.hub.calls.get(session.call_id)
    return log_ is not None and log_.live and not any(isinstance(e, CallEnded) for e in log_.events[-2:])


def _live(state: Any, call_id: str) -> EventSession | None:
    """The call's session on this node while it can still take events."""
    session: EventSession | None = state.sessions.get(call_id)
    return session if session is not None and _open(session) else None


async def _forward(relay: FactsRelay, node: str, tenant: str | None, call_id: str, op: str,
                   body: dict[str, Any] | None) -> AccountOut:
    """The request answered by the node holding the call."""
    try:
        status, answer = await relay.forward(node, {"op": op, "tenant": tenant, "call_id": call_id, "body": body})
    except (RouteFailed, RedisError) as error:
        raise HTTPException(504, f"the front end holding call {call_id!r} did not answer: {error}") from None
    if status != 200:
        raise HTTPException(status, answer)
    return AccountOut.model_validate(answer)


async def _waiting(state: Any, key: Key) -> dict[str, Any]:
    relay: FactsRelay | None = state.account_desk.relay
    found = await relay.waiting(*key) if relay is not None else state.account_desk.waiting(key)
    return found or {}


async def _hold(state: Any, key: Key, facts: dict[str, Any]) -> AccountOut:
    """Keep the facts for the call; when it started meanwhile (on any node), they go to it instead."""
    desk: FactsDesk = state.account_desk
    desk.hold(key, facts)
    log.info("account.waiting", call_id=key[1], tenant=key[0])
    relay = desk.relay
    node = await relay.hold(*key, facts, desk.max_waiting) if relay is not None else None
    if relay is not None and node is not None and node != relay.node_id:
        return await _forward(relay, node, key[0], key[1], "put", facts)
    if node is not None and (session := _live(state, key[1])) is not None:
        desk.started(session, key[0])
        return AccountOut(call_id=key[1], status="applied", facts=facts)
    return AccountOut(call_id=key[1], status="waiting", facts=facts)


async def handle(state: Any, tenant: str | None, call_id: str, op: str, body: dict[str, Any] | None,
                 forwarded: bool = False) -> AccountOut:
    """Read (`get`), replace (`put`) or merge into (`patch`) a call's facts: on this node's live call, on the
    node holding it (with the relay), or waiting for the call to start; 409 once it has ended."""
    if not CALL_ID.fullmatch(call_id):
        raise HTTPException(404, f"no call {call_id!r}")
    key, session, relay = (tenant, call_id), _live(state, call_id), state.account_desk.relay
    if session is None and relay is not None and not forwarded:
        node = await relay.holder(call_id) or await asyncio.to_thread(_active_on, state.db, call_id)
        if node is not None and node != relay.node_id:
            return await _forward(relay, node, tenant, call_id, op, body)
    if session is None and (forwarded or (await state.registry.owner(call_id))[0]):
        raise HTTPException(409, f"call {call_id!r} has ended")
    if session is not None and tenant is not None and (await state.registry.owner(call_id))[1] != tenant:
        raise HTTPException(404, f"no call {call_id!r}")
    current = (session.ctx.metadata.get(FACTS_KEY) or {}) if session is not None else await _waiting(state, key)
    status: Literal["applied", "waiting"] = "applied" if session is not None else "waiting"
    if op == "get":
        return AccountOut(call_id=call_id, status=status, facts=current)
    facts = (body or {}) if op == "put" else _merged(current, body or {})
    if session is None:
        return await _hold(state, key, facts)
    return AccountOut(call_id=call_id, status="applied", facts=facts, changed=publish(session, facts))


def _active_on(db: Database, call_id: str) -> str | None:
    """The node holding the call as the database has it while the call is active (Redis may not have it yet:
    a call's row can be written before its node marks it live there)."""
    with db.session() as s:
        call = s.get(Call, call_id)
        return call.node_id if call is not None and call.status == "active" else None


def _merged(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    try:
        return dump(AccountFacts.model_validate(merge_patch(current, patch)))
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors()]) from None


async def serve_forwarded(state: Any, request: dict[str, Any]) -> tuple[int, Any]:
    """A request another node forwarded for a call live here: (status, AccountOut or error detail)."""
    try:
        out = await handle(state, request["tenant"], request["call_id"], request["op"], request["body"],
                           forwarded=True)
    except HTTPException as e:
        return e.status_code, e.detail
    except RequestValidationError as e:
        return 422, jsonable_encoder(e.errors())
    return 200, out.model_dump(mode="json")


ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not a writer"}, 404: {"description": "No such call"},
    409: {"description": "The call has ended"}, 504: {"description": "The front end holding the call did not answer"}}


@router.put("/calls/{call_id}/account", response_model=AccountOut, responses=ERRORS)
async def put_account(call_id: str, body: AccountFacts, request: Request, principal: Writer) -> AccountOut:
    """Replace the call's account facts (before the call starts: they wait for it)."""
    return await handle(request.app.state, principal.tenant, call_id, "put", dump(body))


@router.patch("/calls/{call_id}/account", response_model=AccountOut, responses=ERRORS)
async def patch_account(call_id: str, request: Request, principal: Writer,
                        patch: Annotated[dict[str, Any], Body(description="RFC 7396 merge patch of AccountFacts")],
                        ) -> AccountOut:
    """Merge into the call's account facts (JSON merge patch: null removes a field)."""
    return await handle(request.app.state, principal.tenant, call_id, "patch", patch)


@router.get("/calls/{call_id}/account", response_model=AccountOut, responses=ERRORS)
async def get_account(call_id: str, request: Request) -> AccountOut:
    """The facts in force for a live call, or waiting for one to start."""
    return await handle(request.app.state, principal_of(request).tenant, call_id, "get", None)
