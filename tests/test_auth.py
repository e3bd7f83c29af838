"""Authentication and tenant isolation: telephony credentials, signed tokens, roles, open paths."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time

import httpx
import pytest
import structlog
import websockets
from typer.testing import CliRunner

from assist.auth import (
    AuthError,
    mint_token,
    redact_tokens_in_server_logs,
    verify_token,
)
from assist.cli import app as cli
from assist.democall import fleurs_call
from assist.replay import follow, replay
from assist.settings import Settings, get_settings
from streaming.protocols.genesys import GenesysClient
from streaming.protocols.signatures import (
    SignatureError,
    audiohook_signature_headers,
    signature_base,
    twilio_signature,
    valid_twilio_signature,
    verify_audiohook_signature,
)
from streaming.protocols.twilio import twilio_messages
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.tenancy import (
    ACME_ACCOUNT,
    ACME_KEY,
    ACME_TWILIO_TOKEN,
    GLOBEX_KEY,
    GLOBEX_SECRET,
    METRICS_TOKEN,
    TENANTS,
    TOKEN_SECRET,
    bearer,
    tenant_settings,
    token,
)

SECRETS = [ACME_KEY, ACME_TWILIO_TOKEN, GLOBEX_KEY, GLOBEX_SECRET, TOKEN_SECRET, METRICS_TOKEN]


# --- pure parts -----------------------------------------------------------------------------------


def test_token_round_trip_and_refusals():
    t = mint_token(TOKEN_SECRET, "acme", "agent", call_id="c1", ttl_s=60, subject="alice")
    p = verify_token(TOKEN_SECRET, t)
    assert (p.tenant, p.role, p.call_id, p.subject) == ("acme", "agent", "c1", "alice")
    mac = t.split(".")[1]
    forged = base64.urlsafe_b64encode(json.dumps({"tenant": "acme", "role": "supervisor", "exp": 2**40})
                                      .encode()).decode().rstrip("=")
    for bad, why in [
        (t, "expired"),  # checked a day later
        (f"{forged}.{mac}", "signature"),
        (mint_token("another-secret-0123456789abcdef0123", "acme", "qa"), "signature"),
        ("garbage", "malformed"),
        (t + "x" * 3000, "malformed"),
    ]:
        with pytest.raises(AuthError, match=why):
            verify_token(TOKEN_SECRET, bad, now=time.time() + 86400 if why == "expired" else None)
    with pytest.raises(ValueError):
        mint_token(TOKEN_SECRET, "acme", "agent")  # an agent token needs its call
    with pytest.raises(ValueError):
        mint_token(TOKEN_SECRET, "acme", "admin")


def test_twilio_signature_matches_twilio_documented_example():
    # the worked example of Twilio's "Validating requests" documentation (auth token 12345)
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030", "To": "+18005551212"}
    assert twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == \
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    signed = twilio_signature("tok", "wss://assist.example.com/ingest/twilio")
    assert valid_twilio_signature("tok", "wss://assist.example.com:443/ingest/twilio", signed)
    assert not valid_twilio_signature("tok", "wss://assist.example.com/ingest/plain", signed)
    assert not valid_twilio_signature("other", "wss://assist.example.com/ingest/twilio", signed)


def test_signature_base_matches_rfc_9421_hmac_example():
    # RFC 9421 appendix B.2.5: HMAC-SHA256 over date, @authority and content-type
    key = base64.b64decode("uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==")
    values = {"date": "Tue, 20 Apr 2021 02:07:55 GMT", "@authority": "example.com", "content-type": "application/json"}
    base = signature_base(["date", "@authority", "content-type"], values,
                          ';created=1618884473;keyid="test-shared-secret"')
    mac = base64.b64encode(hmac.new(key, base, hashlib.sha256).digest()).decode()
    assert mac == "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8="


def test_audiohook_signature_verification():
    client = GenesysClient(*fleurs_call("en", turns=1)[:2], SAMPLE_RATE, api_key=GLOBEX_KEY)
    headers = dict(client.headers)
    signed = headers | audiohook_signature_headers(headers, "/ingest/genesys", "host:8080", GLOBEX_SECRET)
    verify_audiohook_signature(signed, "/ingest/genesys", "HOST:8080", GLOBEX_SECRET)
    other_secret = base64.b64encode(b"not the secret").decode()
    stale = headers | audiohook_signature_headers(headers, "/ingest/genesys", "host:8080", GLOBEX_SECRET,
                                                   created=int(time.time()) - 60)
    for bad_headers, target, secret, why in [
        (signed, "/ingest/plain", GLOBEX_SECRET, "does not match"),
        (signed | {"Audiohook-Session-Id": "someone else"}, "/ingest/genesys", GLOBEX_SECRET, "does not match"),
        (signed | {"X-API-KEY": ACME_KEY}, "/ingest/genesys", GLOBEX_SECRET, "keyid"),
        (signed, "/ingest/genesys", other_secret, "does not match"),
        (stale, "/ingest/genesys", GLOBEX_SECRET, "window"),
        (headers, "/ingest/genesys", GLOBEX_SECRET, "required"),
        (signed | {"Signature": "sig1=:bm90IGJhc2U2NA:"}, "/ingest/genesys", GLOBEX_SECRET, "malformed"),
        (signed | {"Signature-Input": 'sig1=("x-api-key");keyid="k"'}, "/ingest/genesys", GLOBEX_SECRET, "cover"),
    ]:
        with pytest.raises(SignatureError, match=why):
            verify_audiohook_signature(bad_headers, target, "host:8080", secret)


def test_settings_refuse_weak_or_ambiguous_tenants(tmp_path):
    with pytest.raises(ValueError, match="token_secret"):
        Settings(tenants=TENANTS)
    with pytest.raises(ValueError, match="unique"):
        Settings(tenants=[TENANTS[0], {**TENANTS[1], "api_keys": [ACME_KEY]}], token_secret=TOKEN_SECRET)
    with pytest.raises(ValueError, match="16 characters"):
        Settings(tenants=[{"id": "x", "api_keys": ["short"]}], token_secret=TOKEN_SECRET)
    tenants_file = tmp_path / "tenants.yaml"
    tenants_file.write_text("- id: initech\n  api_keys: [initech-key-0123456789]\n")
    settings = Settings(tenants_file=tenants_file, token_secret=TOKEN_SECRET)
    assert [t.id for t in settings.security.tenants] == ["initech"] and not settings.security.dev_mode
    assert "initech-key" not in repr(settings) and TOKEN_SECRET not in repr(settings)


def test_cli_mints_tokens_and_refuses_open_public_bind(monkeypatch):
    runner = CliRunner()
    for name in ("RECOBRA_TENANTS", "RECOBRA_TENANTS_FILE", "RECOBRA_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    refused = runner.invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "development mode" in refused.output
    monkeypatch.setenv("RECOBRA_TENANTS", json.dumps(TENANTS))
    monkeypatch.setenv("RECOBRA_TOKEN_SECRET", TOKEN_SECRET)
    get_settings.cache_clear()
    try:
        minted = runner.invoke(cli, ["token", "--tenant", "acme", "--role", "agent", "--call", "c9", "--ttl", "120"])
        assert minted.exit_code == 0, minted.output
        p = verify_token(TOKEN_SECRET, minted.output.strip())
        assert (p.tenant, p.role, p.call_id) == ("acme", "agent", "c9")
        assert runner.invoke(cli, ["token", "--tenant", "nobody", "--role", "qa"]).exit_code != 0
        assert runner.invoke(cli, ["token", "--tenant", "acme", "--role", "agent"]).exit_code != 0
    finally:
        get_settings.cache_clear()


# --- the running service --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with RunningService(tenant_settings(tmp_path_factory.mktemp("auth"))) as running:
        yield running


@pytest.fixture(scope="module")
def audio():
    agent, debtor, _ = fleurs_call("en", turns=2)
    return agent, debtor


async def close_of(url: str, headers: dict | None = None, messages: list | None = None) -> tuple[int, str]:
    async with websockets.connect(url, additional_headers=headers or {}) as ws:
        try:
            for m in messages or []:
                await ws.send(m)
            while True:
                await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("the server never closed")


def events_of(service, call_id: str, tok: str) -> list[dict]:
    events: list[dict] = []
    asyncio.run(follow(service.url, call_id, events.append, token=tok))
    return events


@pytest.fixture(scope="module")
def calls(service, audio):
    """One call per tenant and protocol, streamed with valid credentials; their event logs."""
    agent, debtor = audio
    with structlog.testing.capture_logs() as logs:
        asyncio.run(replay(service.url, "plain", agent, debtor, SAMPLE_RATE, call_id="acme-plain", speed=0,
                           api_key=ACME_KEY))
        asyncio.run(replay(service.url, "twilio", agent, debtor, SAMPLE_RATE, call_id="acme-twilio", speed=0,
                           api_key=ACME_TWILIO_TOKEN, account_sid=ACME_ACCOUNT))
        asyncio.run(replay(service.url, "genesys", agent, debtor, SAMPLE_RATE, call_id="globex-genesys", speed=0,
                           api_key=GLOBEX_KEY, client_secret=GLOBEX_SECRET))
        out = {cid: events_of(service, cid, token(tenant, "agent", cid))
               for cid, tenant in [("acme-plain", "acme"), ("acme-twilio", "acme"), ("globex-genesys", "globex")]}
    return out, logs


def test_valid_credentials_stream_calls_for_their_tenant(calls):
    events, _ = calls
    for call_id, log in events.items():
        kinds = [e["type"] for e in log]
        assert kinds[0] == "call.started" and "call.ended" in kinds, call_id
        assert any(e["type"] == "transcript.final" and e["text"] for e in log), call_id
        assert log[0]["metadata"]["tenant"] == ("globex" if call_id.startswith("globex") else "acme")


@pytest.mark.parametrize("protocol, headers, messages, code, reason", [
    ("plain", {}, [], 4401, "X-API-KEY"),
    ("plain", {"X-API-KEY": "not-a-key-0123456789"}, [], 4401, "X-API-KEY"),
    ("twilio", {}, [], 4401, "X-Twilio-Signature"),
    ("twilio", {"X-Twilio-Signature": twilio_signature("wrong-token", "ws://x/ingest/twilio")}, [], 4401, "match"),
    ("genesys", {"X-API-KEY": GLOBEX_KEY}, [], 4401, "AudioHook signature"),  # globex signs: unsigned is refused
    ("nope", {"X-API-KEY": ACME_KEY}, ["{}"], 1008, "unknown protocol"),
])
def test_ingest_without_valid_credentials_is_closed(service, protocol, headers, messages, code, reason):
    got, why = asyncio.run(close_of(f"{service.url}/ingest/{protocol}", headers, messages))
    assert got == code and reason in why


def test_twilio_start_for_another_account_is_refused(service, audio):
    url = f"{service.url}/ingest/twilio"
    messages = [m for _, m in twilio_messages(*audio, SAMPLE_RATE, call_sid="CAother", account_sid="AC" + "2" * 32)]
    code, why = asyncio.run(close_of(url, {"X-Twilio-Signature": twilio_signature(ACME_TWILIO_TOKEN, url)},
                                     messages[:3]))
    assert code == 4403 and "accountSid" in why


def test_genesys_key_with_tampered_signature_is_refused(service, audio):
    client = GenesysClient(*audio, SAMPLE_RATE, api_key=GLOBEX_KEY)
    headers = dict(client.headers)
    headers |= audiohook_signature_headers(headers, "/ingest/genesys", f"127.0.0.1:{service.port}", GLOBEX_SECRET)
    headers["Audiohook-Correlation-Id"] = "replayed-by-someone-else"
    code, why = asyncio.run(close_of(f"{service.url}/ingest/genesys", headers, [client.open_message()]))
    assert code == 4401 and "does not match" in why


def test_only_healthz_and_page_code_are_open(service, calls):
    assert httpx.get(service.http + "/healthz").json()["status"] == "ok"
    assert httpx.get(service.http + "/ui/overlay.html").status_code == 200
    for path in ("/calls", "/calls/acme-plain/log", "/api/calls", "/api/calls.csv", "/api/calls/acme-plain",
                 "/metrics", "/docs", "/openapi.json", "/calls/live"):
        response = httpx.get(service.http + path)
        assert response.status_code == 401, path
        assert "detail" in response.json()
    assert httpx.post(service.http + "/api/calls/acme-plain/scorecard/items/x/override",
                      json={"result": "pass", "reviewer": "r", "comment": "c"}).status_code == 401
    code, _ = asyncio.run(close_of(f"{service.url}/calls/acme-plain/events"))
    assert code == 4401
    code, _ = asyncio.run(close_of(f"{service.url}/calls/live"))
    assert code == 4401


def test_agent_token_opens_only_its_own_call(service, calls):
    agent = token("acme", "agent", "acme-plain")
    assert httpx.get(f"{service.http}/calls/acme-plain/log", params={"token": agent}).status_code == 200
    assert httpx.get(f"{service.http}/calls/acme-plain/log",
                     headers={"Authorization": f"Bearer {agent}"}).status_code == 200
    for path in ("/calls/acme-twilio/log", "/calls", "/api/calls", "/api/calls/acme-plain", "/calls/live"):
        assert httpx.get(service.http + path, params={"token": agent}).status_code == 403, path
    code, why = asyncio.run(close_of(f"{service.url}/calls/acme-twilio/events?token={agent}"))
    assert code == 4403 and "own call" in why
    expired = mint_token(TOKEN_SECRET, "acme", "agent", call_id="acme-plain", ttl_s=1, now=time.time() - 10)
    assert httpx.get(f"{service.http}/calls/acme-plain/log", params={"token": expired}).status_code == 401


def test_tenants_never_see_each_others_calls(service, calls):
    events, _ = calls
    acme, globex = bearer("acme", "supervisor"), bearer("globex", "qa")
    acme_ids = {c["id"] for c in httpx.get(service.http + "/api/calls", headers=acme).json()}
    globex_ids = {c["id"] for c in httpx.get(service.http + "/api/calls", headers=globex).json()}
    assert acme_ids == {"acme-plain", "acme-twilio"} and globex_ids == {"globex-genesys"}
    csv = httpx.get(service.http + "/api/calls.csv", headers=globex).text
    assert "globex-genesys" in csv and "acme" not in csv
    detail = httpx.get(service.http + "/api/calls/acme-plain", headers=acme)
    assert detail.status_code == 200 and len(detail.json()["events"]) == len(events["acme-plain"])
    assert httpx.get(service.http + "/api/calls/acme-plain", headers=globex).status_code == 404
    assert httpx.post(service.http + "/api/calls/acme-plain/scorecard/items/x/override", headers=globex,
                      json={"result": "pass", "reviewer": "r", "comment": "c"}).status_code == 404
    assert httpx.get(service.http + "/calls/acme-plain/log", headers=globex).status_code == 404
    code, why = asyncio.run(close_of(f"{service.url}/calls/acme-plain/events?token={token('globex', 'supervisor')}"))
    assert code == 1008 and "no call" in why
    # a tenant cannot take over another tenant's call id either
    start = json.dumps({"event": "start", "call_id": "acme-plain", "encoding": "pcm16", "sample_rate": 16000,
                        "channels": ["agent"]})
    code, why = asyncio.run(close_of(f"{service.url}/ingest/plain", {"X-API-KEY": GLOBEX_KEY}, [start]))
    assert code == 1008 and "in use" in why


def test_integrator_mints_agent_tokens_with_its_api_key(service, calls):
    response = httpx.post(service.http + "/auth/tokens", headers={"X-API-KEY": GLOBEX_KEY},
                          json={"role": "agent", "call_id": "globex-genesys", "subject": "agent-7"})
    assert response.status_code == 200
    minted = response.json()["token"]
    assert httpx.get(f"{service.http}/calls/globex-genesys/log", params={"token": minted}).status_code == 200
    assert httpx.get(f"{service.http}/calls/acme-plain/log", params={"token": minted}).status_code == 403
    assert httpx.post(service.http + "/auth/tokens", json={"role": "qa"}).status_code == 401
    assert httpx.post(service.http + "/auth/tokens", headers={"X-API-KEY": GLOBEX_KEY},
                      json={"role": "agent"}).status_code == 400


def test_metrics_need_the_metrics_token(service, calls):
    assert httpx.get(service.http + "/metrics", headers=bearer("acme", "supervisor")).status_code == 403
    text = httpx.get(service.http + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    for name in ("recobra_active_calls", "recobra_calls_total", "recobra_final_latency_seconds_bucket",
                 "recobra_rejected_connections_total", "recobra_events_total"):
        assert name in text
    assert 'recobra_rejected_connections_total{reason="unauthorized"}' in text
    # the shared workers' queues: every call that used them in the last minute, and the waiting requests
    lines = text.splitlines()
    for worker in ("asr", "embeddings"):
        assert any(line.startswith("recobra_inference_lag_seconds{") and f'worker="{worker}"' in line
                   and 'call_id="acme-plain"' in line for line in lines), worker
        assert any(line.startswith("recobra_inference_queue_depth{") and f'worker="{worker}"' in line
                   and 'priority="final"' in line for line in lines), worker


def test_secrets_are_never_logged(service, calls):
    _, logs = calls
    with structlog.testing.capture_logs() as refused:
        asyncio.run(close_of(f"{service.url}/ingest/plain", {"X-API-KEY": ACME_KEY[:-1] + "!"}))
        httpx.get(service.http + "/api/calls", params={"token": token("acme", "qa") + "x"})
    everything = json.dumps(logs + refused, default=str)
    assert "auth.refused" in everything and "call.started" in everything
    for secret in SECRETS + [ACME_KEY[:-1] + "!"]:
        assert secret not in everything


def test_server_log_lines_never_carry_tokens():
    redact_tokens_in_server_logs()
    secret = token("acme", "agent", "c1")
    record = logging.getLogger("uvicorn.error").makeRecord(
        "uvicorn.error", logging.INFO, __file__, 0, '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", f"/calls/c1/events?since=3&token={secret}"), None)
    for f in logging.getLogger("uvicorn.error").filters:
        f.filter(record)
    assert secret not in record.getMessage() and "since=3&token=***" in record.getMessage()
