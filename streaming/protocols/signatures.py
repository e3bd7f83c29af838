"""Telephony request signatures: Twilio's X-Twilio-Signature and AudioHook's RFC 9421 HTTP signatures.

Both are checked on the websocket upgrade request, before any audio flows.

- Twilio signs the URL it connects to (the `<Stream url>`, with no POST parameters for a websocket):
  base64(HMAC-SHA1(auth token, url + sorted(name + value))).
- Genesys AudioHook, when a client secret is configured, signs `@request-target`, `@authority`, the
  three `Audiohook-*` ids and `X-API-KEY` with HMAC-SHA256 keyed by the base64-decoded client secret
  (`Signature-Input` / `Signature` headers, label `sig1`, parameters keyid, nonce, alg, created, expires).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import http_sfv

AUDIOHOOK_COMPONENTS = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)
MAX_SIGNATURE_AGE_S = 10
CLOCK_SKEW_S = 3
MIN_NONCE_CHARS = 22
DEFAULT_PORTS = {"wss": 443, "https": 443, "ws": 80, "http": 80}


class SignatureError(Exception):
    """A signature is missing, malformed, stale or does not match."""


# --- Twilio ---------------------------------------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """X-Twilio-Signature for a request to `url` with form `params` (none for a websocket upgrade)."""
    data = url + "".join(k + v for k, v in sorted((params or {}).items()))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as given, with its default port added and with it removed (Twilio may sign either)."""
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    variants = [url]
    if default is not None and parts.port in (None, default):
        for netloc in (host, f"{host}:{default}"):
            variant = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
            if variant not in variants:
                variants.append(variant)
    return variants


def valid_twilio_signature(auth_token: str, url: str, signature: str) -> bool:
    """Whether `signature` is Twilio's for a websocket upgrade to `url` (constant-time compare)."""
    given = signature.encode()
    return any(hmac.compare_digest(twilio_signature(auth_token, u).encode(), given) for u in _url_variants(url))


# --- Genesys AudioHook (RFC 9421 subset) ----------------------------------------------------------


def _canonical(value: str) -> str:
    """A header value as RFC 9421 covers it: trimmed, obsolete line folding joined."""
    return " ".join(part.strip() for part in value.strip().split("\r\n"))


def _sf_string(value: str) -> str:
    if not value.isascii() or not value.isprintable():
        raise SignatureError("signature parameter values must be printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def signature_base(components: list[str], values: Mapping[str, str], params: str) -> bytes:
    lines = [f'"{name}": {values[name]}' for name in components]
    lines.append(f'"@signature-params": ({" ".join(_sf_string(c) for c in components)}){params}')
    return "\n".join(lines).encode()


def _decode_secret(secret_b64: str) -> bytes:
    try:
        return base64.b64decode(secret_b64, validate=True)
    except binascii.Error as e:
        raise ValueError("the AudioHook client secret must be base64") from e


def audiohook_signature_headers(
    headers: Mapping[str, str],
    request_target: str,
    authority: str,
    client_secret_b64: str,
    *,
    created: int | None = None,
    nonce: str | None = None,
    lifetime_s: int = 30,
) -> dict[str, str]:
    """`Signature-Input` and `Signature` for an AudioHook upgrade carrying `headers` (what Genesys sends)."""
    lower = {k.lower(): v for k, v in headers.items()}
    created = int(time.time()) if created is None else created
    nonce = nonce or secrets.token_urlsafe(18)
    values = {"@request-target": request_target, "@authority": authority.lower()}
    values |= {c: _canonical(lower[c]) for c in AUDIOHOOK_COMPONENTS if not c.startswith("@")}
    params = (
        f";keyid={_sf_string(lower['x-api-key'])};nonce={_sf_string(nonce)};alg=\"hmac-sha256\""
        f";created={created};expires={created + lifetime_s}"
    )
    base = signature_base(list(AUDIOHOOK_COMPONENTS), values, params)
    mac = hmac.new(_decode_secret(client_secret_b64), base, hashlib.sha256).digest()
    inner = " ".join(_sf_string(c) for c in AUDIOHOOK_COMPONENTS)
    return {
        "Signature-Input": f"sig1=({inner}){params}",
        "Signature": f"sig1=:{base64.b64encode(mac).decode('ascii')}:",
    }


def _parse_dictionary(value: str, name: str) -> http_sfv.Dictionary:
    parsed = http_sfv.Dictionary()
    try:
        parsed.parse(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as e:
        raise SignatureError(f"malformed {name} header") from e
    return parsed


def verify_audiohook_signature(
    headers: Mapping[str, str],
    request_target: str,
    authority: str,
    client_secret_b64: str,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless the upgrade's signature covers what AudioHook signs and matches."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "signature-input" not in lower or "signature" not in lower:
        raise SignatureError("a client secret is configured: Signature and Signature-Input are required")
    inputs = _parse_dictionary(lower["signature-input"], "Signature-Input")
    signatures = _parse_dictionary(lower["signature"], "Signature")
    if not len(inputs):
        raise SignatureError("Signature-Input names no signature")
    label = next(iter(inputs))
    spec, signature = inputs[label], signatures.get(label)
    if not isinstance(spec, http_sfv.InnerList) or signature is None or not isinstance(signature.value, bytes):
        raise SignatureError(f"signature {label!r} is malformed or missing")
    components = [item.value for item in spec]
    if any(type(c) is not str or item.params for c, item in zip(components, spec, strict=True)):
        raise SignatureError("covered components must be plain strings")
    if len(set(components)) != len(components) or set(AUDIOHOOK_COMPONENTS) - set(components):
        raise SignatureError("the signature must cover " + ", ".join(AUDIOHOOK_COMPONENTS) + " once each")
    params = dict(spec.params)
    if set(params) - {"keyid", "nonce", "alg", "created", "expires"}:
        raise SignatureError("unknown signature parameter")
    if params.get("alg", "hmac-sha256") != "hmac-sha256":
        raise SignatureError("only hmac-sha256 signatures are supported")
    if params.get("keyid") != lower.get("x-api-key"):
        raise SignatureError("signature keyid does not match X-API-KEY")
    nonce = params.get("nonce")
    if not isinstance(nonce, str) or len(nonce) < MIN_NONCE_CHARS:
        raise SignatureError("signature nonce missing or too short")
    now = time.time() if now is None else now
    created, expires = params.get("created"), params.get("expires")
    if not isinstance(created, int) or isinstance(created, bool):
        raise SignatureError("signature has no created time")
    if created > now + CLOCK_SKEW_S or now - created > MAX_SIGNATURE_AGE_S + CLOCK_SKEW_S:
        raise SignatureError("signature created time is outside the accepted window")
    if isinstance(expires, int) and expires < now - CLOCK_SKEW_S:
        raise SignatureError("signature expired")
    values = {"@request-target": request_target, "@authority": authority.lower()}
    for c in components:
        if c.startswith("@"):
            if c not in values:
                raise SignatureError(f"unsupported derived component {c!r}")
        elif c not in lower:
            raise SignatureError(f"covered header {c!r} is missing")
        else:
            values[c] = _canonical(lower[c])
    base = signature_base(components, values, str(spec.params))
    expected = hmac.new(_decode_secret(client_secret_b64), base, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, bytes(signature.value)):
        raise SignatureError("signature does not match")
