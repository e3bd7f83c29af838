"""Account facts in: the typed API (before and during a call, PUT replaces, PATCH merges, 422 naming the
field, tenants apart), the account.updated event, and the account-facts rules in English and Spanish."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable

import httpx
import numpy as np
import pytest
import websockets

from assist.account import AccountFacts, apply_to_context, describe_changes, dump, merge_patch
from assist.analysis.account_facts import AccountFactsAnalyser, account_rules
from assist.analysis.base import CallContext
from models.tts import load_voice
from streaming.protocols.plain import plain_messages
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker, Utterance
from tests.service import RunningService
from tests.tenancy import ACME_KEY, GLOBEX_KEY, bearer, tenant_settings

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
FACTS = {"currency": "USD", "balance": 250.00, "amount_past_due": 250.00,
         "last_payment": {"amount": 150.00, "date": TODAY},
         "payments_since_extract": [{"amount": 150.00, "date": TODAY, "channel": "card"}],
         "plan": {"status": "active", "instalment": 50.00, "next_due": "2027-01-05"},
         "dispute_open": False, "litigation_authorised": False, "time_barred": True,
         "cease_contact_on_file": False, "attorney_on_file": False, "vulnerability": [],
         "allowed_offers": {"min_instalment": 25.00, "max_term_months": 12, "max_discount_pct": 20}}


# ---- the facts and the rules, without a service ------------------------------------------------

def analyser(language: str, jurisdiction: str, facts: dict) -> AccountFactsAnalyser:
    ctx = CallContext("c", language, jurisdiction, False, {"account": {"judgment": True}})
    apply_to_context(ctx, dump(AccountFacts.model_validate(facts)))
    return AccountFactsAnalyser(ctx)


def said(a: AccountFactsAnalyser, text: str, language: str = "en") -> dict[str, str]:
    utt = Utterance(Speaker.AGENT, 1, 2.0, 4.0, text, [], language, final=True)
    return {e.rule_id: e.title for e in a.on_utterance(utt)}


def test_merge_patch_and_changes_in_both_languages():
    merged = merge_patch(FACTS, {"balance": 100, "plan": {"instalment": 25}, "time_barred": None})
    assert merged["plan"] == {"status": "active", "instalment": 25, "next_due": "2027-01-05"}
    assert "time_barred" not in merged and FACTS["time_barred"] is True
    old = dump(AccountFacts.model_validate({"currency": "USD", "balance": 400}))
    new = dump(AccountFacts.model_validate(FACTS))
    changed, changes = describe_changes(old, new)
    assert {"balance", "payments_since_extract", "time_barred"} <= set(changed) and "currency" not in changed
    texts = {c.code: c.text for c in changes}
    assert texts["payment_received_today"] == {"en": "Payment of 150.00 USD received today",
                                               "es": "Pago de 150.00 USD recibido hoy"}
    assert texts["balance"]["es"] == "Saldo ahora 250.00 USD (antes 400.00 USD)"


@pytest.mark.parametrize(("language", "jurisdiction", "currency", "text", "rule", "title", "citation"), [
    ("en", "us", "USD", "Sir, you owe four hundred dollars on this account.", "ACC-AMT-01",
     "Amount owed stated (400.00 USD) differs from the account (250.00 USD)", "1692e(2)(A)"),
    ("es", "es", "EUR", "Usted debe cuatrocientos euros de la tarjeta.", "ACC-AMT-01",
     "Importe adeudado indicado (400.00 EUR) distinto del de la cuenta (250.00 EUR)", "Ley 3/1991"),
    ("en", "us", "USD", "You need to pay the $150 today.", "ACC-PAID-01",
     "Asked for 150.00 USD, already paid (150.00 USD)", "1692f(1)"),
    ("es", "mx", "MXN", "Necesito que pague ciento cincuenta pesos hoy.", "ACC-PAID-01",
     "Pidió 150.00 MXN, ya pagado (150.00 MXN)", "Protección al Consumidor"),
])
def test_agent_contradicting_the_facts_is_warned(language, jurisdiction, currency, text, rule, title, citation):
    a = analyser(language, jurisdiction, {**FACTS, "currency": currency, "time_barred": False})
    found = said(a, text, language)
    assert found.get(rule) == title
    event = next(e for e in a.on_utterance(Utterance(Speaker.AGENT, 2, 5.0, 7.0, text, [], language, final=True))
                 if e.rule_id == rule)
    assert citation in event.citation and event.severity == "critical" and event.evidence.quote == text


@pytest.mark.parametrize(("language", "text"), [
    ("en", "Your balance is two hundred fifty dollars, can you pay fifty dollars today?"),
    ("en", "The amount due is $250.00."),
    ("es", "Su saldo es de doscientos cincuenta euros; ¿puede pagar cincuenta euros hoy?"),
    ("en", "You owe four hundred dollars."),  # said by the debtor: not the agent's statement
])
def test_amounts_matching_the_facts_are_not_warned(language, text):
    a = analyser(language, "us", {**FACTS, "time_barred": False})
    speaker = Speaker.DEBTOR if text.startswith("You owe four") else Speaker.AGENT
    assert a.on_utterance(Utterance(speaker, 1, 2.0, 4.0, text, [], language, final=True)) == []


def test_demands_on_disputed_or_time_barred_debts():
    a = analyser("en", "us", {**FACTS, "dispute_open": True})
    assert {"ACC-DISP-01", "ACC-TB-01"} <= set(said(a, "You have to pay something today."))
    b = analyser("es", "es", {**FACTS, "time_barred": True})
    assert said(b, "Tiene que pagar hoy.", "es")["ACC-TB-01"] == "Pidió el pago de una deuda prescrita sin advertirlo"


@pytest.mark.parametrize(("language", "text", "title"), [
    ("en", "We can set up a payment plan over eighteen months at fifty dollars a month.",
     "Offer outside the creditor's mandate: 18 months (at most 12)"),
    ("en", "I can offer a 40% discount if you settle today.",
     "Offer outside the creditor's mandate: 40% off (at most 20%)"),
    ("es", "Podemos hacer cuotas de veinte euros al mes.",
     "Oferta fuera del mandato del acreedor: cuota de 20.00 EUR (como mínimo 25.00 EUR)"),
    ("es", "Le ofrezco un descuento del treinta por ciento.",
     "Oferta fuera del mandato del acreedor: 30 % de descuento (como máximo 20 %)"),
    ("en", "We can do twelve months at twenty five dollars a month with a twenty percent discount.", None),
    ("es", "Lleva usted dieciocho meses sin pagar.", None),
])
def test_offers_outside_the_creditors_mandate(language, text, title):
    a = analyser(language, "us", {**FACTS, "currency": "EUR" if language == "es" else "USD", "time_barred": False})
    assert said(a, text, language).get("ACC-OFFER-01") == title


def test_cease_or_attorney_on_file_is_critical_at_once_and_once():
    a = analyser("es", "es", {**FACTS, "attorney_on_file": True, "cease_contact_on_file": True})
    frame = AudioFrame(Speaker.AGENT, 0.02, np.zeros(320, dtype=np.float32))
    first = a.on_audio(frame)
    assert {e.rule_id for e in first} == {"ACC-ATTY-01", "ACC-CEASE-01"}
    assert all(e.severity == "critical" and e.t == 0.02 for e in first)
    assert next(e for e in first if e.rule_id == "ACC-CEASE-01").citation.startswith("RGPD art. 21")
    apply_to_context(a.ctx, {**a.ctx.metadata["account_facts"], "balance": 10.0})
    assert a.on_audio(frame) == [] and a.on_tick(1.0) == []


# ---- the API on a running service ----------------------------------------------------------------

@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with RunningService(tenant_settings(tmp_path_factory.mktemp("account"))) as svc:
        yield svc


def log_of(service, call_id: str, until: str = "qa.score", timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        events = httpx.get(f"{service.http}/calls/{call_id}/log", headers=bearer("acme", "supervisor")).json()
        if any(e["type"] == until for e in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


async def stream(service, call_id: str, agent: np.ndarray, debtor: np.ndarray, metadata: dict,
                 actions: dict[float, Callable[[], Awaitable[None]]]) -> None:
    """A plain call in real time, running each action when the audio reaches its second."""
    async with websockets.connect(f"{service.url}/ingest/plain", additional_headers={"X-API-KEY": ACME_KEY}) as ws:
        began = time.monotonic()
        for at, message in plain_messages(agent, debtor, SAMPLE_RATE, call_id=call_id, metadata=metadata):
            for mark in sorted(m for m in actions if m <= at):
                await actions.pop(mark)()
            await asyncio.sleep(max(0.0, at - (time.monotonic() - began)))
            await ws.send(message)
        await ws.wait_closed()


def test_facts_before_and_during_the_call(service):
    api = f"{service.http}/calls/acct-1/account"
    key = {"X-API-KEY": ACME_KEY}
    early = httpx.put(api, json=FACTS, headers=key)
    assert early.status_code == 200 and early.json()["status"] == "waiting"
    assert httpx.get(api, headers=key).json()["facts"]["balance"] == 250.0
    assert httpx.get(api, headers={"X-API-KEY": GLOBEX_KEY}).json()["facts"] == {}  # waiting facts are per tenant
    silence = np.zeros(4 * SAMPLE_RATE, dtype=np.float32)
    results: dict[str, httpx.Response] = {}

    async def during() -> None:
        async with httpx.AsyncClient(base_url=service.http) as client:
            results["patch"] = await client.patch("/calls/acct-1/account", headers=key,
                                                  json={"balance": 100.0, "attorney_on_file": True})
            results["other"] = await client.put("/calls/acct-1/account", headers={"X-API-KEY": GLOBEX_KEY}, json=FACTS)
            results["agent"] = await client.put("/calls/acct-1/account", json=FACTS,
                                                headers=bearer("acme", "agent", "acct-1"))
            results["bad"] = await client.patch("/calls/acct-1/account", headers=key, json={"plan": {"status": "x"}})
            results["supervisor"] = await client.patch("/calls/acct-1/account", headers=bearer("acme", "supervisor"),
                                                       json={"dispute_open": True})

    asyncio.run(stream(service, "acct-1", silence, silence, {"language": "en", "account": {"judgment": True}},
                       {2.0: during}))
    assert results["patch"].json()["status"] == "applied"
    assert results["patch"].json()["changed"] == ["attorney_on_file", "balance"]
    assert results["other"].status_code == 404 and results["agent"].status_code == 403
    assert results["bad"].status_code == 422 and results["bad"].json()["detail"][0]["loc"] == ["body", "plan", "status"]
    assert results["supervisor"].status_code == 200
    events = log_of(service, "acct-1")
    started = next(e for e in events if e["type"] == "call.started")
    assert started["metadata"]["account"] == {"judgment": True, "time_barred": True, "litigation_authorized": False,
                                              "last_payment": {"amount": 150.0, "date": TODAY}}
    updates = [e for e in events if e["type"] == "account.updated"]
    assert updates[0]["seq"] == started["seq"] + 1 and updates[0]["facts"]["balance"] == 250.0
    assert updates[1]["changed"] == ["attorney_on_file", "balance"] and updates[1]["facts"]["plan"]["instalment"] == 50
    assert [c["text"]["es"] for c in updates[1]["changes"]] == ["Abogado registrado",
                                                               "Saldo ahora 100.00 USD (antes 250.00 USD)"]
    assert updates[2]["facts"]["dispute_open"] is True
    atty = [e for e in events if e.get("rule_id") == "ACC-ATTY-01"]
    assert len(atty) == 1 and atty[0]["seq"] > updates[1]["seq"] and atty[0]["t"] < updates[1]["t"] + 0.5
    assert httpx.put(api, json=FACTS, headers=key).status_code == 409  # the call has ended
    summary = httpx.get(f"{service.http}/calls/acct-1/summary", headers=bearer("acme", "agent", "acct-1"))
    assert [line["code"] for line in summary.json()["lines"]] == ["compliance", "payment_on_file"]
    assert httpx.get(f"{service.http}/calls/acct-1/summary", headers=bearer("globex", "supervisor")).status_code == 404


def test_summary_edits_are_kept_with_who_and_when(service):
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    asyncio.run(stream(service, "acct-4", silence, silence, {"language": "en"}, {}))
    log_of(service, "acct-4")
    api = f"{service.http}/calls/acct-4/summary"
    agent = bearer("acme", "agent", "acct-4")
    assert httpx.get(api, headers=agent).json()["edited"] is None
    lines = [{"section": "next_steps", "text": "Send the statement by post."}]
    first = httpx.put(api, json={"lines": lines}, headers=agent).json()["edited"]
    assert first["by"] == "agent@acme" and first["lines"] == lines
    second = httpx.put(api, json={"lines": [*lines, {"section": "agreed", "text": "Call on Monday."}]},
                       headers=bearer("acme", "supervisor")).json()["edited"]
    assert second["by"] == "supervisor@acme" and second["id"] > first["id"] and len(second["lines"]) == 2
    assert httpx.put(api, json={"lines": [{"section": "gossip", "text": "x"}]}, headers=agent).status_code == 422
    assert httpx.put(api, json={"lines": lines}, headers=bearer("globex", "supervisor")).status_code == 404
    assert httpx.put(api, json={"lines": lines}, headers=bearer("acme", "agent", "acct-1")).status_code == 403


def test_invalid_bodies_name_the_field(service):
    api = f"{service.http}/calls/acct-2/account"
    key = {"X-API-KEY": ACME_KEY}
    for body, loc in [({"balance": -5}, ["body", "balance"]), ({"currency": "dollars"}, ["body", "currency"]),
                      ({"payments_since_extract": [{"amount": 5, "date": "yesterday"}]},
                       ["body", "payments_since_extract", 0, "date"]), ({"balans": 5}, ["body", "balans"])]:
        response = httpx.put(api, json=body, headers=key)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == loc, body
    assert httpx.put(api, json=FACTS, headers={"X-API-KEY": "not-a-key-0123456789"}).status_code == 401
    assert httpx.put(api, json=FACTS).status_code == 401


def test_a_spoken_amount_that_differs_from_the_facts_is_warned_live(service):
    voice = load_voice("joe")
    speech = voice("Hello, this is Sam from Acme. You owe four hundred dollars on this account.")
    agent = np.concatenate([np.zeros(SAMPLE_RATE, dtype=np.float32), speech, np.zeros(2 * SAMPLE_RATE, np.float32)])
    debtor = np.zeros_like(agent)
    assert httpx.put(f"{service.http}/calls/acct-3/account", json={**FACTS, "time_barred": False},
                     headers={"X-API-KEY": ACME_KEY}).status_code == 200
    asyncio.run(stream(service, "acct-3", agent, debtor, {"language": "en"}, {}))
    warnings = [e for e in log_of(service, "acct-3") if e.get("rule_id") == "ACC-AMT-01"]
    assert warnings and warnings[0]["title"] == "Amount owed stated (400.00 USD) differs from the account (250.00 USD)"
    assert warnings[0]["citation"].startswith("15 USC 1692e(2)(A)")


def test_non_us_citations_are_marked_unless_the_domain_notes_source_them():
    """Outside the US a citation names its source (collections-domain.md) or says it needs checking."""
    # the last is no law
    sourced = {"FCA CONC 7.14", "FCA CONC 7.15", "RGPD art. 21", "Mandato del acreedor (allowed_offers)"}
    for rule in account_rules().rules.values():
        for jurisdiction, citation in rule.citation.items():
            if jurisdiction in ("us", "*"):
                continue
            unmarked = [p.strip() for p in citation.split(";") if not p.strip().endswith("[verify]")]
            assert set(unmarked) <= sourced, (rule.id, jurisdiction, unmarked)
