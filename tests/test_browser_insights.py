"""The insights page (/ui/insights.html) in headless Chromium against the real running service, with
scripted EN/ES calls stored and scored by the recorder: charts drawn, filters, language switch, coaching
card and note, the QA page's humanisation panel, and axe finds nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from assist.qa.script import Script
from assist.settings import Settings
from assist.storage.recorder import Recorder
from tests.service import RunningService

CALLS = Path(__file__).parent / "data" / "qa_calls"
LOADED = ("en_promise_to_pay", "en_threat_refusal", "es_plan_hardship", "es_dispute_cease")
VIEWS = 10


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    tmp = tmp_path_factory.mktemp("insights")
    url = f"sqlite:///{tmp / 'recobra.db'}"

    async def load() -> None:
        recorder = Recorder(url)
        await recorder.start()
        for name in LOADED:
            await Script.load(CALLS / f"{name}.yaml").store(recorder, name)
        await recorder.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's event loop
        pool.submit(asyncio.run, load()).result()
    settings = Settings(asr_model="tiny.en", language="en", cache_dir=tmp / "cache", database_url=url)
    with RunningService(settings) as running:
        yield running


def open_page(browser: Browser, service: RunningService, path: str = "insights.html", width: int = 1280) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900}, timezone_id="UTC", locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: errors.append(f"external {r.url}") if not r.url.startswith(service.http) else None)
    page.goto(f"{service.http}/ui/{path}")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def calls_in_trend(page: Page) -> int:
    cells = page.locator("#view-score_trend tbody tr td:nth-child(2)").all_text_contents()
    return sum(int(c) for c in cells)


def test_charts_filters_and_language(service: RunningService, browser: Browser) -> None:
    page = open_page(browser, service)
    expect(page.locator("#views svg[role=img]")).to_have_count(VIEWS)
    expect(page.locator("#view-breach_heatmap svg rect.cell").first).to_be_attached()
    assert calls_in_trend(page) == 4
    expect(page.locator("#view-score_trend svg title")).to_have_text("QA score trend")
    page.select_option("#f-language", "es")
    page.select_option("#f-group", "week")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#view-score_trend tbody tr td").first).to_have_text("2025-W19")
    assert calls_in_trend(page) == 2
    page.select_option("#language", "es")
    expect(page.locator("h1 .sub")).to_have_text("Análisis")
    expect(page.locator("#view-score_trend h2")).to_have_text("Tendencia de la nota QA")
    expect(page.locator("#view-score_trend svg title")).to_have_text("Tendencia de la nota QA")
    csv = page.locator("#view-breach_heatmap a.button-link").get_attribute("href")
    assert "format=csv" in csv and "view=breach_heatmap" in csv and "language=es" in csv
    assert page.errors == []  # type: ignore[attr-defined]
    page.close()


def test_coaching_card_and_note(service: RunningService, browser: Browser) -> None:
    page = open_page(browser, service)
    page.fill("#c-agent", "agent-3")
    page.get_by_role("button", name="Show card").click()
    expect(page.locator("#card")).to_contain_text("US-THR-01")
    page.fill("#note-text", "Offer options before any consequence.")
    page.get_by_role("button", name="Save note").click()
    expect(page.locator("#card")).to_contain_text("Offer options before any consequence.")
    expect(page.locator("#card")).to_contain_text("dev")
    assert page.errors == []  # type: ignore[attr-defined]
    page.close()


def test_qa_page_shows_humanisation(service: RunningService, browser: Browser) -> None:
    page = open_page(browser, service, "qa.html#call=en_threat_refusal")
    expect(page.locator("#humanisation")).to_contain_text("/ 100")
    expect(page.locator("#humanisation")).to_contain_text("US-THR-01")
    page.select_option("#language", "es")
    expect(page.locator("#humanisation")).to_contain_text("Sin presión indebida")
    page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_no_accessibility_violations(service: RunningService, browser: Browser, width: int) -> None:
    from axe_playwright_python.sync_playwright import Axe

    page = open_page(browser, service, width=width)
    expect(page.locator("#views svg[role=img]")).to_have_count(VIEWS)
    page.fill("#c-agent", "agent-3")
    page.get_by_role("button", name="Show card").click()
    expect(page.locator("#card")).to_contain_text("US-THR-01")
    page.locator("#view-score_trend details summary").click()
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa"]}})
    assert results.violations_count == 0, results.generate_report()
    page.close()
