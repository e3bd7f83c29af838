"""The pages in the reader's language, in headless Chromium: a Spanish call (real FLEURS / Picovoice
Spanish speech, metadata language es) opens the overlay in Spanish, labels and reasons alike; the switch
to English redraws it and is remembered; the dashboard and QA page follow the browser's language."""

from __future__ import annotations

import numpy as np
import pytest

from assist.settings import Settings
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.test_end_to_end import stream_call
from tests.test_languages import spanish_call

CALL = "es-overlay"
SILENCE_S = 25.0  # a quiet end: the hang-up risk moves, with reasons


@pytest.fixture(scope="module")
def spanish(tmp_path_factory):
    """A service on its defaults (es routed to the multilingual model) after one whole Spanish call."""
    tmp = tmp_path_factory.mktemp("browser-languages")
    with RunningService(Settings(cache_dir=tmp / "cache", database_url=f"sqlite:///{tmp / 'r.db'}")) as service:
        agent, debtor, _ = spanish_call()
        pad = np.zeros(int(SILENCE_S * SAMPLE_RATE), dtype=agent.dtype)
        events = stream_call(service, "twilio", np.concatenate([agent, pad]), np.concatenate([debtor, pad]), CALL,
                             metadata={"language": "es"})
        yield service, events


def last(events: list[dict], kind: str) -> dict:
    return [e for e in events if e["type"] == kind][-1]


def in_english(event: dict) -> list[str]:
    return [r["text"]["en"] for r in event["reason_details"]]


def open_overlay(page, service) -> None:
    page.goto(f"{service.http}/ui/overlay.html?call={CALL}")
    page.wait_for_function("window.recobraOverlay && window.recobraOverlay.ended")


def test_overlay_speaks_the_calls_language_and_remembers_the_readers_choice(spanish, browser):
    service, events = spanish
    risk, style = last(events, "abandon_risk"), last(events, "style")  # what the overlay shows at the end
    for event in (risk, style):
        assert event["reasons"] == [r["text"]["es"] for r in event["reason_details"]]
    assert risk["reasons"] + style["reasons"] != in_english(risk) + in_english(style), "no reason to show in Spanish"
    page = browser.new_page(locale="en-US")  # an English browser: the call's language decides
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_overlay(page, service)

    assert page.locator("html").get_attribute("lang") == "es" and page.locator("#language").input_value() == "es"
    assert page.locator("#transcript-h").text_content() == "Transcripción en directo"
    assert page.locator("#stress-h [data-i18n]").text_content() == "Estrés del deudor"
    assert page.locator("#abandon-h [data-i18n]").text_content() == "Riesgo de que cuelgue"
    assert set(page.locator("#transcript li.final .who").all_inner_texts()) == {"Agente", "Deudor"}
    assert page.locator("#conn").inner_text().startswith("Llamada finalizada")
    assert page.locator("#abandon-reasons li").all_inner_texts() == risk["reasons"]
    assert page.locator("#style-reasons li").all_inner_texts() == style["reasons"]
    assert page.locator("#style-band").inner_text() in {"Demasiado pasivo", "Equilibrado", "Demasiado agresivo"}

    page.select_option("#language", "en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#transcript-h").text_content() == "Live transcript"
    assert page.locator("#stress-h [data-i18n]").text_content() == "Debtor stress"
    assert set(page.locator("#transcript li.final .who").all_inner_texts()) == {"Agent", "Debtor"}
    assert page.locator("#abandon-reasons li").all_inner_texts() == in_english(risk)
    assert page.locator("#style-reasons li").all_inner_texts() == in_english(style)
    assert page.locator("#conn").inner_text().startswith("Call ended")

    open_overlay(page, service)  # reloaded: the reader's choice stands over the call's language
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#transcript-h").text_content() == "Live transcript"
    assert page.locator("#abandon-reasons li").all_inner_texts() == in_english(risk)
    assert page.evaluate("localStorage.getItem('recobra.language')") == "en"
    assert not errors, errors
    page.close()


@pytest.mark.parametrize("locale, heading", [("es-MX", "Llamadas en curso"), ("en-GB", "Live calls")])
def test_dashboard_follows_the_browsers_language(spanish, browser, locale, heading):
    service, _ = spanish
    page = browser.new_page(locale=locale)
    page.goto(f"{service.http}/ui/dashboard.html")
    page.wait_for_selector('#conn[data-state="live"]')
    assert page.locator("#calls-h [data-i18n]").text_content() == heading
    page.close()


def test_qa_page_follows_the_browser_then_the_switch(spanish, browser):
    service, _ = spanish
    page = browser.new_page(locale="es-ES")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{service.http}/ui/qa.html#call={CALL}")
    page.wait_for_selector("#scorecard .card-section")
    assert page.locator("#list-title").text_content() == "Llamadas evaluadas"
    assert page.locator("#scorecard-title").text_content() == "Evaluación"
    assert page.locator("#item-C1 .item-title").text_content() == "C1 Petición de pago clara y respetuosa"
    assert page.locator("#section-negotiation").text_content().startswith("Negociación y resolución")
    card = page.evaluate(f"fetch('/api/calls/' + encodeURIComponent('{CALL}')).then(r => r.json())")["scorecard"]
    whys = {i["id"]: i["whys"] for i in card["items"]}
    assert page.locator("#item-C1 .why").text_content() == whys["C1"]["es"]
    page.select_option("#language", "en")
    assert page.locator("#scorecard-title").text_content() == "Scorecard"
    assert page.locator("#item-C1 .item-title").text_content() == "C1 Clear, respectful request for payment"
    assert page.locator("#section-negotiation").text_content().startswith("Negotiation & resolution")
    assert page.locator("#item-C1 .why").text_content() == whys["C1"]["en"] != whys["C1"]["es"]
    assert not errors, errors
    page.close()
