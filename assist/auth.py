"""Who may do what: tenants' telephony credentials, signed access tokens and the rule for every path.

With no tenants configured the service runs in development mode: everything is open (a warning is
logged at start-up and `recobra serve` binds loopback only). With tenants, only `/healthz` and the
static page code under `/ui` are open; every other request carries credentials:

- telephony ingest: Twilio's X-Twilio-Signature (the tenant's auth token), or the tenant's X-API-KEY
  (plain, Genesys AudioHook; AudioHook's HTTP message signature too when a client secret is set);
- people: a short-lived access token (HMAC-SHA256 signed: tenant, role, call id, expiry) as
  `Authorization: Bearer` or `?token=`. An agent's token opens only its own call's events and log;
  supervisor and qa tokens open the dashboard, live feed, QA API and every call of their tenant;
- `/metrics`: the metrics token; `POST /auth/tokens`: a tenant API key (the integrator mints tokens).

A call belongs to the tenant whose credentials started it; other tenants get "no call" for it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import structlog
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from assist.settings import Settings, Tenant
from streaming.protocols.base import CloseCode, close_reason
from streaming.protocols.signatures import (
    SignatureError,
    valid_twilio_signature,
    verify_audiohook_signature,
)

log = structlog.get_logger(__name__)

Role = Literal["agent", "supervisor", "qa"]
ROLES: tuple[str, ...] = ("agent", "supervisor", "qa")
SCOPE_KEY = "recobra.principal"
MAX_TOKEN_CHARS = 2048
OPEN_PATHS = re.compile(r"/healthz|/|/ui(/.*)?")
CALL_PATH = re.compile(r"/(api/)?(?:calls|conversations)/(?P<call>[^/]+)(/.*)?")
INTEGRATION_PATH = re.compile(r"/calls/[^/]+/account|/api/webhooks/.*|/conversations(/.*)?")
"""Where the tenant's X-API-KEY also works (the lender's systems: account facts in, webhook deliveries,
written conversations)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a tenant and a role (`dev` in development mode, `ingest` for telephony)."""

    tenant: str | None
    role: str
    call_id: str | None = None
    subject: str = ""

    def sees(self, tenant: str | None) -> bool:
        """Whether this principal may see a call owned by `tenant`."""
        return self.role == "dev" or (tenant is not None and tenant == self.tenant)


DEV = Principal(None, "dev")


def principal_of(conn: HTTPConnection) -> Principal:
    """The principal AuthMiddleware attached to this request (DEV where no middleware runs)."""
    return conn.scope.get(SCOPE_KEY, DEV)


class AuthError(Exception):
    """Refused: 401 (who are you?), 403 (not for you) or 404 (another tenant's call)."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status

    @property
    def close_code(self) -> int:
        return {401: CloseCode.UNAUTHORIZED, 403: CloseCode.FORBIDDEN}.get(self.status, CloseCode.POLICY_VIOLATION)


# --- access tokens -------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def mint_token(
    secret: str,
    tenant: str,
    role: str,
    *,
    call_id: str | None = None,
    ttl_s: int = 3600,
    subject: str = "",
    now: float | None = None,
) -> str:
    """A signed token `<payload>.<mac>`; agents' tokens are scoped to one call."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if role == "agent" and not call_id:
        raise ValueError("an agent token needs the call id it opens")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    exp = int((time.time() if now is None else now) + ttl_s)
    payload = {"v": 1, "tenant": tenant, "role": role, "call_id": call_id, "sub": subject, "exp": exp}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_mac(secret, body)}"


def verify_token(secret: str, token: str, now: float | None = None) -> Principal:
    """The token's principal, or AuthError 401 (malformed, forged, expired)."""
    body, _, mac = token.partition(".")
    if not body or not mac or len(token) > MAX_TOKEN_CHARS:
        raise AuthError("malformed access token")
    if not hmac.compare_digest(_mac(secret, body).encode(), mac.encode()):
        raise AuthError("access token signature does not match")
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, binascii.Error) as e:
        raise AuthError("malformed access token") from e
    if not isinstance(payload, dict):
        raise AuthError("malformed access token")
    tenant, role, call_id, exp = (payload.get(k) for k in ("tenant", "role", "call_id", "exp"))
    subject = payload.get("sub", "")
    if (
        not isinstance(tenant, str)
        or role not in ROLES
        or not isinstance(exp, int)
        or not isinstance(subject, str)
        or not (call_id is None or isinstance(call_id, str))
        or (role == "agent" and not call_id)
    ):
        raise AuthError("malformed access token")
    if exp < (time.time() if now is None else now):
        raise AuthError("access token expired")
    return Principal(tenant, role, call_id, subject)


# --- credentials per tenant ----------------------------------------------------------------------


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class Authenticator:
    """The configured tenants' credentials, looked up without keeping secrets in plain dict keys."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tenants = {t.id: t for t in settings.security.tenants}
        self._by_key = {_digest(k.get_secret_value()): t for t in settings.security.tenants for k in t.api_keys}
        self._secret = settings.security.token_secret.get_secret_value() if settings.security.token_secret else ""

    @property
    def dev_mode(self) -> bool:
        return self.settings.security.dev_mode

    def by_api_key(self, key: str | None) -> Tenant | None:
        return self._by_key.get(_digest(key)) if key else None

    def ingest(self, protocol: str, headers: dict[str, str], url: str, target: str, authority: str) -> Principal:
        """Telephony credentials on an ingest upgrade -> the tenant streaming the call."""
        if protocol == "twilio":
            signature = headers.get("x-twilio-signature")
            if not signature:
                raise AuthError("missing X-Twilio-Signature")
            for t in self.tenants.values():
                if t.twilio_auth_token and valid_twilio_signature(t.twilio_auth_token.get_secret_value(), url,
                                                                  signature):
                    return Principal(t.id, "ingest")
            raise AuthError("X-Twilio-Signature does not match this URL for any tenant")
        tenant = self.by_api_key(headers.get("x-api-key"))
        if tenant is None:
            raise AuthError("missing or unknown X-API-KEY")
        if protocol == "genesys" and tenant.genesys_client_secret is not None:
            try:
                verify_audiohook_signature(headers, target, authority, tenant.genesys_client_secret.get_secret_value())
            except SignatureError as e:
                raise AuthError(f"AudioHook signature: {e}") from None
        return Principal(tenant.id, "ingest")

    def bearer(self, token: str | None) -> Principal:
        if not token:
            raise AuthError("missing access token (Authorization: Bearer, or ?token=)")
        principal = verify_token(self._secret, token)
        if principal.tenant not in self.tenants:
            raise AuthError("access token names an unknown tenant")
        return principal

    def mint(self, tenant: str, role: str, call_id: str | None = None, ttl_s: int | None = None,
             subject: str = "") -> tuple[str, int]:
        """(token, expiry unix time) for a configured tenant; ttl capped at token_max_ttl_s."""
        if tenant not in self.tenants:
            raise ValueError(f"unknown tenant {tenant!r}")
        ttl = min(ttl_s or self.settings.security.token_ttl_s, self.settings.security.token_max_ttl_s)
        now = time.time()
        minted = mint_token(self._secret, tenant, role, call_id=call_id, ttl_s=ttl, subject=subject, now=now)
        return minted, int(now + ttl)


class _RedactTokens(logging.Filter):
    """Blanks `token=...` in log records (uvicorn logs websocket paths with their query string)."""

    PATTERN = re.compile(r"(token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(self.PATTERN.sub(r"\1***", a) if isinstance(a, str) else a
                                for a in (record.args if isinstance(record.args, tuple) else (record.args,)))
        record.msg = self.PATTERN.sub(r"\1***", str(record.msg))
        return True


def redact_tokens_in_server_logs() -> None:
    """Keep access tokens out of uvicorn's own log lines (call once logging is configured)."""
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactTokens) for f in logger.filters):
            logger.addFilter(_RedactTokens())


# --- the rule for every path ---------------------------------------------------------------------

OwnerLookup = Callable[[str], Awaitable[tuple[bool, str | None]]]
"""call id -> (the call exists, the tenant that owns it)."""


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers", []):
        name, value = k.decode("latin-1").lower(), v.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


class AuthMiddleware:
    """ASGI middleware that authenticates every HTTP request and websocket, then checks the path's rule.

    The principal lands in the scope (`principal_of`); refusals are 401/403/404 for HTTP and a close
    with 4401/4403/1008 and a reason for websockets, logged without any credential. It also writes the
    access log (path without the query string, which may carry a token): run uvicorn without its own.
    """

    def __init__(self, app: ASGIApp, auth: Authenticator, owner: OwnerLookup,
                 on_reject: Callable[[str], None] = lambda reason: None) -> None:
        self.app = app
        self.auth = auth
        self.owner = owner
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            try:
                scope[SCOPE_KEY] = await self._authorise(scope)
            except AuthError as e:
                log.warning("auth.refused", path=scope["path"], kind=scope["type"], status=e.status, reason=e.reason)
                self.on_reject({401: "unauthorized", 403: "forbidden"}.get(e.status, "not_found"))
                await _refuse(scope, receive, send, e)
                return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_noting_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            principal = scope[SCOPE_KEY]
            log.info("http.request", method=scope["method"], path=scope["path"], status=status,
                     tenant=principal.tenant, role=principal.role)

    async def _authorise(self, scope: Scope) -> Principal:
        path = scope["path"]
        if self.auth.dev_mode:
            return DEV
        if OPEN_PATHS.fullmatch(path) and scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            return Principal(None, "anonymous")
        headers = _headers(scope)
        if path.startswith("/ingest/"):
            return self.auth.ingest(path.removeprefix("/ingest/"), headers, *self._upgrade_urls(scope, headers))
        if path == "/auth/tokens":
            tenant = self.auth.by_api_key(headers.get("x-api-key"))
            if tenant is None:
                raise AuthError("missing or unknown X-API-KEY")
            return Principal(tenant.id, "integration")
        token = _bearer(headers, scope)
        if path == "/metrics":
            expected = self.auth.settings.security.metrics_token
            if (expected is None or not token
                    or not hmac.compare_digest(token.encode(), expected.get_secret_value().encode())):
                raise AuthError("/metrics needs the metrics token", 401 if not token else 403)
            return Principal(None, "metrics")
        principal = self._integration(scope, headers) or self.auth.bearer(token)
        match = CALL_PATH.fullmatch(path)
        call_id = match["call"] if match and match["call"] != "live" else None
        if principal.role == "agent" and (match is None or match[1] or call_id != principal.call_id):
            raise AuthError("an agent token opens only its own call's events and log", 403)
        if call_id is not None:
            exists, owner = await self.owner(call_id)
            if exists and not principal.sees(owner):
                raise AuthError(f"no call {call_id!r}", 404)
        return principal

    def _integration(self, scope: Scope, headers: dict[str, str]) -> Principal | None:
        """The tenant's X-API-KEY on an INTEGRATION_PATH request; None where there is none to check."""
        if scope["type"] != "http" or "x-api-key" not in headers or not INTEGRATION_PATH.fullmatch(scope["path"]):
            return None
        tenant = self.auth.by_api_key(headers["x-api-key"])
        if tenant is None:
            raise AuthError("unknown X-API-KEY")
        return Principal(tenant.id, "integration")

    def _upgrade_urls(self, scope: Scope, headers: dict[str, str]) -> tuple[str, str, str]:
        """(full URL, request target, authority) of an upgrade as the telephony side addressed it."""
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        target = path + (f"?{query}" if query else "")
        public = self.auth.settings.security.public_url
        if public:
            parts = urlsplit(public)
            return public.rstrip("/") + target, target, parts.netloc
        forwarded = headers.get("x-forwarded-proto", "").split(",")[0].strip()
        scheme = {"https": "wss", "http": "ws"}.get(forwarded, scope.get("scheme", "ws"))
        host = headers.get("host", "")
        return f"{scheme}://{host}{target}", target, host


def _bearer(headers: dict[str, str], scope: Scope) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    tokens = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return tokens[0] if tokens else None


async def _refuse(scope: Scope, receive: Receive, send: Send, error: AuthError) -> None:
    if scope["type"] == "websocket":
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": error.close_code, "reason": close_reason(error.reason)})
        return
    body = json.dumps({"detail": error.reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if error.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="recobra"'))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- minting tokens over HTTP (for the integrator's CTI, with a tenant API key) -------------------

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenRequest(BaseModel):
    role: Role
    call_id: str | None = Field(None, min_length=1, max_length=128, description="Required for agents.")
    subject: str = Field("", max_length=128, description="Who the token is for (agent id, reviewer).")
    ttl_s: int | None = Field(None, ge=1, description="Lifetime; default and cap come from settings.")


class TokenOut(BaseModel):
    token: str
    expires_at: int = Field(description="Unix time.")


@router.post("/tokens", response_model=TokenOut, responses={400: {"description": "Bad request"},
                                                             404: {"description": "Development mode"}})
def create_token(body: TokenRequest, request: Request) -> TokenOut:
    """A token for the caller's tenant (authenticated with its X-API-KEY)."""
    auth: Authenticator = request.app.state.auth
    principal = principal_of(request)
    if auth.dev_mode or principal.tenant is None:
        raise HTTPException(404, "development mode: no tenants, no tokens")
    if body.role == "agent" and not body.call_id:
        raise HTTPException(400, "an agent token needs call_id")
    token, expires_at = auth.mint(principal.tenant, body.role, body.call_id, body.ttl_s, body.subject)
    log.info("auth.token_minted", tenant=principal.tenant, role=body.role, call_id=body.call_id)
    return TokenOut(token=token, expires_at=expires_at)

