"""Live calls over HTTP and WebSocket: health, metrics, the call list, the supervisor dashboard's state and
feed, and each call's event log and socket (from this node's hub, other nodes' calls through the event
bus, or the database once a call is stored)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import State

from assist.auth import principal_of
from assist.dashboard import serve_feed
from assist.hub import SlowSubscriber, stored_events
from streaming.protocols.base import CloseCode

router = APIRouter()


@router.get("/", include_in_schema=False)
@router.get("/ui", include_in_schema=False)
async def index() -> RedirectResponse:
    return RedirectResponse("/ui/dashboard.html")  # a path: never a URL built from the Host header


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """ok; the live call count too in development mode (anonymous callers learn nothing else)."""
    sessions = request.app.state.sessions
    return {"status": "ok", "calls": len(sessions)} if principal_of(request).role == "dev" else {"status": "ok"}


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/calls")
async def list_calls(request: Request) -> list[dict[str, Any]]:
    """Live calls on this node, then (with the Redis bus) those held by other nodes."""
    state, principal = request.app.state, principal_of(request)
    return [
        {"call_id": s.call_id, "protocol": s.protocol, "t": s.clock, "language": s.ctx.language}
        for s in state.sessions.values() if principal.sees(state.registry.owners.get(s.call_id))
    ] + (state.bus.remote_calls() if principal.tenant is None else [])


@router.get("/calls/live")
async def live_summary(request: Request) -> dict[str, Any]:
    """The supervisor dashboard's state: live call summaries and agent exposure metrics."""
    return request.app.state.dashboard.snapshot(principal_of(request).sees)


@router.websocket("/calls/live")
async def live_feed(ws: WebSocket) -> None:
    """The dashboard snapshot, then `call.update` / `call.removed` / `agent.update` as calls change."""
    await ws.accept()
    await serve_feed(ws, ws.app.state.dashboard, principal_of(ws).sees)


async def _known(state: State, call_id: str) -> bool:
    """The call is in this node's hub, or (with the Redis bus) in Redis and now mirrored here."""
    return call_id in state.hub.calls or await state.bus.load(call_id)


@router.get("/calls/{call_id}/log")
async def call_log(request: Request, call_id: str, since: int = 0) -> list[dict[str, Any]]:
    """The call's events after `since`: from memory, else (a call stored before a restart) the database."""
    state = request.app.state
    if since < 0:
        raise HTTPException(400, "since must be 0 or more")
    if await _known(state, call_id):
        return [e.model_dump(mode="json") for e in state.hub.calls[call_id].events[since:]]
    if (stored := await stored_events(state.db, call_id, since)) is None:
        raise HTTPException(404, f"no call {call_id!r}")
    return stored


@router.websocket("/calls/{call_id}/events")
async def call_events(ws: WebSocket, call_id: str, since: int = 0) -> None:
    state = ws.app.state
    await ws.accept()
    if since < 0:
        await ws.close(CloseCode.BAD_MESSAGE, "since must be 0 or more")
        return
    if not await _known(state, call_id):
        stored = await stored_events(state.db, call_id, since)
        for payload in stored or []:
            await ws.send_text(json.dumps(payload))
        await ws.close(*((CloseCode.NORMAL, "call ended") if stored is not None
                         else (CloseCode.POLICY_VIOLATION, f"no call {call_id!r}")))
        return
    try:
        async for event in state.hub.subscribe(call_id, since):
            await ws.send_text(event.model_dump_json())
        await ws.close(CloseCode.NORMAL, "call ended")
    except SlowSubscriber as slow:
        state.metrics.slow_subscribers.inc()
        await ws.close(CloseCode.TRY_AGAIN_LATER, str(slow))
    except WebSocketDisconnect:
        pass
