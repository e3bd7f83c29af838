"""The FastAPI service: telephony ingest sockets, live event sockets and REST."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, WebSocket

from assist.analysis.base import CallContext
from assist.analysis.pipeline import build_analysers
from assist.analysis.sentiment import check_sentiment_model
from assist.api_account import FactsDesk, serve_forwarded
from assist.api_account import router as account_router
from assist.api_calls import router as calls_router
from assist.api_conversations import mount as mount_conversations
from assist.api_insights import router as insights_router
from assist.api_qa import router as qa_router
from assist.api_recording import router as recording_router
from assist.api_summary import router as summary_router
from assist.api_webhooks import router as webhooks_router
from assist.auth import Authenticator, AuthMiddleware, redact_tokens_in_server_logs
from assist.auth import router as auth_router
from assist.call_language import CallLanguage
from assist.dashboard import Dashboard
from assist.distributed.recovery import RecoveredEnds
from assist.events import EventBase
from assist.hub import EventHub, LocalBus
from assist.ingest import CallRegistry, end_calls_on_signal, serve_ingest
from assist.metrics import Metrics
from assist.post_call import PostCallRunner
from assist.privacy import Redactor
from assist.recording_store import Recordings
from assist.ruleset import RuleSet, packaged_rules
from assist.session import CallSession
from assist.settings import Settings, get_settings
from assist.storage.recorder import Recorder
from assist.webhooks import Outbox
from models.asr import AsrWorker
from models.embedding_worker import EmbeddingWorker
from models.inference import AsrBackend, EmbeddingBackend
from models.threads import one_blas_thread
from streaming.protocols.base import CallStart, CloseCode, ProtocolError
from web_overlay import STATIC_DIR, PageFiles

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service; its rules (settings.analysis.rules_dir over the packaged ones) are loaded and validated here,
    once: an invalid rules file raises RulesError (file, field, problem) before anything starts."""
    settings = settings or get_settings()
    rules = RuleSet.load(settings.analysis.rules_dir) if settings.analysis.rules_dir else packaged_rules()
    app = FastAPI(title="Recobra", version="0.1.0", lifespan=_lifespan, redirect_slashes=False)
    app.state.settings = settings
    app.state.rules = rules
    _add_calls(app, settings, rules)
    _add_webhook_listeners(app)
    _add_routes(app, settings)
    return app


def _add_calls(app: FastAPI, settings: Settings, rules: RuleSet) -> None:
    """The event hub and what listens to it, the live sessions and their registry, metrics and auth."""
    app.state.hub = hub = EventHub()
    app.state.bus = LocalBus(hub)  # the Redis event bus instead, from startup, when the event_bus setting is redis
    app.state.dashboard = dashboard = Dashboard(rules.wellbeing)
    hub.add_listener(dashboard.on_event)
    hub.add_close_listener(dashboard.on_closed)
    sessions: dict[str, CallSession] = {}
    app.state.sessions = sessions
    app.state.metrics = metrics = Metrics()
    metrics.track_calls(lambda: sessions)
    metrics.track_inference(lambda: {"asr": getattr(app.state, "worker", None),
                                     "embeddings": getattr(app.state, "embedder", None)})
    app.state.auth = auth = Authenticator(settings)
    app.state.registry = registry = CallRegistry(sessions, hub, metrics)
    app.add_middleware(AuthMiddleware, auth=auth, owner=registry.owner,
                       on_reject=lambda reason: metrics.rejected.labels(reason).inc())
    app.state.account_desk = FactsDesk(settings.facts.account_facts_wait_s, settings.facts.account_facts_max_waiting)
    app.state.post_call = None  # the post-call transcript runner (assist/post_call.py), started with the service


def _add_webhook_listeners(app: FastAPI) -> None:
    """Outcome and live webhooks of the calls this node holds (other nodes' calls are theirs)."""
    state = app.state

    def outcome_webhooks(call_id: str) -> None:
        if call_id in state.sessions and getattr(state, "outbox", None) is not None:
            state.outbox.call_closed(call_id, state.registry.owners.get(call_id), list(state.hub.calls[call_id].events))

    def live_webhooks(event: EventBase) -> None:
        if event.call_id in state.sessions and getattr(state, "outbox", None) is not None:
            state.outbox.call_event(event, state.registry.owners.get(event.call_id),
                                    state.hub.calls[event.call_id].events)

    state.hub.add_close_listener(outcome_webhooks)
    state.hub.add_listener(live_webhooks)


def _add_routes(app: FastAPI, settings: Settings) -> None:
    app.include_router(qa_router)
    app.include_router(recording_router)
    app.mount("/ui", PageFiles(directory=STATIC_DIR), name="ui")
    app.include_router(auth_router)
    app.include_router(account_router)
    app.include_router(webhooks_router)
    app.include_router(summary_router)
    mount_conversations(app)
    app.include_router(insights_router)
    app.include_router(calls_router)

    @app.websocket("/ingest/{protocol}")
    async def ingest(ws: WebSocket, protocol: str) -> None:
        def factory(start: CallStart, protocol: str, tenant: str | None) -> CallSession:
            return _start_session(start, protocol, tenant, app, settings)

        await serve_ingest(ws, protocol, app.state.registry, settings, factory, app.state.auth.tenants)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    await _start(app)
    yield
    await _stop(app)


async def _start(app: FastAPI) -> None:
    """Storage, recovery of what a stopped service left, the inference backends, the bus, then webhooks."""
    state, settings = app.state, app.state.settings
    redact_tokens_in_server_logs()
    if settings.security.dev_mode:
        log.warning("auth.development_mode", detail="NO TENANTS CONFIGURED: every endpoint is open to anyone "
                    "who can reach this port. Set RECOBRA_TENANTS and RECOBRA_TOKEN_SECRET for production.")
    storage, nodes = settings.storage, settings.distributed
    state.recorder = Recorder(
        storage.database_url, Redactor(frozenset(storage.redact_kinds), storage.redact_transcripts),
        settings.limits.recorder_max_pending, nodes.node_id, nodes.node_heartbeat_s, nodes.node_ttl_s,
        rules=state.rules,
    )
    state.recovered = RecoveredEnds(state.auth.tenants, on_bus=settings.distributed.event_bus == "redis")
    state.recorder.on_recovered = state.recovered.in_claim
    state.db = state.registry.db = await state.recorder.start()
    state.recordings = Recordings(settings, state.db)
    await asyncio.to_thread(state.recordings.purge)
    interrupted = await state.recorder.recover_interrupted()
    if interrupted:
        log.warning("calls.interrupted", calls=interrupted)
    await asyncio.to_thread(state.recordings.upload_spooled)  # recording_storage=s3: what a crash left
    one_blas_thread()
    check_sentiment_model(settings.analysis.embedding_model)
    state.worker = await _asr_backend(settings)
    state.embedder = await _embedding_backend(settings)
    if settings.distributed.event_bus == "redis":
        await _join_redis(app)
    state.outbox = Outbox(settings, state.db, state.auth.tenants)
    if settings.post_call.post_call_transcripts:  # picks up the work a stopped service left queued in the database
        state.post_call = PostCallRunner(settings, state.db, state.recordings, state.worker,
                                         state.recorder.redactor, state.recorder.node_id, state.recorder.rules)
        await state.post_call.start()
        state.hub.add_close_listener(state.post_call.wake)
    end_calls_on_signal(state.registry)


async def _stop(app: FastAPI) -> None:
    """End every call (stored, scored, delivered), then stop what `_start` started."""
    state = app.state
    await state.registry.end_all("service stopped")
    await state.outbox.close()
    if state.settings.distributed.event_bus == "redis":
        await state.account_desk.relay.close()
        await state.recovered.close()
    await state.bus.close()
    if state.post_call is not None:
        await state.post_call.close()
    state.embedder.close()
    state.worker.close()
    await state.recorder.close()


async def _asr_backend(settings: Settings) -> AsrBackend:
    if settings.distributed.inference_backend == "ray":
        from assist.distributed.ray_asr import RayAsrClient

        client = RayAsrClient.connect(settings)
        await client.describe()
        return client
    return await asyncio.to_thread(functools.partial(AsrWorker, **settings.asr.worker_args()))


async def _embedding_backend(settings: Settings) -> EmbeddingBackend:
    if settings.distributed.embedding_backend == "ray":
        from assist.distributed.ray_embed import RayEmbeddingClient

        return RayEmbeddingClient.connect(settings)
    return await asyncio.to_thread(functools.partial(
        EmbeddingWorker, settings.analysis.embedding_model, window_ms=settings.analysis.embedding_batch_window_ms,
        max_batch=settings.analysis.embedding_max_batch,
    ))


async def _join_redis(app: FastAPI) -> None:
    """The Redis event bus, the account-facts relay between nodes and the recovered call ends on the bus."""
    from assist.distributed.facts_relay import FactsRelay
    from assist.distributed.redis_bus import RedisEventBus

    state, settings = app.state, app.state.settings
    scale, facts = settings.distributed, settings.facts
    bus = state.bus = RedisEventBus(state.hub, scale.redis_url, scale.redis_prefix, state.recorder.node_id,
                                    scale.redis_log_ttl_s)
    await bus.start()
    relay = state.account_desk.relay = FactsRelay(
        bus.redis, scale.redis_prefix, bus.node_id, facts.account_facts_wait_s, facts.account_facts_route_s)
    await relay.start(functools.partial(serve_forwarded, state))
    state.recovered.attach(bus)


def _start_session(start: CallStart, protocol: str, tenant: str | None, app: FastAPI,
                   settings: Settings) -> CallSession:
    meta = {**start.metadata, "tenant": tenant} if tenant is not None else start.metadata
    meta = app.state.account_desk.start_metadata(tenant, start.call_id, meta)
    language = call_language(meta, settings, app.state.worker)
    jurisdiction = str(meta.get("jurisdiction") or settings.analysis.jurisdiction).lower()
    rules = app.state.rules
    eu_mode = settings.analysis.eu_mode if settings.analysis.eu_mode is not None else rules.eu_mode(jurisdiction)
    ctx = CallContext(start.call_id, language.current or settings.asr.languages[0], jurisdiction, eu_mode, dict(meta))
    session = CallSession(
        ctx, protocol, app.state.worker, app.state.hub, settings, build_analysers(ctx, app.state.embedder, rules),
        app.state.recorder, app.state.metrics, language, app.state.recordings.open(start.call_id, ctx.metadata),
    )
    app.state.account_desk.started(session, tenant)
    return session


def call_language(meta: dict, settings: Settings, worker: AsrBackend) -> CallLanguage:
    """The call's language from its metadata (or the setting), or None to detect; refused if none serves it."""
    config = meta.get("custom_config")
    config = config if isinstance(config, dict) else {}
    named = str(meta.get("language") or config.get("language") or settings.asr.language).strip().lower()
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
