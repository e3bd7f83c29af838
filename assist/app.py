"""The FastAPI service: telephony ingest sockets, live event sockets and REST."""

from __future__ import annotations

import asyncio
import functools
import json
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import RedirectResponse, Response

from assist.analysis.base import CallContext
from assist.analysis.pipeline import build_analysers
from assist.analysis.sentiment import check_sentiment_model
from assist.api_account import FactsDesk
from assist.api_account import router as account_router
from assist.api_conversations import mount as mount_conversations
from assist.api_insights import router as insights_router
from assist.api_qa import router as qa_router
from assist.api_recording import router as recording_router
from assist.api_summary import router as summary_router
from assist.api_webhooks import router as webhooks_router
from assist.auth import (
    Authenticator,
    AuthMiddleware,
    principal_of,
    redact_tokens_in_server_logs,
)
from assist.auth import router as auth_router
from assist.call_language import CallLanguage
from assist.dashboard import Dashboard, serve_feed
from assist.events import EventBase
from assist.hub import EventHub, SlowSubscriber, stored_events
from assist.ingest import CallRegistry, end_calls_on_signal, serve_ingest
from assist.metrics import Metrics
from assist.post_call import PostCallRunner
from assist.privacy import Redactor
from assist.recording_store import Recordings
from assist.ruleset import RuleSet
from assist.session import CallSession
from assist.settings import Settings, get_settings
from assist.storage.recorder import Recorder
from assist.webhooks import Outbox
from models.asr import AsrWorker
from models.embedding_worker import EmbeddingWorker
from streaming.protocols.base import CallStart, CloseCode, ProtocolError
from web_overlay import STATIC_DIR, PageFiles

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service; its rules (settings.rules_dir over the packaged ones) are loaded and validated here,
    once: an invalid rules file raises RulesError (file, field, problem) before anything starts."""
    settings = settings or get_settings()
    rules = RuleSet.load(settings.rules_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        redact_tokens_in_server_logs()
        if settings.dev_mode:
            log.warning("auth.development_mode", detail="NO TENANTS CONFIGURED: every endpoint is open to anyone "
                        "who can reach this port. Set RECOBRA_TENANTS and RECOBRA_TOKEN_SECRET for production.")
        app.state.recorder = Recorder(
            settings.database_url, Redactor(frozenset(settings.redact_kinds), settings.redact_transcripts),
            settings.recorder_max_pending, settings.node_id, settings.node_heartbeat_s, settings.node_ttl_s,
            rules=rules,
        )
        app.state.db = registry.db = await app.state.recorder.start()
        app.state.recordings = Recordings(settings, app.state.db)
        await asyncio.to_thread(app.state.recordings.purge)
        interrupted = await app.state.recorder.recover_interrupted()
        if interrupted:
            log.warning("calls.interrupted", calls=interrupted)
        await asyncio.to_thread(app.state.recordings.upload_spooled)  # recording_storage=s3: what a crash left
        check_sentiment_model(settings.embedding_model)
        if settings.inference_backend == "ray":
            from assist.distributed.ray_asr import RayAsrClient

            app.state.worker = RayAsrClient.connect(settings)
            await app.state.worker.describe()
        else:
            app.state.worker = await asyncio.to_thread(functools.partial(AsrWorker, **settings.asr_worker_args()))
        if settings.embedding_backend == "ray":
            from assist.distributed.ray_embed import RayEmbeddingClient

            app.state.embedder = RayEmbeddingClient.connect(settings)
        else:
            app.state.embedder = await asyncio.to_thread(functools.partial(
                EmbeddingWorker, settings.embedding_model, window_ms=settings.embedding_batch_window_ms,
                max_batch=settings.embedding_max_batch,
            ))
        if settings.event_bus == "redis":
            from assist.distributed.redis_bus import RedisEventBus

            app.state.bus = RedisEventBus(app.state.hub, settings.redis_url, settings.redis_prefix,
                                          app.state.recorder.node_id, settings.redis_log_ttl_s)
            await app.state.bus.start()
        app.state.outbox = Outbox(settings, app.state.db, auth.tenants)
        if settings.post_call_transcripts:  # picks up the work a stopped service left queued in the database
            app.state.post_call = PostCallRunner(settings, app.state.db, app.state.recordings, app.state.worker,
                                                 app.state.recorder.redactor, app.state.recorder.node_id,
                                                 app.state.recorder.rules)
            await app.state.post_call.start()
            hub.add_close_listener(app.state.post_call.wake)
        end_calls_on_signal(registry)
        yield
        await registry.end_all("service stopped")
        await app.state.outbox.close()
        if app.state.bus is not None:
            await app.state.bus.close()
        if app.state.post_call is not None:
            await app.state.post_call.close()
        app.state.embedder.close()
        app.state.worker.close()
        await app.state.recorder.close()

    app = FastAPI(title="Recobra", version="0.1.0", lifespan=lifespan, redirect_slashes=False)
    app.include_router(qa_router)
    app.include_router(recording_router)
    app.mount("/ui", PageFiles(directory=STATIC_DIR), name="ui")
    app.state.settings = settings
    app.state.rules = rules
    app.state.hub = hub = EventHub()
    app.state.dashboard = dashboard = Dashboard(rules.wellbeing)
    hub.add_listener(dashboard.on_event)
    hub.add_close_listener(dashboard.on_closed)
    app.state.sessions = sessions = {}
    app.state.metrics = metrics = Metrics()
    metrics.track_calls(lambda: sessions)
    metrics.track_inference(lambda: {"asr": getattr(app.state, "worker", None),
                                     "embeddings": getattr(app.state, "embedder", None)})
    app.state.auth = auth = Authenticator(settings)
    app.state.registry = registry = CallRegistry(sessions, hub, metrics)
    app.add_middleware(AuthMiddleware, auth=auth, owner=registry.owner,
                       on_reject=lambda reason: metrics.rejected.labels(reason).inc())
    app.include_router(auth_router)
    app.include_router(account_router)
    app.include_router(webhooks_router)
    app.include_router(summary_router)
    mount_conversations(app)
    app.include_router(insights_router)
    app.state.account_desk = FactsDesk(settings.account_facts_wait_s, settings.account_facts_max_waiting)

    def outcome_webhooks(call_id: str) -> None:
        """A call this node held has closed: queue its outcome webhooks (other nodes' calls are theirs)."""
        if call_id in sessions and getattr(app.state, "outbox", None) is not None:
            app.state.outbox.call_closed(call_id, registry.owners.get(call_id), list(hub.calls[call_id].events))

    hub.add_close_listener(outcome_webhooks)

    def live_webhooks(event: EventBase) -> None:
        if event.call_id in sessions and getattr(app.state, "outbox", None) is not None:
            app.state.outbox.call_event(event, registry.owners.get(event.call_id), hub.calls[event.call_id].events)

    hub.add_listener(live_webhooks)
    app.state.post_call = None  # the post-call transcript runner (assist/post_call.py), started with the service
    app.state.bus = None  # the Redis event bus, when settings.event_bus is redis (set at startup)

    @app.get("/", include_in_schema=False)
    @app.get("/ui", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/ui/dashboard.html")  # a path: never a URL built from the Host header

    @app.get("/healthz")
    async def healthz(request: Request) -> dict:
        """ok; the live call count too in development mode (anonymous callers learn nothing else)."""
        return {"status": "ok", "calls": len(sessions)} if principal_of(request).role == "dev" else {"status": "ok"}

    async def known(call_id: str) -> bool:
        """The call is in this node's hub, or (with the Redis bus) in Redis and now mirrored here."""
        return call_id in hub.calls or (app.state.bus is not None and await app.state.bus.load(call_id))

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/calls")
    async def list_calls(request: Request) -> list[dict]:
        """Live calls on this node, then (with the Redis bus) those held by other nodes."""
        principal = principal_of(request)
        return [
            {"call_id": s.call_id, "protocol": s.protocol, "t": s.clock, "language": s.ctx.language}
            for s in sessions.values() if principal.sees(registry.owners.get(s.call_id))
        ] + (app.state.bus.remote_calls() if app.state.bus is not None and principal.tenant is None else [])

    @app.get("/calls/live")
    async def live_summary(request: Request) -> dict:
        """The supervisor dashboard's state: live call summaries and agent exposure metrics."""
        return dashboard.snapshot(principal_of(request).sees)

    @app.websocket("/calls/live")
    async def live_feed(ws: WebSocket) -> None:
        """The dashboard snapshot, then `call.update` / `call.removed` / `agent.update` as calls change."""
        await ws.accept()
        await serve_feed(ws, dashboard, principal_of(ws).sees)

    @app.get("/calls/{call_id}/log")
    async def call_log(call_id: str, since: int = 0) -> list[dict]:
        """The call's events after `since`: from memory, else (a call stored before a restart) the database."""
        if since < 0:
            raise HTTPException(400, "since must be 0 or more")
        if await known(call_id):
            return [e.model_dump(mode="json") for e in hub.calls[call_id].events[since:]]
        if (stored := await stored_events(app.state.db, call_id, since)) is None:
            raise HTTPException(404, f"no call {call_id!r}")
        return stored

    @app.websocket("/calls/{call_id}/events")
    async def call_events(ws: WebSocket, call_id: str, since: int = 0) -> None:
        await ws.accept()
        if since < 0:
            await ws.close(CloseCode.BAD_MESSAGE, "since must be 0 or more")
            return
        if not await known(call_id):
            stored = await stored_events(app.state.db, call_id, since)
            for payload in stored or []:
                await ws.send_text(json.dumps(payload))
            await ws.close(*((CloseCode.NORMAL, "call ended") if stored is not None
                             else (CloseCode.POLICY_VIOLATION, f"no call {call_id!r}")))
            return
        try:
            async for event in hub.subscribe(call_id, since):
                await ws.send_text(event.model_dump_json())
            await ws.close(CloseCode.NORMAL, "call ended")
        except SlowSubscriber as slow:
            metrics.slow_subscribers.inc()
            await ws.close(CloseCode.TRY_AGAIN_LATER, str(slow))
        except WebSocketDisconnect:
            pass

    @app.websocket("/ingest/{protocol}")
    async def ingest(ws: WebSocket, protocol: str) -> None:
        def factory(start: CallStart, protocol: str, tenant: str | None) -> CallSession:
            return _start_session(start, protocol, tenant, app, settings)

        await serve_ingest(ws, protocol, registry, settings, factory, auth.tenants)

    return app


def _start_session(start: CallStart, protocol: str, tenant: str | None, app: FastAPI,
                   settings: Settings) -> CallSession:
    meta = {**start.metadata, "tenant": tenant} if tenant is not None else start.metadata
    meta = app.state.account_desk.start_metadata(tenant, start.call_id, meta)
    language = call_language(meta, settings, app.state.worker)
    jurisdiction = str(meta.get("jurisdiction") or settings.jurisdiction).lower()
    rules = app.state.rules
    eu_mode = settings.eu_mode if settings.eu_mode is not None else rules.eu_mode(jurisdiction)
    ctx = CallContext(start.call_id, language.current or settings.languages[0], jurisdiction, eu_mode, dict(meta))
    session = CallSession(
        ctx, protocol, app.state.worker, app.state.hub, settings, build_analysers(ctx, app.state.embedder, rules),
        app.state.recorder, app.state.metrics, language, app.state.recordings.open(start.call_id, ctx.metadata),
    )
    app.state.account_desk.started(session, tenant)
    return session


def call_language(meta: dict, settings: Settings, worker: AsrWorker) -> CallLanguage:
    """The call's language from its metadata (or the setting), or None to detect; refused if none serves it."""
    config = meta.get("custom_config") if isinstance(meta.get("custom_config"), dict) else {}
    named = str(meta.get("language") or config.get("language") or settings.language).strip().lower()
    served = tuple(worker.languages)
    if named == "auto":
        if worker.detects:
            return CallLanguage(None, served)
        named = served[0]
    language = named.replace("_", "-").split("-")[0]
    if language not in served:
        raise ProtocolError(f"language {named!r} is not served here (served: {', '.join(served)})",
                            CloseCode.UNSUPPORTED_LANGUAGE)
    return CallLanguage(language, served)