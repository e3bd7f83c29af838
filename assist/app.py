"""The FastAPI service: telephony ingest sockets, live event sockets and REST."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from assist.analysis.base import CallContext
from assist.analysis.pipeline import build_analysers
from assist.analysis.rulepacks import validate_all_packs
from assist.api_qa import router as qa_router
from assist.hub import EventHub, SlowSubscriber
from assist.privacy import Redactor
from assist.session import CallSession
from assist.settings import Settings, get_settings
from assist.storage.recorder import Recorder
from models.asr import AsrWorker
from streaming.protocols.base import CallStart, CallStop, CloseCode, ProtocolError, Reply
from streaming.protocols.registry import make_adapter
from streaming.types import AudioFrame
from web_overlay import STATIC_DIR

log = structlog.get_logger(__name__)
PROTOCOLS = ("twilio", "genesys", "plain")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        validate_all_packs()
        app.state.recorder = Recorder(
            settings.database_url, Redactor(frozenset(settings.redact_kinds), settings.redact_transcripts)
        )
        app.state.db = await app.state.recorder.start()
        interrupted = await app.state.recorder.recover_interrupted()
        if interrupted:
            log.warning("calls.interrupted", calls=interrupted)
        app.state.worker = await asyncio.to_thread(
            AsrWorker, settings.asr_model, settings.cache_dir, settings.device, settings.compute_type,
            settings.asr_threads, settings.beam_size,
        )
        yield
        app.state.worker.close()
        await app.state.recorder.close()

    app = FastAPI(title="Recobra", version="0.1.0", lifespan=lifespan)
    app.include_router(qa_router)
    app.mount("/ui", StaticFiles(directory=STATIC_DIR, html=True), name="ui")
    app.state.hub = hub = EventHub()
    app.state.sessions = sessions = {}

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/ui/dashboard.html")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "calls": len(sessions)}

    @app.get("/calls")
    async def list_calls() -> list[dict]:
        return [
            {"call_id": s.call_id, "protocol": s.protocol, "t": s.clock, "language": s.ctx.language}
            for s in sessions.values()
        ]

    @app.get("/calls/{call_id}/log")
    async def call_log(call_id: str, since: int = 0) -> list[dict]:
        if call_id not in hub.calls:
            raise HTTPException(404, f"no call {call_id!r}")
        return [e.model_dump(mode="json") for e in hub.calls[call_id].events[since:]]

    @app.websocket("/calls/{call_id}/events")
    async def call_events(ws: WebSocket, call_id: str, since: int = 0) -> None:
        await ws.accept()
        if call_id not in hub.calls:
            await ws.close(CloseCode.POLICY_VIOLATION, f"no call {call_id!r}")
            return
        try:
            async for event in hub.subscribe(call_id, since):
                await ws.send_text(event.model_dump_json())
            await ws.close(CloseCode.NORMAL, "call ended")
        except SlowSubscriber as slow:
            await ws.close(CloseCode.TRY_AGAIN_LATER, str(slow))
        except WebSocketDisconnect:
            pass

    @app.websocket("/ingest/{protocol}")
    async def ingest(ws: WebSocket, protocol: str) -> None:
        await ws.accept()
        if protocol not in PROTOCOLS:
            await ws.close(CloseCode.POLICY_VIOLATION, f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")
            return
        kwargs = {"max_message_bytes": settings.max_message_bytes}
        if protocol == "genesys":
            kwargs["headers"] = dict(ws.headers)
        adapter = make_adapter(protocol, **kwargs)
        session: CallSession | None = None
        reason = "disconnected"
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                outputs = adapter.feed_bytes(data) if data is not None else adapter.feed_text(message.get("text") or "")
                for out in outputs:
                    if isinstance(out, AudioFrame) and session is not None:
                        await session.push(out)
                    elif isinstance(out, Reply):
                        await ws.send_text(out.text)
                    elif isinstance(out, CallStart):
                        if len(sessions) >= settings.max_calls:
                            raise ProtocolError("at capacity, try again later", CloseCode.TRY_AGAIN_LATER)
                        if out.call_id in sessions:
                            raise ProtocolError(f"call {out.call_id!r} is already streaming", CloseCode.POLICY_VIOLATION)
                        session = sessions[out.call_id] = _start_session(out, protocol, app, settings)
                        log.info("call.started", call_id=out.call_id, protocol=protocol)
                    elif isinstance(out, CallStop):
                        reason = out.reason
                if reason != "disconnected":
                    break
        except ProtocolError as error:
            log.warning("ingest.rejected", protocol=protocol, reason=error.reason, code=error.close_code)
            reason = "protocol error"
            await ws.close(error.close_code, error.reason[:123])
        except WebSocketDisconnect:
            pass
        if session is not None:
            await session.end(reason)
            sessions.pop(session.call_id, None)
            log.info("call.ended", call_id=session.call_id, reason=reason)
        if reason not in ("disconnected", "protocol error"):
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await ws.close(CloseCode.NORMAL, "call ended")

    return app


def _start_session(start: CallStart, protocol: str, app: FastAPI, settings: Settings) -> CallSession:
    meta = start.metadata
    language = str(meta.get("language") or settings.language)[:2]
    if language not in ("en", "es"):
        language = "en"
    jurisdiction = str(meta.get("jurisdiction") or settings.jurisdiction).lower()
    eu_mode = settings.eu_mode if settings.eu_mode is not None else jurisdiction == "es"
    ctx = CallContext(start.call_id, language, jurisdiction, eu_mode, dict(meta))
    return CallSession(
        ctx, protocol, app.state.worker, app.state.hub, settings, build_analysers(ctx), app.state.recorder
    )
