"""Call outcomes out: signed webhooks from the outbox to a real HTTP receiver that fails, times out and
recovers; a receiver that is down across a restart loses nothing; the tenant's deliveries API."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
from pydantic import ValidationError

from assist.replay import replay
from assist.settings import Settings, Tenant
from models.tts import load_voice
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.tenancy import ACME_KEY, GLOBEX_KEY, TENANTS, bearer, tenant_settings

SECRET = "whsec-0123456789abcdef"
FAST_RETRIES = {"webhook_backoff_s": 0.2, "webhook_backoff_max_s": 1.0, "webhook_timeout_s": 1.0, "webhook_poll_s": 0.1}


class Receiver:
    """A loopback HTTP server answering each POST by the next of `script` ("fail": 500, "slow": 200 after
    longer than the sender waits, "ok": 204), then "ok"; it records every request."""

    def __init__(self, script: list[str], port: int = 0) -> None:
        self.script, self.requests = list(script), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                action = receiver.script.pop(0) if receiver.script else "ok"
                receiver.requests.append((dict(self.headers), body.decode(), action))
                if action == "slow":
                    time.sleep(2.0)
                self.send_response(500 if action == "fail" else 204 if action == "ok" else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/recobra"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def acknowledged(self) -> dict[str, dict]:
        """Event id -> body of the requests answered "ok"."""
        return {h["X-Recobra-Event-Id"]: json.loads(b) for h, b, action in self.requests if action == "ok"}


def verify(headers: dict, body: str) -> bool:
    parts = dict(p.split("=", 1) for p in headers["X-Recobra-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{parts['t']}.{body}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 120


def settings_for(tmp, url: str, **overrides) -> Settings:
    """The test tenants, acme with a webhook to `url`; fast retries."""
    tenants = [Tenant.model_validate({**TENANTS[0], "webhook_url": url, "webhook_secret": SECRET}),
               Tenant.model_validate(TENANTS[1])]
    return tenant_settings(tmp, **FAST_RETRIES, **overrides).model_copy(update={"tenants": tenants})


def deliveries(service, headers: dict | None = None) -> list[dict]:
    response = httpx.get(f"{service.http}/api/webhooks/deliveries", headers=headers or {"X-API-KEY": ACME_KEY})
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return result


def promise_call() -> tuple[np.ndarray, np.ndarray]:
    voice = load_voice("joe")
    turns = [("agent", "Can you make a payment on the account today?"),
             ("debtor", "Yes. I will pay fifty dollars on Friday by card.")]
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    tracks: dict[str, list[np.ndarray]] = {"agent": [gap], "debtor": [gap]}
    for speaker, text in turns:
        speech = voice(text)
        for who in tracks:
            tracks[who] += [speech if who == speaker else np.zeros_like(speech), gap]
    return np.concatenate(tracks["agent"]), np.concatenate(tracks["debtor"])


def test_outcomes_are_signed_retried_through_failures_and_timeouts_and_redelivered(tmp_path):
    receiver = Receiver(["fail", "slow"])
    try:
        with RunningService(settings_for(tmp_path, receiver.url)) as service:
            agent, debtor = promise_call()
            asyncio.run(replay(service.url, "plain", agent, debtor, SAMPLE_RATE, call_id="hook-1", speed=0,
                               api_key=ACME_KEY, metadata={"language": "en"}))
            rows = wait_for(lambda: len(r := deliveries(service)) == 2
                            and all(d["status"] == "delivered" for d in r) and r)
            assert {d["event"] for d in rows} == {"promise_to_pay.captured", "call.completed"}
            assert [a for *_, a in receiver.requests][:2] == ["fail", "slow"]  # a 500, then a timeout: both again
            assert sum(d["attempts"] for d in rows) == len(receiver.requests) == 4
            assert all(verify(h, b) for h, b, _ in receiver.requests)
            acked = receiver.acknowledged()
            assert set(acked) == {d["id"] for d in rows}
            promise = next(b for b in acked.values() if b["type"] == "promise_to_pay.captured")["data"]
            assert promise["live"] is True and promise["promise"]["amount"] == 50.0  # sent as soon as it was heard
            assert promise["promise"]["method"] == "card" and promise["promise"]["heard"]["start"] > 0
            completed = next(b for b in acked.values() if b["type"] == "call.completed")
            data = completed["data"]
            assert completed["tenant"] == "acme" and data["call_id"] == "hook-1"
            assert data["promise"]["kind"] == "promise_to_pay" and data["promise"]["amount"] == 50.0
            assert data["category"]["primary"] == "promise_to_pay" and data["qa"]["score"] is not None
            assert {"cease_request", "dispute", "hardship", "compliance_breaches", "account_facts"} <= set(data)
            agreed = next(line for line in data["summary"]["lines"] if line["section"] == "agreed")
            assert agreed["text"].startswith("Promise to pay 50.00 USD on ")
            assert agreed["source"]["speaker"] == "debtor" and "pay $50" in agreed["source"]["quote"]
            assert deliveries(service, {"X-API-KEY": GLOBEX_KEY}) == []
            assert deliveries(service, bearer("acme", "supervisor")) == rows
            assert httpx.get(f"{service.http}/api/webhooks/deliveries",
                             headers=bearer("acme", "qa")).status_code == 403
            one = rows[0]["id"]
            other = httpx.post(f"{service.http}/api/webhooks/deliveries/{one}/redeliver",
                               headers={"X-API-KEY": GLOBEX_KEY})
            assert other.status_code == 404
            again = httpx.post(f"{service.http}/api/webhooks/deliveries/{one}/redeliver",
                               headers={"X-API-KEY": ACME_KEY})
            assert again.status_code == 202
            wait_for(lambda: sum(h["X-Recobra-Event-Id"] == one for h, _, a in receiver.requests if a == "ok") == 2)
            lines = [{"section": "agreed", "text": "50 USD on Friday by card."}]
            assert httpx.put(f"{service.http}/calls/hook-1/summary", json={"lines": lines},
                             headers=bearer("acme", "supervisor")).status_code == 200
            edited = wait_for(lambda: [b for b in receiver.acknowledged().values()
                                       if b["type"] == "call.summary_edited"])
            assert edited[0]["data"] == {"call_id": "hook-1", "lines": lines, "edited_by": "supervisor@acme"}
            assert all(verify(h, b) for h, b, _ in receiver.requests)
    finally:
        receiver.close()


def test_a_receiver_down_across_a_restart_loses_nothing(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks"
    silence = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    with RunningService(settings_for(tmp_path, url)) as service:
        asyncio.run(replay(service.url, "plain", silence, silence, SAMPLE_RATE, call_id="hook-2", speed=0,
                           api_key=ACME_KEY, metadata={"language": "en"}))
        row = wait_for(lambda: [d for d in deliveries(service) if d["attempts"] >= 2])[0]
        assert row["status"] == "pending" and row["event"] == "call.completed" and "Connect" in row["last_error"]
    receiver = Receiver([], port)
    try:
        with RunningService(settings_for(tmp_path, url)) as service:
            wait_for(lambda: deliveries(service)[0]["status"] == "delivered")
            assert list(receiver.acknowledged()) == [row["id"]]
    finally:
        receiver.close()


def test_a_delivery_failing_past_the_give_up_time_is_failed_until_redelivered(tmp_path):
    receiver = Receiver(["fail"] * 10)
    try:
        with RunningService(settings_for(tmp_path, receiver.url, webhook_give_up_s=0.5)) as service:
            silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
            asyncio.run(replay(service.url, "plain", silence, silence, SAMPLE_RATE, call_id="hook-3", speed=0,
                               api_key=ACME_KEY, metadata={"language": "en"}))
            row = wait_for(lambda: [d for d in deliveries(service) if d["status"] == "failed"])[0]
            assert row["last_status"] == 500 and row["next_attempt_at"] is None
            assert row["attempts"] >= 2
            receiver.script[:] = ["fail"]  # the redelivery fails once more, then its retry gets through
            httpx.post(f"{service.http}/api/webhooks/deliveries/{row['id']}/redeliver", headers={"X-API-KEY": ACME_KEY})
            done = wait_for(lambda: [d for d in deliveries(service) if d["status"] == "delivered"])[0]
            assert done["id"] == row["id"] and done["attempts"] == row["attempts"] + 2
    finally:
        receiver.close()


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "example.com/hook"])
def test_webhook_urls_are_http_and_need_a_secret(url):
    with pytest.raises(ValidationError):
        Tenant(id="t", webhook_url=url, webhook_secret=SECRET)
    with pytest.raises(ValidationError, match="webhook_secret"):
        Tenant(id="t", webhook_url="https://example.com/hook")
