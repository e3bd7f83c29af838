"""The QA review page (/ui/qa.html) in headless Chromium against the real running service.

A real call (FLEURS speech over Twilio Media Streams, whisper tiny.en) is streamed in, stored, scored and
categorised by the service; two scripted calls sit beside it. The page lists and filters them, opens the
real call (transcript, scorecard with evidence, category) and a reviewer's override made through the page
is shown at once and persists (page reload and API).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from assist.democall import fleurs_call
from assist.qa.script import Script
from assist.settings import Settings
from assist.storage.recorder import Recorder
from tests.service import RunningService
from tests.test_end_to_end import stream_call
from tests.test_post_call import settled

CALLS = Path(__file__).parent / "data" / "qa_calls"
SCRIPTED = ("en_threat_refusal", "en_promise_to_pay")
REAL = "qa-real-call"
AGENT = "agent-qa-7"
TOKEN = "reviewer-token-123"


@pytest.fixture(scope="module")
def qa_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    tmp = tmp_path_factory.mktemp("qa")
    url = f"sqlite:///{tmp / 'recobra.db'}"

    async def load() -> None:
        recorder = Recorder(url)
        await recorder.start()
        for name in SCRIPTED:
            await Script.load(CALLS / f"{name}.yaml").store(recorder, name)
        await recorder.close()

    # Playwright's sync API owns this thread's event loop: asyncio work runs on another thread
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, load()).result()
        settings = Settings(asr_model="tiny.en", language="en", cache_dir=tmp / "cache", database_url=url)
        with RunningService(settings) as service:
            agent, debtor, _ = fleurs_call("en", turns=4)
            events = pool.submit(stream_call, service, "twilio", agent, debtor, REAL, {"agent_id": AGENT}).result()
            assert events[-1]["type"] == "qa.score"
            settled(service, REAL)  # its post-call transcript has rescored it (assist/post_call.py)
            yield service


def detail(service: RunningService, call_id: str) -> dict[str, Any]:
    resp = httpx.get(f"{service.http}/api/calls/{call_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def pretty(code: str) -> str:
    """How the page writes a code: promise_to_pay -> Promise to pay."""
    return code[:1].upper() + code[1:].replace("_", " ")


def open_page(browser: Browser, service: RunningService, fragment: str = "", width: int = 1280,
              height: int = 900) -> tuple[Page, list[dict[str, str]]]:
    """The QA page with a token; returns it and the headers of every API request it makes."""
    page = browser.new_page(viewport={"width": width, "height": height}, timezone_id="UTC", locale="en-US")
    api_headers: list[dict[str, str]] = []
    page.on("request", lambda r: api_headers.append({**r.headers, "url": r.url}) if "/api/" in r.url else None)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{service.http}/ui/qa.html?token={TOKEN}{fragment}")
    page.errors = errors  # type: ignore[attr-defined]
    return page, api_headers


def listed(page: Page) -> list[str]:
    return page.locator("#calls-body tr").evaluate_all("rows => rows.map(r => r.dataset.call)")


def expect_listed(page: Page, ids: set[str]) -> None:
    """Wait until the list shows exactly these calls."""
    expect(page.locator("#calls-body tr")).to_have_count(len(ids))
    for call_id in ids:
        expect(page.locator(f'#calls-body tr[data-call="{call_id}"]')).to_have_count(1)


def test_real_call_listed_filtered_and_opened(qa_service: RunningService, browser: Browser) -> None:
    real = detail(qa_service, REAL)
    assert real["scorecard"] and real["category"] and real["utterances"]
    page, api_headers = open_page(browser, qa_service)

    row = page.locator(f'#calls-body tr[data-call="{REAL}"]')
    expect(row).to_contain_text(AGENT)
    expect(row).to_contain_text(str(real["call"]["score"]))
    expect_listed(page, {*SCRIPTED, REAL})

    # filters: agent, band, category (each a real query to the API)
    page.fill("#f-agent", AGENT)
    page.click("button:has-text('Apply filters')")
    expect_listed(page, {REAL})
    csv_href = page.get_attribute("#csv-link", "href")
    assert csv_href and f"token={TOKEN}" in csv_href and f"agent={AGENT}" in csv_href
    assert REAL in httpx.get(csv_href).text
    page.click("button:has-text('Clear')")
    expect_listed(page, {*SCRIPTED, REAL})
    page.select_option("#f-band", "compliance_fail")
    page.click("button:has-text('Apply filters')")
    expect_listed(page, {"en_threat_refusal"})
    page.select_option("#f-band", "")
    page.fill("#f-category", "promise_to_pay")
    page.press("#f-category", "Enter")
    expect_listed(page, {"en_promise_to_pay"})
    assert "category=promise_to_pay" in page.url and f"token={TOKEN}" in page.url
    page.fill("#f-category", "")
    page.fill("#f-from", "2025-03-12")
    page.fill("#f-to", "2025-03-12")
    page.click("button:has-text('Apply filters')")
    expect_listed(page, set(SCRIPTED))
    page.click("button:has-text('Clear')")
    expect_listed(page, {*SCRIPTED, REAL})

    # sorting by score, both ways
    scores = {c["id"]: c["score"] for c in httpx.get(f"{qa_service.http}/api/calls").json()}
    page.click("#calls-head button[data-key=score]")
    expect(page.locator("#calls-head th[aria-sort=ascending]")).to_contain_text("Score")
    assert listed(page) == sorted(scores, key=scores.__getitem__)
    page.click("#calls-head button[data-key=score]")
    assert listed(page) == sorted(scores, key=scores.__getitem__, reverse=True)

    # open the real call from its link with the keyboard
    page.focus(f'#calls-body tr[data-call="{REAL}"] a')
    page.keyboard.press("Enter")
    expect(page.locator("#call-title")).to_have_text(f"Call {REAL}")
    expect(page.locator("#call-title")).to_be_focused()

    scored = real["post_call"]["utterances"] if real["transcript"] == "post_call" else real["utterances"]
    utts = page.locator("#transcript .utt")  # the transcript the score was computed from
    expect(utts).to_have_count(len(scored))
    for i, u in enumerate(scored):
        expect(utts.nth(i).locator(".who")).to_have_text(pretty(u["speaker"]))
        expect(utts.nth(i).locator("p")).to_have_text(u["text"])
    card = real["scorecard"]
    items = page.locator("#scorecard li.item")
    expect(items).to_have_count(len(card["items"]) + len(card["gate"]))
    for item in card["items"] + card["gate"]:
        shown = page.locator(f'#scorecard li.item[data-item="{item["id"]}"]')
        expect(shown).to_have_attribute("data-result", item["result"])
        expect(shown.locator(".why")).to_have_text(item.get("whys", {}).get("en", item["why"]))  # an English browser
    expect(page.locator("#call-score")).to_have_text(str(card["score"]) if card["score"] is not None else "—")
    expect(page.locator("#category-contact")).to_have_text(pretty(real["category"]["contact"]))
    if real["category"]["primary"]:
        expect(page.locator("#category-primary")).to_have_text(pretty(real["category"]["primary"]))

    # an evidence quote jumps to the utterance it quotes
    quoted = next(i for i in card["items"] if i["evidence"])
    quote = quoted["evidence"][0]
    page.locator(f'#scorecard li.item[data-item="{quoted["id"]}"] .quote').first.click()
    target = next(u for u in scored if u["speaker"] == quote["speaker"] and u["start"] == quote["start"])
    expect(page.locator(f"#utt-{target['seq']}")).to_be_focused()
    expect(page.locator(f"#utt-{target['seq']}")).to_have_class(re.compile(r"\bhit\b"))

    page.click("#back-link")
    expect(page.locator(f'#calls-body tr[data-call="{REAL}"] a')).to_be_focused()
    # every API request carries the token: as a Bearer header, or (the <audio> recording, which cannot
    # send headers) in its query like the sockets
    assert api_headers and all(h.get("authorization") == f"Bearer {TOKEN}" or
                               ("/recording?" in h["url"] and f"token={TOKEN}" in h["url"]) for h in api_headers)
    assert page.errors == []  # type: ignore[attr-defined]
    page.close()


def test_override_through_the_page_shows_at_once_and_persists(qa_service: RunningService, browser: Browser) -> None:
    before = detail(qa_service, REAL)
    card = before["scorecard"]
    item = next((i for i in card["items"] if i["result"] == "fail" and i["points"]), None) or next(
        i for i in card["items"] if i["result"] == "pass")
    new = "pass" if item["result"] == "fail" else "fail"
    comment = f"Checked the recording: {item['id']} should be {new}."
    page, api_headers = open_page(browser, qa_service, f"#call={REAL}")
    shown = page.locator(f'#scorecard li.item[data-item="{item["id"]}"]')
    expect(shown).to_have_attribute("data-result", item["result"])

    # keyboard only: open the form, pick the result, name, reason, save
    shown.locator(".override-toggle").focus()
    page.keyboard.press("Enter")
    form = page.locator(f"#override-{item['id']}")
    expect(form).to_be_visible()
    expect(form.locator("input[type=radio]:checked")).to_be_focused()
    form.locator(f"input[value={new}]").check()
    form.locator("input[name=reviewer]").fill("qa.lead")
    form.locator("textarea[name=comment]").fill("")
    form.locator("button[type=submit]").click()  # the reason is required: nothing is sent
    expect(shown).to_have_attribute("data-result", item["result"])
    form.locator("textarea[name=comment]").fill(comment)
    form.locator("button[type=submit]").focus()
    page.keyboard.press("Enter")

    expect(shown).to_have_attribute("data-result", new)  # shown immediately, from the API's answer
    expect(shown.locator(".overridden")).to_contain_text(comment)
    expect(shown.locator(".overridden")).to_contain_text("qa.lead")
    after = detail(qa_service, REAL)
    assert after["scorecard"]["score"] != card["score"]
    expect(page.locator("#call-score")).to_have_text(str(after["scorecard"]["score"]))
    expect(page.locator("#status")).to_contain_text(f"{item['id']} set to")
    expect(page.locator("#audit")).to_contain_text(comment)

    # persisted: the API has it, and a reload shows it
    results = {i["id"]: i["result"] for i in after["scorecard"]["items"]}
    assert results[item["id"]] == new
    last = after["overrides"][-1]
    assert (last["item_id"], last["reviewer"], last["comment"], last["old_result"], last["new_result"]) == (
        item["id"], "qa.lead", comment, item["result"], new)
    listed_score = next(c["score"] for c in httpx.get(f"{qa_service.http}/api/calls").json() if c["id"] == REAL)
    assert listed_score == after["scorecard"]["score"]
    page.reload()
    expect(shown).to_have_attribute("data-result", new)
    expect(shown.locator(".overridden")).to_contain_text(comment)
    expect(page.locator("#call-score")).to_have_text(str(after["scorecard"]["score"]))
    expect(page.locator("#audit tbody tr")).to_have_count(len(after["overrides"]))
    posts = [h for h in api_headers if h.get("content-type") == "application/json"]
    assert len(posts) == 1 and posts[0]["authorization"] == f"Bearer {TOKEN}"
    assert page.errors == []  # type: ignore[attr-defined]
    page.close()


@pytest.mark.parametrize("fragment", ["", f"#call={REAL}", "#call=en_threat_refusal"])
def test_narrow_window_keeps_everything_in_view(qa_service: RunningService, browser: Browser, fragment: str) -> None:
    page, _ = open_page(browser, qa_service, fragment, width=390, height=844)
    ready = "#transcript .utt" if fragment else "#calls-body tr"
    expect(page.locator(ready).first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if not fragment:
        cell = page.locator(f'#calls-body tr[data-call="{REAL}"] td[data-label=Agent]')
        expect(cell).to_be_visible()
        expect(cell).to_contain_text(AGENT)
    page.close()


def test_unknown_call_says_so(qa_service: RunningService, browser: Browser) -> None:
    page, _ = open_page(browser, qa_service, "#call=no-such-call")
    expect(page.locator("#error")).to_contain_text("no-such-call")
    expect(page.locator("#error")).to_be_visible()
    page.close()


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("fragment", ["", "#call=en_threat_refusal"])
def test_no_accessibility_violations(qa_service: RunningService, browser: Browser, fragment: str, width: int) -> None:
    """axe-core (WCAG 2.1 A/AA: names, labels, roles, landmarks, colour contrast) finds nothing."""
    from axe_playwright_python.sync_playwright import Axe

    page, _ = open_page(browser, qa_service, fragment, width=width)
    if fragment:
        expect(page.locator("#transcript .utt").first).to_be_visible()
        page.locator("#scorecard .override-toggle").first.click()  # an open override form is checked too
        page.locator("#scorecard .quote").first.click()  # and a highlighted utterance
    else:
        expect(page.locator("#calls-body tr").first).to_be_visible()
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa"]}})
    assert results.violations_count == 0, results.generate_report()
    page.close()
