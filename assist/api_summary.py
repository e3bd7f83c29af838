"""`GET /calls/{call_id}/summary`: the after-call summary of an ended call (assist/summary.py), for its
agent (the overlay shows it when the call ends) and the tenant's supervisors and QA reviewers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from assist.events import EVENT_ADAPTER, EventBase, QaScore
from assist.hub import stored_events
from assist.summary import after_call_summary

router = APIRouter(tags=["summary"])


async def _events(request: Request, call_id: str) -> list[EventBase]:
    log = request.app.state.hub.calls.get(call_id)
    if log is not None:
        return list(log.events)
    stored = await stored_events(request.app.state.db, call_id)
    if stored is None:
        raise HTTPException(404, f"no call {call_id!r}")
    return [EVENT_ADAPTER.validate_python(p) for p in stored]


@router.get("/calls/{call_id}/summary", responses={404: {"description": "No such call"},
                                                   409: {"description": "The call is not scored yet"}})
async def call_summary(call_id: str, request: Request) -> dict[str, Any]:
    """{"language", "lines": [{"section", "code", "text", "source"}]} once the call is scored."""
    events = await _events(request, call_id)
    if not any(isinstance(e, QaScore) for e in events):
        raise HTTPException(409, f"call {call_id!r} is not scored yet")
    return after_call_summary(events)
