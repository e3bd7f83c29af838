"""`PUT` / `PATCH` / `GET /calls/{call_id}/account`: the creditor's live account facts for a call.

Facts sent before the call starts wait for it (`account_facts_wait_s`, at most `account_facts_max_waiting`
calls); at the start they join the call's context, and during the call each change is applied at once
and published as an `account.updated` event. The tenant's X-API-KEY or a supervisor token may write;
an agent token reads its own call's facts.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Literal

import structlog
from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from assist.account import (
    FACTS_KEY,
    AccountFacts,
    apply_to_context,
    describe_changes,
    dump,
    legacy_metadata,
    merge_patch,
)
from assist.auth import principal_of
from assist.events import AccountUpdated
from assist.ingest import CALL_ID
from assist.session import CallSession

log = structlog.get_logger(__name__)
router = APIRouter(tags=["account"])
WRITERS = ("dev", "integration", "supervisor")
Key = tuple[str | None, str]
"""(tenant, call id)."""


class AccountOut(BaseModel):
    call_id: str
    status: Literal["applied", "waiting"]
    facts: dict[str, Any]
    changed: list[str] = []


class FactsDesk:
    """Facts waiting for their call to start, per (tenant, call id), for a bounded time and number."""

    def __init__(self, wait_s: float, max_waiting: int) -> None:
        self.wait_s, self.max_waiting = wait_s, max_waiting
        self._waiting: OrderedDict[Key, tuple[float, dict[str, Any]]] = OrderedDict()

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

    def started(self, session: CallSession, tenant: str | None) -> None:
        """The new call takes the facts that waited for it (published as its first account.updated)."""
        self._expire()
        entry = self._waiting.pop((tenant, session.call_id), None)
        if entry is not None:
            publish(session, entry[1])


def publish(session: CallSession, facts: dict[str, Any]) -> list[str]:
    """Apply the facts to the live call's context and publish what changed; the changed fields."""
    changed, changes = describe_changes(session.ctx.metadata.get(FACTS_KEY) or {}, facts)
    apply_to_context(session.ctx, facts)
    session.emit(AccountUpdated(call_id=session.call_id, t=session.clock, facts=facts, changed=changed,
                                changes=changes))
    log.info("account.updated", call_id=session.call_id, changed=changed)
    return changed


def _live(request: Request, call_id: str) -> CallSession | None:
    """The call's session while it can still take events (not once it has ended)."""
    session: CallSession | None = request.app.state.sessions.get(call_id)
    log_ = request.app.state.hub.calls.get(call_id)
    if session is None or log_ is None or any(e.type == "call.ended" for e in log_.events[-2:]):
        return None
    return session


async def _current(request: Request, call_id: str, write: bool) -> tuple[Key, CallSession | None, dict[str, Any]]:
    """(key, live session, facts now) for a call the principal may use; 403/404/409 otherwise."""
    principal = principal_of(request)
    if write and principal.role not in WRITERS:
        raise HTTPException(403, "account facts are written with the tenant's X-API-KEY or a supervisor token")
    if not CALL_ID.fullmatch(call_id):
        raise HTTPException(404, f"no call {call_id!r}")
    exists, _ = await request.app.state.registry.owner(call_id)
    session = _live(request, call_id)
    if session is not None:
        return (principal.tenant, call_id), session, session.ctx.metadata.get(FACTS_KEY) or {}
    if exists:
        raise HTTPException(409, f"call {call_id!r} has ended")
    key = (principal.tenant, call_id)
    return key, None, request.app.state.account_desk.waiting(key) or {}


def _store(request: Request, key: Key, session: CallSession | None, facts: dict[str, Any]) -> AccountOut:
    if session is None:
        request.app.state.account_desk.hold(key, facts)
        log.info("account.waiting", call_id=key[1], tenant=key[0])
        return AccountOut(call_id=key[1], status="waiting", facts=facts)
    return AccountOut(call_id=key[1], status="applied", facts=facts, changed=publish(session, facts))


@router.put("/calls/{call_id}/account", response_model=AccountOut,
            responses={403: {"description": "Not a writer"}, 404: {"description": "No such call"},
                       409: {"description": "The call has ended"}})
async def put_account(call_id: str, body: AccountFacts, request: Request) -> AccountOut:
    """Replace the call's account facts (before the call starts: they wait for it)."""
    key, session, _ = await _current(request, call_id, write=True)
    return _store(request, key, session, dump(body))


@router.patch("/calls/{call_id}/account", response_model=AccountOut,
              responses={403: {"description": "Not a writer"}, 404: {"description": "No such call"},
                         409: {"description": "The call has ended"}})
async def patch_account(call_id: str, request: Request,
                        patch: dict[str, Any] = Body(description="RFC 7396 merge patch of AccountFacts")) -> AccountOut:
    """Merge into the call's account facts (JSON merge patch: null removes a field)."""
    key, session, current = await _current(request, call_id, write=True)
    try:
        facts = AccountFacts.model_validate(merge_patch(current, patch))
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors()]) from None
    return _store(request, key, session, dump(facts))


@router.get("/calls/{call_id}/account", response_model=AccountOut, responses={404: {"description": "No such call"}})
async def get_account(call_id: str, request: Request) -> AccountOut:
    """The facts in force for a live call, or waiting for one to start."""
    _, session, facts = await _current(request, call_id, write=False)
    return AccountOut(call_id=call_id, status="waiting" if session is None else "applied", facts=facts)
