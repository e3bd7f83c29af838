"""Telephony ingest: one websocket per call, with limits, admission, reconnects and clean ends.

A call id is used once per tenant. A connection that drops without the protocol's stop leaves its
call open for `reconnect_grace_s`: a start of the same call id from the same tenant, protocol and
stream identity within that time continues the call, its audio clock, event log and transcript. At
`max_calls` new calls are refused with 1013; every failure closes only its own connection, with a
specific code and reason. Call metadata is filtered (allow-list, redaction) before the call starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog
from fastapi import WebSocket, WebSocketDisconnect

from assist.auth import Principal, principal_of
from assist.hub import EventHub
from assist.metrics import Metrics
from assist.privacy import Redactor, clean_metadata
from assist.session import CallSession
from assist.settings import Settings
from assist.storage.db import Database
from assist.storage.tables import Call
from streaming.protocols.base import (
    AdapterOutput,
    CallStart,
    CallStop,
    CloseCode,
    ProtocolError,
    Reply,
    close_reason,
)
from streaming.protocols.limits import ConnectionLimits
from streaming.protocols.registry import make_adapter
from streaming.types import AudioFrame

log = structlog.get_logger(__name__)
PROTOCOLS = ("twilio", "genesys", "plain")
CALL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
REASONS = {
    CloseCode.TOO_BIG: "too_big",
    CloseCode.INVALID_PAYLOAD: "invalid_payload",
    CloseCode.UNSUPPORTED_DATA: "unsupported_data",
    CloseCode.TRY_AGAIN_LATER: "capacity",
    CloseCode.POLICY_VIOLATION: "policy",
    CloseCode.FORBIDDEN: "forbidden",
    CloseCode.IDLE_TIMEOUT: "idle_timeout",
    CloseCode.UNSUPPORTED_MEDIA: "unsupported_media",
    CloseCode.RATE_LIMITED: "rate_limited",
    CloseCode.SERVICE_RESTART: "stopping",
}
TAKEOVER_WAIT_S = 10.0
"""How long a reconnect waits for the call's previous connection to finish draining and let go."""
SessionFactory = Callable[[CallStart, str, str | None], CallSession]
"""(start, protocol, tenant) -> a new CallSession."""


def stream_identity(protocol: str, metadata: dict[str, Any]) -> str | None:
    """What a reconnect must repeat to continue a call: the media stream the telephony names
    (Twilio `streamSid`, AudioHook session id, the plain start's optional `stream_id`)."""
    key = {"twilio": "stream_sid", "genesys": "session_id", "plain": "stream_id"}[protocol]
    value = metadata.get(key)
    return None if value is None else str(value)


class CallRegistry:
    """This process's calls: live sessions, which tenant owns each call id, calls awaiting a reconnect.

    A call id is used once per tenant: a start naming a known call (live, ending, ended or stored) is
    refused (1008) unless it is the reconnect of a dropped connection within the grace period, from
    the same tenant, protocol and stream identity (`stream_identity`).
    """

    def __init__(self, sessions: dict[str, CallSession], hub: EventHub, metrics: Metrics,
                 keep_owners: int = 10_000) -> None:
        self.sessions = sessions
        self.hub = hub
        self.metrics = metrics
        self.db: Database | None = None
        self.owners: OrderedDict[str, str | None] = OrderedDict()
        self.keep_owners = keep_owners
        self.stopping = False
        """Set when the service ends every call; new starts are refused (1013)."""
        self._parked: dict[str, asyncio.Task] = {}
        self._ending: set[str] = set()
        self._identity: dict[str, tuple[str | None, str, str | None]] = {}
        """call id -> (tenant, protocol, stream identity) of its live session."""

    async def owner(self, call_id: str) -> tuple[bool, str | None]:
        """(the call exists, its tenant), from memory or the database."""
        if call_id in self.owners:
            return True, self.owners[call_id]
        if self.db is None:
            return False, None
        db = self.db

        def lookup() -> tuple[bool, str | None]:
            with db.session() as s:
                call = s.get(Call, call_id)
                return (False, None) if call is None else (True, (call.meta or {}).get("tenant"))

        return await asyncio.to_thread(lookup)

    def _remember(self, call_id: str, tenant: str | None) -> None:
        self.owners[call_id] = tenant
        self.owners.move_to_end(call_id)
        while len(self.owners) > self.keep_owners:
            self.owners.popitem(last=False)

    async def admit(self, start: CallStart, protocol: str, principal: Principal, max_calls: int,
                    factory: SessionFactory) -> CallSession:
        """The call's session: a parked one continued, or a new one; ProtocolError if refused."""
        call_id = start.call_id
        if not CALL_ID.fullmatch(call_id):
            raise ProtocolError("call id must be 1-128 letters, digits or . _ : @ - (starting with a letter or digit)")
        if self.stopping:
            raise ProtocolError("service is stopping, try again later", CloseCode.TRY_AGAIN_LATER)
        exists, owner = await self.owner(call_id)
        if exists and owner != principal.tenant:
            raise ProtocolError(f"call id {call_id!r} is already in use", CloseCode.POLICY_VIOLATION)
        identity = (principal.tenant, protocol, stream_identity(protocol, start.metadata))
        same = self._identity.get(call_id) == identity
        deadline = time.monotonic() + TAKEOVER_WAIT_S
        while same and call_id in self.sessions and call_id not in self._parked and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # its own dropped connection may still be draining what it received
        parked = self._parked.pop(call_id, None) if same else None
        if parked is not None:
            parked.cancel()
            session = self.sessions[call_id]
            self.metrics.reconnects.inc()
            log.info("call.reconnected", call_id=call_id, protocol=protocol, at=session.audio_end)
            return session
        if call_id in self.sessions or call_id in self.hub.live_calls():
            raise ProtocolError(f"call {call_id!r} is already streaming", CloseCode.POLICY_VIOLATION)
        if exists or call_id in self.hub.calls:
            raise ProtocolError(f"call id {call_id!r} was already used; a call id is used once",
                                CloseCode.POLICY_VIOLATION)
        if len(self.sessions) >= max_calls:
            raise ProtocolError("at capacity, try again later", CloseCode.TRY_AGAIN_LATER)
        session = self.sessions[call_id] = factory(start, protocol, principal.tenant)
        self._identity[call_id] = identity
        self._remember(call_id, principal.tenant)
        self.metrics.calls.labels(protocol).inc()
        log.info("call.started", call_id=call_id, protocol=protocol, tenant=principal.tenant)
        return session

    def park(self, session: CallSession, grace_s: float) -> None:
        """Keep the call open `grace_s` for a reconnect, then end it as disconnected."""

        async def expire() -> None:
            await asyncio.sleep(grace_s)
            self._parked.pop(session.call_id, None)
            await self.end(session, "disconnected")

        self._parked[session.call_id] = asyncio.create_task(expire())
        log.info("call.awaiting_reconnect", call_id=session.call_id, grace_s=grace_s)

    async def end(self, session: CallSession, reason: str) -> None:
        """End the call once (flush, store, score); later calls for the same session do nothing."""
        call_id = session.call_id
        if call_id in self._ending or self.sessions.get(call_id) is not session:
            return
        self._ending.add(call_id)
        try:
            await session.end(reason)
        finally:
            self.sessions.pop(call_id, None)
            self._identity.pop(call_id, None)
            self._ending.discard(call_id)
        log.info("call.ended", call_id=call_id, reason=reason)

    async def drain(self, reason: str, timeout_s: float = 5.0) -> None:
        """End every call, then wait (at most `timeout_s`) until each one's event sockets have sent its
        last events, so a stopping server closes them only afterwards."""
        ids = list(self.sessions)
        await self.end_all(reason)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(
                self.hub.calls[c].subscribers for c in ids if c in self.hub.calls):
            await asyncio.sleep(0.02)

    async def end_all(self, reason: str) -> None:
        """End every call (service shutdown), parked ones included, so nothing is left unstored."""
        self.stopping = True
        for task in self._parked.values():
            task.cancel()
        self._parked.clear()
        await asyncio.gather(*(self.end(s, reason) for s in list(self.sessions.values())), return_exceptions=True)


def end_calls_on_signal(registry: CallRegistry) -> None:
    """On the first SIGTERM or SIGINT, end every call and let its event sockets send the last events
    (`drain`) before handing the signal to the server's own handler, which closes every socket.
    Signals reach only the main thread (`recobra serve`); elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task] = set()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handle(signum: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
            signal.signal(signum, previous)  # a second signal goes straight to the server

            async def drain_then_exit() -> None:
                try:
                    await registry.drain("service stopped")
                finally:
                    previous(signum, frame)

            loop.call_soon_threadsafe(lambda: tasks.add(loop.create_task(drain_then_exit())))

        signal.signal(sig, handle)


def _check_tenant_start(start: CallStart, protocol: str, tenant: Any) -> None:
    """Vendor ids in the start that must match the tenant whose credentials opened the connection."""
    meta = start.metadata
    if protocol == "twilio" and tenant.twilio_account_sid and meta.get("account_sid") != tenant.twilio_account_sid:
        raise ProtocolError("start: accountSid is not this tenant's Twilio account", CloseCode.FORBIDDEN)
    header_org = (meta.get("headers") or {}).get("audiohook-organization-id")
    if protocol == "genesys" and header_org is not None and meta.get("organization_id") != header_org:
        raise ProtocolError("open: organizationId does not match Audiohook-Organization-Id", CloseCode.FORBIDDEN)


def _end_reason(error: ProtocolError) -> str:
    """How a call whose connection broke a rule is stored."""
    return {CloseCode.IDLE_TIMEOUT: "idle", CloseCode.SERVICE_RESTART: "service stopped"}.get(
        error.close_code, "protocol error")


class _Connection:
    """One ingest websocket: its adapter, limits and (once started) call session."""

    def __init__(self, ws: WebSocket, protocol: str, registry: CallRegistry, settings: Settings,
                 factory: SessionFactory, tenants: dict[str, Any]) -> None:
        self.ws, self.protocol, self.registry, self.settings = ws, protocol, registry, settings
        self.factory, self.tenants = factory, tenants
        self.principal = principal_of(ws)
        kwargs: dict[str, Any] = {"max_message_bytes": settings.limits.max_message_bytes}
        if protocol == "genesys":
            kwargs["headers"] = dict(ws.headers)
        if protocol in ("genesys", "twilio"):
            kwargs["max_gap_s"] = settings.security.max_media_gap_s
        self.adapter = make_adapter(protocol, **kwargs)
        self.limits = ConnectionLimits(settings.limits.max_messages_per_s, settings.limits.max_messages_per_audio_s,
                                       settings.limits.message_grace)
        self.redactor = Redactor(frozenset(settings.storage.redact_kinds))
        self.session: CallSession | None = None
        self.offset = 0.0
        self.reason = "disconnected"

    async def read(self) -> None:
        """Read and handle messages until the call stops or the peer goes away."""
        while self.reason == "disconnected":
            if (wait := self.limits.throttle(time.monotonic())) > 0:
                await asyncio.sleep(wait)
            try:
                message = await asyncio.wait_for(self.ws.receive(), self.settings.limits.idle_timeout_s)
            except TimeoutError:
                raise ProtocolError(f"nothing received for {self.settings.limits.idle_timeout_s:g} s",
                                    CloseCode.IDLE_TIMEOUT) from None
            if message["type"] == "websocket.disconnect":
                return
            if self.registry.stopping and self.session is not None:
                raise ProtocolError("service is stopping", CloseCode.SERVICE_RESTART)
            data = message.get("bytes")
            adapter = self.adapter
            outputs = adapter.feed_bytes(data) if data is not None else adapter.feed_text(message.get("text") or "")
            self.limits.count(outputs)
            for out in outputs:
                await self.handle(out)

    async def handle(self, out: AdapterOutput) -> None:
        if isinstance(out, AudioFrame):
            if self.session is not None:
                await self.session.push(replace(out, t=out.t + self.offset) if self.offset else out)
        elif isinstance(out, Reply):
            await self.ws.send_text(out.text)
        elif isinstance(out, CallStart):
            if self.principal.tenant is not None:
                _check_tenant_start(out, self.protocol, self.tenants[self.principal.tenant])
            kept = clean_metadata(out.metadata, self.redactor)
            if dropped := sorted(set(out.metadata) - set(kept)):
                log.info("call.metadata_dropped", call_id=out.call_id[:128],
                         keys=[k[:64] for k in dropped[:20]])  # names only, never values
            out = replace(out, metadata=kept)
            self.session = await self.registry.admit(out, self.protocol, self.principal, self.settings.limits.max_calls,
                                                     self.factory)
            self.offset = self.session.audio_end
        elif isinstance(out, CallStop):
            self.reason = out.reason


async def serve_ingest(ws: WebSocket, protocol: str, registry: CallRegistry, settings: Settings,
                       factory: SessionFactory, tenants: dict[str, Any]) -> None:
    """Run one ingest connection until the call stops, the peer goes away or breaks a rule."""
    metrics = registry.metrics
    await ws.accept()
    if protocol not in PROTOCOLS:
        metrics.rejected.labels("unknown_protocol").inc()
        await ws.close(CloseCode.POLICY_VIOLATION,
                       close_reason(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}"))
        return
    conn = _Connection(ws, protocol, registry, settings, factory, tenants)
    closed = False
    try:
        await conn.read()
    except ProtocolError as error:
        log.warning("ingest.rejected", protocol=protocol, reason=error.reason, code=error.close_code)
        metrics.rejected.labels(REASONS.get(error.close_code, "protocol")).inc()
        conn.reason, closed = _end_reason(error), True
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.close(error.close_code, close_reason(error.reason))
    except WebSocketDisconnect:
        pass
    except Exception:  # a bug handling this connection ends this call only
        log.exception("ingest.failed", protocol=protocol, call_id=conn.session and conn.session.call_id)
        metrics.errors.labels("ingest").inc()
        conn.reason, closed = "internal error", True
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.close(CloseCode.INTERNAL_ERROR, "internal error")
    if conn.reason == "disconnected" and registry.stopping:
        conn.reason = "service stopped"  # the server closed the socket on its way down, not the telephony side
    if conn.session is not None:
        if conn.reason == "disconnected" and settings.limits.reconnect_grace_s > 0:
            registry.park(conn.session, settings.limits.reconnect_grace_s)
        else:
            await registry.end(conn.session, conn.reason)
    if conn.reason != "disconnected" and not closed:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.close(CloseCode.NORMAL, "call ended")
