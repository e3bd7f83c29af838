"""Prompt cards from the account facts (assist/analysis/fact_prompts.py): a recent payment to acknowledge, the
plan options within the creditor's mandate, a dispute that pauses collection; written as the call's language
writes numbers, pushed when the call starts and again only when account.updated changes them. English and
Spanish, on the functions and over a real call's websocket."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import numpy as np
import pytest

from assist.account import AccountFacts, apply_to_context, dump
from assist.analysis.account_facts import AccountFactsAnalyser
from assist.analysis.base import CallContext
from assist.analysis.fact_prompts import changed_cards, fact_cards
from assist.democall import fleurs_call
from assist.events import PromptCard
from assist.replay import replay
from assist.settings import Settings
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.tenancy import ACME_KEY, TENANTS, TOKEN_SECRET
from tests.test_account import log_of, stream

TODAY = dt.date(2026, 12, 2)
FACTS = {"currency": "USD", "balance": 250.0,
         "payments_since_extract": [{"amount": 150.0, "date": "2026-12-02", "channel": "card"},
                                    {"amount": 1200.5, "date": "2026-11-28"},
                                    {"amount": 99.0, "date": "2026-10-01"}],
         "allowed_offers": {"min_instalment": 25.0, "max_term_months": 12, "max_discount_pct": 20}}


def cards(facts: dict, language: str, jurisdiction: str = "us") -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {c.card_id: (c.say, c.avoid) for c in fact_cards(facts, language, jurisdiction, TODAY)}


@pytest.mark.parametrize(("language", "jurisdiction", "payment", "earlier", "plan", "settle", "avoid"), [
    ("en", "us", "Acknowledge the 150.00 USD payment received today",
     "Acknowledge the 1,200.50 USD payment received on 11/28/2026",
     "Offer up to 12 monthly payments of at least 25.00 USD",
     "A settlement of up to 20% off is allowed: 200.00 USD instead of 250.00 USD",
     ("Terms longer than 12 months", "Instalments under 25.00 USD", "Discounts above 20%")),
    ("es", "es", "Reconozca el pago de 150,00 USD recibido hoy",
     "Reconozca el pago de 1.200,50 USD recibido el 28/11/2026",
     "Ofrezca hasta 12 pagos mensuales de al menos 25,00 USD",
     "Se permite liquidar con hasta un 20 % de descuento: 200,00 USD en lugar de 250,00 USD",
     ("Plazos de más de 12 meses", "Cuotas de menos de 25,00 USD", "Descuentos de más del 20 %")),
    ("es", "mx", "Reconozca el pago de 150.00 USD recibido hoy",
     "Reconozca el pago de 1,200.50 USD recibido el 28/11/2026",
     "Ofrezca hasta 12 pagos mensuales de al menos 25.00 USD",
     "Se permite liquidar con hasta un 20 % de descuento: 200.00 USD en lugar de 250.00 USD",
     ("Plazos de más de 12 meses", "Cuotas de menos de 25.00 USD", "Descuentos de más del 20 %")),
])
def test_cards_say_the_facts_as_the_language_writes_them(language, jurisdiction, payment, earlier, plan, settle,
                                                         avoid):
    found = cards(FACTS, language, jurisdiction)
    say, never = found["account_payment_received"]
    assert say[:2] == (payment, earlier) and len(say) == 3  # the October payment is not recent
    assert ("1.200,50" if jurisdiction == "es" else "1,200.50") in never[0]
    assert found["account_plan_options"] == ((plan, settle), avoid)
    assert "account_dispute" not in found


def test_the_least_instalment_clears_the_balance_within_the_longest_term():
    say, avoid = cards({**FACTS, "balance": 600.0}, "en")["account_plan_options"]
    assert say[0] == "Offer up to 12 monthly payments of at least 50.00 USD"  # 600 / 12, above the 25 floor
    assert "Instalments under 50.00 USD" in avoid
    only_term = {"currency": "EUR", "allowed_offers": {"max_term_months": 6}}
    assert cards(only_term, "es")["account_plan_options"] == (("Ofrezca hasta 6 pagos mensuales",),
                                                              ("Plazos de más de 6 meses",))


@pytest.mark.parametrize(("language", "title", "pause"), [
    ("en", "Debt in dispute", "Pause collection: do not ask for payment while the dispute is open"),
    ("es", "Deuda en reclamación", "Pause el cobro: no pida el pago mientras la reclamación esté abierta"),
])
def test_a_dispute_pauses_collection_and_withdraws_the_offers(language, title, pause):
    found = fact_cards({**FACTS, "dispute_open": True}, language, "us", TODAY)
    assert [c.card_id for c in found] == ["account_dispute", "account_payment_received"]
    assert found[0].title == title and found[0].say[0] == pause and len(found[0].say) == 2
    assert "account_plan_options" not in cards({**FACTS, "attorney_on_file": True}, language)


def test_only_cards_a_change_makes_new_or_different_go_out_again():
    assert changed_cards(FACTS, {**FACTS, "creditor": "Acme"}, "en", "us", TODAY) == []
    changed = changed_cards(FACTS, {**FACTS, "balance": 600.0}, "en", "us", TODAY)
    assert [c.card_id for c in changed] == ["account_plan_options"]
    assert [c.card_id for c in changed_cards({}, FACTS, "es", "es", TODAY)] == ["account_payment_received",
                                                                             "account_plan_options"]
    assert changed_cards(FACTS, FACTS, "es", "es", TODAY) == []


def test_cards_shown_before_the_language_was_detected_come_again_in_it():
    """A call on `auto` starts in the first language; when Spanish is detected, the cards follow."""
    now = dt.datetime.now(dt.UTC).date().isoformat()
    ctx = CallContext("c", "en", "es", False, {})
    apply_to_context(ctx, dump(AccountFacts.model_validate(
        {**FACTS, "payments_since_extract": [{"amount": 150.0, "date": now}]})))
    analyser = AccountFactsAnalyser(ctx)
    assert analyser.on_tick(1.0) == []  # shown in English when the facts arrived
    ctx.language = "es"
    cards = [e for e in analyser.on_tick(2.0) if isinstance(e, PromptCard)]
    assert [(c.card_id, c.language) for c in cards] == [("account_payment_received", "es"),
                                                       ("account_plan_options", "es")]
    assert cards[0].say[0] == "Reconozca el pago de 150,00 USD recibido hoy" and cards[0].t == 2.0
    assert analyser.on_tick(3.0) == [] and analyser.on_tick(4.0) == []


# ---- over a real call: pushed at the start and when account.updated changes them ----------------------

@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A multilingual model (base) so a call may be English or Spanish; the test tenants."""
    tmp = tmp_path_factory.mktemp("account-prompts")
    with RunningService(Settings(asr_model="base", cache_dir=tmp / "cache", database_url=f"sqlite:///{tmp / 'r.db'}",
                                 tenants=TENANTS, token_secret=TOKEN_SECRET)) as svc:
        yield svc


@pytest.mark.parametrize(("language", "payment", "plan", "dispute"), [
    ("en", "Acknowledge the 150.00 USD payment received today",
     "Offer up to 12 monthly payments of at least 25.00 USD", "Debt in dispute"),
    ("es", "Reconozca el pago de 150,00 USD recibido hoy",
     "Ofrezca hasta 12 pagos mensuales de al menos 25,00 USD", "Deuda en reclamación"),
])
def test_cards_at_the_start_and_when_facts_change_on_a_live_call(service, language, payment, plan, dispute):
    call_id = f"prompts-{language}"
    today = dt.datetime.now(dt.UTC).date().isoformat()
    facts = {**FACTS, "payments_since_extract": [{"amount": 150.0, "date": today}]}
    key = {"X-API-KEY": ACME_KEY}
    assert httpx.put(f"{service.http}/calls/{call_id}/account", json=facts, headers=key).json()["status"] == "waiting"

    def patch(body: dict):
        async def send() -> None:
            async with httpx.AsyncClient(base_url=service.http, headers=key) as client:
                assert (await client.patch(f"/calls/{call_id}/account", json=body)).json()["status"] == "applied"
        return send

    silence = np.zeros(4 * SAMPLE_RATE, dtype=np.float32)
    asyncio.run(stream(service, call_id, silence, silence, {"language": language},
                       {1.0: patch({"creditor": "Acme"}), 2.0: patch({"dispute_open": True}),
                        3.0: patch({"dispute_open": False, "balance": 600.0})}))
    events = [e for e in log_of(service, call_id) if e["type"] in ("account.updated", "prompt")]
    kinds = [e["type"] if e["type"] == "account.updated" else e["card_id"] for e in events]
    assert kinds == ["account.updated", "account_payment_received", "account_plan_options",
                     "account.updated",  # the creditor's name changes no card
                     "account.updated", "account_dispute",  # offers withdrawn: no plan card while disputed
                     "account.updated", "account_plan_options"]  # back, for the larger balance
    prompts = [e for e in events if e["type"] == "prompt"]
    assert all(p["language"] == language and p["evidence"] is None for p in prompts)
    assert prompts[0]["say"][0] == payment and prompts[1]["say"][0] == plan
    assert prompts[2]["title"] == dispute
    assert prompts[3]["say"][0] == plan.replace("25.00", "50.00").replace("25,00", "50,00")


def test_a_spanish_call_on_auto_gets_the_cards_again_in_spanish_once_detected(service):
    """Facts wait for a call whose language is detected from its speech (real FLEURS Spanish): the cards come
    at its start in the first language, then in Spanish as soon as Spanish is detected."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    facts = {**FACTS, "payments_since_extract": [{"amount": 150.0, "date": today}]}
    assert httpx.put(f"{service.http}/calls/prompts-auto/account", json=facts,
                     headers={"X-API-KEY": ACME_KEY}).json()["status"] == "waiting"
    agent, debtor, _ = fleurs_call("es", turns=2)
    asyncio.run(replay(service.url, "plain", agent, debtor, SAMPLE_RATE, call_id="prompts-auto", speed=0,
                       api_key=ACME_KEY))
    events = log_of(service, "prompts-auto")
    detected = next(e for e in events if e["type"] == "call.language")
    assert detected["language"] == "es" and detected["reason"] == "detected"
    prompts = [(e["card_id"], e["language"], e["seq"] > detected["seq"], e["say"][0])
               for e in events if e["type"] == "prompt" and e["card_id"].startswith("account_")]
    assert [p[:3] for p in prompts] == [
        ("account_payment_received", "en", False), ("account_plan_options", "en", False),
        ("account_payment_received", "es", True), ("account_plan_options", "es", True)]
    assert prompts[2][3] == "Reconozca el pago de 150,00 USD recibido hoy"
