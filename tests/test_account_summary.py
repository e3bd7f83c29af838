"""The after-call summary: structured lines in the call's language, each traceable to an utterance or an
event (a compliance warning, the account facts); nothing the analysers did not find."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from assist.events import AccountUpdated, ComplianceWarning, Evidence, QaScore
from assist.qa.script import Script
from assist.settings import Settings
from assist.storage.recorder import Recorder
from assist.summary import after_call_summary
from streaming.types import Speaker
from tests.service import RunningService

CALLS = Path(__file__).parent / "data" / "qa_calls"

CUE = {"speaker": "debtor", "quote": "le pago cincuenta euros el viernes con tarjeta", "start": 12.0, "end": 14.5,
       "phrase": "le pago"}
CATEGORY = {
    "contact": "right_party", "primary": "promise_to_pay", "language": "es",
    "outcomes": [{"code": "promise_to_pay", "cue": CUE,
                  "details": {"amount": 50.0, "currency": "EUR", "date": "2026-12-04", "date_text": "el viernes",
                              "method": "card"}},
                 {"code": "hardship_income", "cue": {**CUE, "quote": "este mes cobro menos", "start": 8.0, "end": 9.0},
                  "details": {}}],
    "titles": {"promise_to_pay": {"en": "Promise to pay", "es": "Promesa de pago"},
               "card": {"en": "Card", "es": "Tarjeta"},
               "hardship_income": {"en": "Hardship: income", "es": "Dificultad: ingresos"}},
}


def events() -> list:
    facts = {"currency": "EUR", "balance": 250.0, "payments_since_extract": [{"amount": 150.0, "date": "2026-12-01"}]}
    evidence = Evidence(speaker=Speaker.AGENT, quote="usted debe cuatrocientos euros", start=5.0, end=6.0)
    return [
        AccountUpdated(call_id="c", seq=2, facts=facts, changed=["balance"]),
        ComplianceWarning(call_id="c", seq=7, rule_id="ACC-AMT-01", severity="critical", jurisdiction="es",
                          title="Importe adeudado indicado (400.00 EUR) distinto del de la cuenta (250.00 EUR)",
                          citation="Ley 3/1991", evidence=evidence),
        ComplianceWarning(call_id="c", seq=8, rule_id="ES-X-01", severity="warning", jurisdiction="es", title="x",
                          citation="y", evidence=evidence, status="retracted"),
        QaScore(call_id="c", seq=20, scorecard={"score": 80}, category=CATEGORY),
    ]


def test_summary_lines_are_in_the_calls_language_and_traceable():
    summary = after_call_summary(events())
    assert summary["language"] == "es"
    lines = [(line["section"], line["text"]) for line in summary["lines"]]
    assert lines == [
        ("outcome", "Resultado: Promesa de pago"),
        ("agreed", "Promesa de pago de 50.00 EUR el 2026-12-04, Tarjeta"),
        ("hardship", "Dificultad: ingresos"),
        ("compliance", "ACC-AMT-01: Importe adeudado indicado (400.00 EUR) distinto del de la cuenta (250.00 EUR)"),
        ("facts", "Pago de 150.00 EUR recibido el 2026-12-01 (datos de la cuenta)"),
        ("next_steps", "Comprobar el pago de 50.00 EUR previsto el 2026-12-04"),
    ]
    sources = [line["source"] for line in summary["lines"]]
    assert sources[1] == {"kind": "utterance", "speaker": "debtor", "quote": CUE["quote"], "start": 12.0, "end": 14.5}
    assert sources[3] == {"kind": "event", "seq": 7}  # the retracted warning (seq 8) is not in the note
    assert sources[4] == {"kind": "fact", "seq": 2, "field": "payments_since_extract.0"}


def test_a_call_with_nothing_found_has_an_empty_note():
    assert after_call_summary([]) == {"language": "en", "lines": []}


# ---- on the QA page, in headless Chromium ------------------------------------------------------------

@pytest.fixture(scope="module")
def qa_service(tmp_path_factory):
    """Scripted calls stored and scored as a live session stores them (qa.score last); one summary rewritten."""
    tmp = tmp_path_factory.mktemp("qa-summary")
    url = f"sqlite:///{tmp / 'recobra.db'}"

    async def load() -> None:
        recorder = Recorder(url)
        await recorder.start()
        for name in ("en_promise_to_pay", "es_plan_hardship"):
            script = Script.load(CALLS / f"{name}.yaml")
            qa = await script.store(recorder, name)
            await recorder.record(QaScore(call_id=name, seq=len(script.live_events(name)) + 1, **qa))
        await recorder.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's event loop
        pool.submit(asyncio.run, load()).result()
    settings = Settings(asr_model="tiny.en", language="en", cache_dir=tmp / "cache", database_url=url)
    with RunningService(settings) as service:
        rewrite = [{"section": "next_steps", "text": "Send the plan by post."}]
        assert httpx.put(f"{service.http}/calls/en_promise_to_pay/summary", json={"lines": rewrite}).status_code == 200
        yield service


def test_the_qa_page_shows_the_summary_its_sources_and_its_rewrite_in_both_languages(qa_service, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900}, timezone_id="UTC", locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{qa_service.http}/ui/qa.html#call=en_promise_to_pay")
    box = page.locator("#acsummary")
    expect(box.locator(".acs-edited")).to_contain_text("Rewritten by dev on")
    lines = box.locator("ul.acs-lines")
    expect(lines).to_have_count(2)  # the rewrite in force, then the lines as generated
    expect(lines.nth(0).locator("li")).to_have_text(["Next step Send the plan by post."])
    generated = lines.nth(1).locator("li")
    expect(generated.first).to_contain_text("Outcome")
    agreed = generated.filter(has=page.locator(".acs-text", has_text="Promise to pay 150.00 USD on 2025-03-14"))
    expect(agreed).to_have_count(1)
    agreed.locator("button.quote").click()  # where the debtor said it
    expect(page.locator("#transcript .utt.hit")).to_contain_text("I can pay $150 on Friday")

    page.select_option("#language", "es")
    expect(page.locator("#acsummary-title")).to_have_text("Resumen tras la llamada")
    expect(box.locator(".acs-edited")).to_contain_text("Reescrito por dev el")
    expect(lines.nth(0).locator(".badge")).to_have_text(["Siguiente paso"])
    expect(box.locator("h4")).to_have_text("Tal como se generó")
    expect(agreed.locator(".acs-text")).to_have_attribute("lang", "en")  # the call's language, not the page's

    page.goto(f"{qa_service.http}/ui/qa.html#call=es_plan_hardship")
    page.reload()
    spanish = page.locator("#acsummary ul.acs-lines li")
    expect(spanish.first.locator(".badge")).to_have_text("Resultado")
    expect(spanish.first.locator(".acs-text")).to_have_attribute("lang", "es")
    expect(spanish.first.locator(".acs-text")).to_contain_text("Resultado:")
    expect(page.locator("#acsummary .acs-edited")).to_have_count(0)
    assert errors == []
