"""Written conversations on a real service with tenants: the scripted English call replayed as a chat gives
the compliance rules and prompt cards its transcript gives; a Spanish WhatsApp conversation is stored, scored
(audio-only items not applicable) and categorised; drafts; bad input; tenancy; the call's event socket."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets
import yaml

from assist.analysis.base import CallContext
from assist.analysis.compliance import ComplianceAnalyser
from assist.analysis.prompts import PromptAnalyser
from assist.events import ComplianceWarning, PromptCard
from assist.qa.calldata import CallData
from streaming.types import Speaker, Utterance, Word
from tests.service import RunningService
from tests.tenancy import ACME_KEY, GLOBEX_KEY, bearer, tenant_settings
from tests.test_conversations_replay import voice_only

DEMO = Path(__file__).parent.parent / "assist" / "demo_calls" / "collections_en.yaml"
ACME = {"X-API-KEY": ACME_KEY}
WORDS_PER_S = 2.5


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with RunningService(tenant_settings(tmp_path_factory.mktemp("conversations"))) as svc:
        yield svc


def post(service, path: str, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{service.http}{path}", json=body, headers=ACME if headers is None else headers, timeout=30)


def open_conversation(service, cid: str, **fields) -> dict:
    body = {"id": cid, "channel": "chat", "language": "en", "jurisdiction": "us", "agent": "Mike", **fields}
    r = post(service, "/conversations", body)
    assert r.status_code == 201, r.text
    return r.json()


def spoken_transcript(turns: list[list[str]], ctx: CallContext) -> tuple[set[str], set[str]]:
    """(standing compliance rule ids, prompt card ids) of the lines spoken at 2.5 words a second, ticked on."""
    compliance, prompts = ComplianceAnalyser(ctx), PromptAnalyser(ctx)
    events, t, seqs = [], 0.0, dict.fromkeys(Speaker, 0)
    for speaker, text in turns:
        spk = Speaker(speaker)
        seqs[spk] += 1
        words = tuple(Word(w, t + i / WORDS_PER_S, t + (i + 1) / WORDS_PER_S) for i, w in enumerate(text.split()))
        utt = Utterance(spk, seqs[spk], t, words[-1].end, text, words, ctx.language)
        for k in range(int(t), int(utt.end) + 1):
            events += compliance.on_tick(float(k))
        events += compliance.on_utterance(utt) + prompts.on_utterance(utt)
        t = utt.end + 1.0
    events += compliance.on_tick(t + 600.0)
    warnings = [e.model_dump(mode="json") for e in events if isinstance(e, ComplianceWarning)]
    rules = {w["rule_id"] for w in CallData("c", (), tuple(warnings)).standing_warnings()}
    return rules, {e.card_id for e in events if isinstance(e, PromptCard)}


def test_scripted_call_as_a_chat_gives_the_transcripts_rules_and_cards(service):
    script = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    meta = {k: v for k, v in script["metadata"].items() if k not in ("agent", "agent_id", "jurisdiction")}
    opened = open_conversation(service, "chat-demo-en", metadata=meta, debtor_timezone="America/Los_Angeles")
    assert opened["events"][0]["type"] == "call.started" and opened["events"][0]["channel"] == "chat"
    for i, (speaker, text) in enumerate(script["turns"]):
        r = post(service, "/conversations/chat-demo-en/messages",
                 {"sender": speaker, "text": text, "sent_at": "2026-12-01T18:00:00Z", "message_id": f"m{i}"})
        assert r.status_code == 200, r.text
        assert r.json()["events"][0]["type"] == "transcript.final"
    closed = post(service, "/conversations/chat-demo-en/close", {})
    assert closed.status_code == 200 and closed.json()["qa"]["scorecard"]["items"]
    raised = httpx.get(f"{service.http}/calls/chat-demo-en/log", headers=bearer("acme", "qa")).json()
    ctx = CallContext("spoken", "en", "us", metadata={**meta, "debtor_timezone": "America/Los_Angeles",
                                                      "started_at": "2026-12-01T18:00:00+00:00"})
    rules, cards = spoken_transcript(script["turns"], ctx)
    chat_rules = {w["rule_id"] for w in CallData("c", (), tuple(e for e in raised if e["type"] == "compliance.warning"))
                  .standing_warnings()}
    assert rules and cards
    assert chat_rules == rules - voice_only("us")
    assert {e["card_id"] for e in raised if e["type"] == "prompt"} == cards
    assert "US-REC-01" in rules and "US-REC-01" not in chat_rules  # a recording notice is a voice rule


def test_spanish_whatsapp_is_stored_scored_and_categorised(service):
    open_conversation(service, "wa-es-1", channel="whatsapp", language="es", jurisdiction="es", agent_id="ana-3",
                      metadata={"identity_verified": True}, debtor_timezone="Europe/Madrid",
                      account_facts={"currency": "EUR", "balance": 300.0})
    lines = [("agent", "Buenos días, le escribe Ana de Recobros Centro, en representación de Banco Sol."),
             ("debtor", "He perdido mi trabajo y ahora mismo no puedo pagar nada."),
             ("agent", "Si no paga, mañana le embargamos la nómina."),
             ("debtor", "Vale, puedo pagar cien euros el viernes con tarjeta.")]
    for speaker, text in lines:
        r = post(service, "/conversations/wa-es-1/messages", {"sender": speaker, "text": text,
                                                             "sent_at": "2026-12-01T11:00:00+01:00"})
        assert r.status_code == 200, r.text
    closed = post(service, "/conversations/wa-es-1/close", {}).json()
    items = {i["id"]: i for i in closed["qa"]["scorecard"]["items"]}
    assert {items[k]["result"] for k in ("D2", "D3", "D4")} == {"na"}
    assert "conversación escrita" in items["D3"]["why"]
    detail = httpx.get(f"{service.http}/api/calls/wa-es-1", headers=bearer("acme", "qa")).json()
    assert detail["call"]["channel"] == "whatsapp" and detail["category"]
    assert "ES-CRIM-02" in {w["payload"]["rule_id"] for w in detail["warnings"]}
    assert [u["speaker"] for u in detail["utterances"]] == ["agent", "debtor", "agent", "debtor"]
    listed = httpx.get(f"{service.http}/api/calls", headers=bearer("acme", "qa")).json()
    assert {c["id"]: c["channel"] for c in listed}["wa-es-1"] == "whatsapp"


def test_draft_warns_before_sending_and_stores_nothing(service):
    open_conversation(service, "draft-1", channel="sms", debtor_timezone="America/Chicago",
                      metadata={"identity_verified": True})
    agent = bearer("acme", "agent", "draft-1")
    r = post(service, "/conversations/draft-1/draft",
             {"text": "Pay today or we will take you to court and garnish your wages."}, agent)
    assert r.status_code == 200, r.text
    rules = {w["rule_id"] for w in r.json()["warnings"]}
    assert {"US-THR-02", "US-MM-01"} <= rules  # a threat, and a first message without the disclosure
    log = httpx.get(f"{service.http}/calls/draft-1/log", headers=agent).json()
    assert [e["type"] for e in log] == ["call.started"]
    ok = post(service, "/conversations/draft-1/draft", {"text": "Could you confirm your date of birth?"}, agent)
    assert "US-THR-02" not in {w["rule_id"] for w in ok.json()["warnings"]}
    assert post(service, "/conversations", {"id": "x-2", "channel": "chat", "language": "en"}, agent).status_code == 403


def test_bad_input_gets_a_clear_4xx_and_nothing_is_stored_twice(service):
    open_conversation(service, "bad-1")
    path = "/conversations/bad-1/messages"
    assert post(service, path, {"sender": "agent", "text": "   "}).status_code == 422
    assert post(service, path, {"sender": "agent", "text": "a" * 100_000}).status_code == 413
    assert post(service, path, {"sender": "robot", "text": "hello"}).status_code == 422
    assert post(service, path, {"sender": "agent", "text": "hi", "sent_at": "2026-12-01T10:00:00"}).status_code == 422
    first = post(service, path, {"sender": "debtor", "text": "Who is this?", "message_id": "d-1"})
    again = post(service, path, {"sender": "debtor", "text": "Who is this?", "message_id": "d-1"})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert post(service, path, {"sender": "debtor", "text": "Other text", "message_id": "d-1"}).status_code == 409
    assert post(service, "/conversations/nope/messages", {"sender": "agent", "text": "hi"}).status_code == 404
    assert post(service, "/conversations", {"id": "bad-1", "channel": "sms", "language": "en"}).status_code == 409
    assert post(service, "/conversations", {"id": "bad-2", "channel": "fax", "language": "en"}).status_code == 422
    assert post(service, "/conversations", {"id": "bad-3", "channel": "sms", "language": "fr"}).status_code == 422
    assert post(service, "/conversations", {"id": "bad-4", "channel": "sms", "language": "en",
                                            "jurisdiction": "zz"}).status_code == 422
    globex = {"X-API-KEY": GLOBEX_KEY}
    assert post(service, path, {"sender": "agent", "text": "hi"}, globex).status_code == 404
    assert post(service, "/conversations/bad-1/close", {}, globex).status_code == 404
    assert post(service, "/conversations/bad-1/close", {}).status_code == 200
    assert post(service, path, {"sender": "agent", "text": "hello?"}).status_code == 409
    assert post(service, path, {"sender": "debtor", "text": "Who is this?", "message_id": "d-1"}).json() == first.json()
    finals = [e for e in httpx.get(f"{service.http}/calls/bad-1/log", headers=bearer("acme", "supervisor")).json()
              if e["type"] == "transcript.final"]
    assert len(finals) == 1
    detail = httpx.get(f"{service.http}/api/calls/bad-1", headers=bearer("acme", "qa")).json()
    assert len(detail["utterances"]) == 1


def test_events_socket_and_live_list_serve_a_conversation(service):
    open_conversation(service, "sock-1", channel="email")
    post(service, "/conversations/sock-1/messages", {"sender": "debtor", "text": "I lost my job and cannot pay."})
    live = httpx.get(f"{service.http}/calls/live", headers=bearer("acme", "supervisor")).json()
    assert "sock-1" in json.dumps(live)

    async def read() -> list[dict]:
        token = bearer('acme', 'agent', 'sock-1')['Authorization'][7:]
        url = f"{service.url}/calls/sock-1/events?since=1&token={token}"
        async with websockets.connect(url) as ws:
            post(service, "/conversations/sock-1/close", {})
            return [json.loads(m) async for m in ws]

    events = asyncio.run(read())
    assert events[0]["seq"] == 2 and events[0]["type"] == "transcript.final"
    assert events[-1]["type"] == "qa.score"


def test_overlay_reply_box_warns_as_the_agent_types(service, browser):
    """Last in this module: Playwright's sync API keeps an event loop running while the browser is open."""
    open_conversation(service, "ui-es-1", channel="whatsapp", language="es", jurisdiction="es",
                      metadata={"identity_verified": True})
    post(service, "/conversations/ui-es-1/messages", {"sender": "debtor", "text": "No puedo pagar nada ahora."})
    token = bearer("acme", "agent", "ui-es-1")["Authorization"][7:]
    page = browser.new_page(locale="es-ES")
    page.goto(f"{service.http}/ui/overlay.html?call=ui-es-1&token={token}")
    page.locator("#draft-panel").wait_for()
    assert page.locator("#draft-channel").text_content() == "WhatsApp"
    assert page.locator("#stress-signal").is_hidden()
    page.locator("#draft").fill("Si no paga, mañana le embargamos la nómina.")
    page.locator("#draft-warnings li").filter(has_text="ES-CRIM-02").wait_for()
    assert "si se envía así" in page.locator("#draft-state").inner_text()
    assert post(service, "/conversations/ui-es-1/close", {}).status_code == 200
    page.locator("#qa-line a").wait_for()  # the overlay saw the end and the score
    page.close()
    log = httpx.get(f"{service.http}/calls/ui-es-1/log", headers=bearer("acme", "supervisor")).json()
    assert [e["type"] for e in log if e["type"] == "transcript.final"] == ["transcript.final"]
