"""`GET` / `PUT /calls/{call_id}/summary`: the after-call summary of an ended call (assist/summary.py), for
its agent (the overlay shows it when the call is scored, and the agent may rewrite it) and the tenant's
supervisors and QA reviewers. Every rewrite is kept (who, when, the lines before and after); the latest
is the summary in force, sent to the tenant's webhook as `call.summary_edited`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from assist.auth import principal_of
from assist.events import EVENT_ADAPTER, EventBase, QaScore
from assist.hub import stored_events
from assist.storage.db import Database
from assist.storage.repository import utc
from assist.storage.tables import SummaryEdit
from assist.summary import after_call_summary

router = APIRouter(tags=["summary"])
EDITORS = ("dev", "agent", "supervisor", "qa")
Section = Literal["outcome", "agreed", "objections", "hardship", "compliance", "facts", "next_steps"]


class LineIn(BaseModel):
    section: Section
    text: str = Field(min_length=1, max_length=500)


class SummaryIn(BaseModel):
    lines: list[LineIn] = Field(max_length=50)


async def _events(request: Request, call_id: str) -> list[EventBase]:
    log = request.app.state.hub.calls.get(call_id)
    if log is not None:
        return list(log.events)
    stored = await stored_events(request.app.state.db, call_id)
    if stored is None:
        raise HTTPException(404, f"no call {call_id!r}")
    return [EVENT_ADAPTER.validate_python(p) for p in stored]


def _latest_edit(db: Database, call_id: str) -> dict[str, Any] | None:
    with db.session() as s:
        edit = s.scalars(select(SummaryEdit).where(SummaryEdit.call_id == call_id)
                         .order_by(SummaryEdit.id.desc()).limit(1)).first()
        return None if edit is None else {"lines": edit.after, "by": edit.editor, "at": utc(edit.at), "id": edit.id}


async def _summary(request: Request, call_id: str) -> dict[str, Any]:
    events = await _events(request, call_id)
    if not any(isinstance(e, QaScore) for e in events):
        raise HTTPException(409, f"call {call_id!r} is not scored yet")
    edited = await asyncio.to_thread(_latest_edit, request.app.state.db, call_id)
    return {**after_call_summary(events), "edited": edited}


@router.get("/calls/{call_id}/summary", responses={404: {"description": "No such call"},
                                                   409: {"description": "The call is not scored yet"}})
async def call_summary(call_id: str, request: Request) -> dict[str, Any]:
    """{"language", "lines": [{"section", "code", "text", "source"}], "edited": null | {"lines", "by", "at"}}."""
    return await _summary(request, call_id)


@router.put("/calls/{call_id}/summary", responses={403: {"description": "Not an editor"},
                                                   404: {"description": "No such call"},
                                                   409: {"description": "The call is not scored yet"}})
async def edit_summary(call_id: str, body: SummaryIn, request: Request) -> dict[str, Any]:
    """Rewrite the summary (kept with who and when; the generated lines stay, with their sources)."""
    principal = principal_of(request)
    if principal.role not in EDITORS:
        raise HTTPException(403, "the summary is edited by the call's agent, a supervisor or a QA reviewer")
    current = await _summary(request, call_id)
    before = (current["edited"] or {}).get("lines") or [{"section": line["section"], "text": line["text"]}
                                                        for line in current["lines"]]
    after = [line.model_dump() for line in body.lines]
    editor = principal.subject or (f"{principal.role}@{principal.tenant}" if principal.tenant else principal.role)

    def write() -> None:
        with request.app.state.db.session() as s:
            s.add(SummaryEdit(call_id=call_id, editor=editor, at=datetime.now(UTC), before=before, after=after))

    await asyncio.to_thread(write)
    if principal.tenant is not None:
        request.app.state.outbox.summary_edited(principal.tenant, call_id, after, editor)
    return await _summary(request, call_id)
