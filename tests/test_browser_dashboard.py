"""The supervisor dashboard in headless Chromium, live against a running service streaming two real calls.

Two calls of real FLEURS read speech, each with its agent's name in the call metadata, stream at once
over Twilio Media Streams: both appear as rows, update, can be sorted, filtered and opened, and each
row disappears when its call ends; the agents' exposure counts then include the calls.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from assist.democall import fleurs_call
from tests.test_browser_overlay import start_call

TOKEN = "t0k"  # forwarded as-is; the test service runs without tenants, so any token is accepted
LONG, SHORT = "dash-long", "dash-short"


def row(page, call_id: str):
    return page.locator(f'#calls tr[data-call="{call_id}"]')


def row_order(page) -> list[str]:
    return page.locator("#calls tr").evaluate_all("rows => rows.map(r => r.dataset.call)")


@pytest.fixture(scope="module")
def dashboard(english_service, browser):
    """The dashboard page through two overlapping calls, with what it showed on the way."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sockets: list[str] = []
    errors: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{english_service.http}/ui/dashboard.html?token={TOKEN}")
    page.wait_for_selector('#conn[data-state="live"]')
    seen: dict = {"sockets": sockets, "errors": errors}

    agent, debtor, _ = fleurs_call("en", turns=4)  # 42 s, streamed in real time: live through every step
    long_call = start_call(english_service, LONG, agent, debtor, {"agent": "Zoe", "agent_id": "agent-9"}, 1.0)
    agent, debtor, _ = fleurs_call("en", turns=2)  # 20 s at double speed: ends while the long call goes on
    short_call = start_call(english_service, SHORT, agent, debtor, {"agent": "Adam", "agent_id": "agent-3"}, 2.0)

    row(page, LONG).wait_for()
    row(page, SHORT).wait_for()
    seen["agents_in_rows"] = {c: row(page, c).locator(".agent-name").inner_text() for c in (LONG, SHORT)}
    seen["order_default"] = row_order(page)
    page.get_by_role("button", name="Agent").click()
    seen["order_agent_desc"] = row_order(page)
    seen["agent_sort"] = page.locator('th[data-sort="agent"]').get_attribute("aria-sort")
    page.get_by_role("button", name="Agent").click()
    page.get_by_label("Search").fill("zoe")
    seen["filtered"] = row_order(page)
    page.get_by_label("Search").fill("")
    seen["link"] = row(page, LONG).get_by_role("link").get_attribute("href")
    seen["axe"] = Axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa"]}})

    short_call.join(120)
    row(page, SHORT).wait_for(state="detached", timeout=30_000)
    seen["after_short"] = row_order(page)
    page.locator('#agents tr[data-agent="agent-3"] td:nth-of-type(2)').filter(has_text="1").wait_for()
    seen["short_agent"] = page.locator('#agents tr[data-agent="agent-3"]').inner_text()

    row(page, LONG).get_by_role("link").click()  # click through to the call's overlay, then back
    page.wait_for_selector("#transcript li.final", timeout=60_000)
    seen["overlay_url"] = page.url
    seen["overlay_label"] = page.locator("#call-label").inner_text()
    page.go_back()
    long_call.join(120)
    row(page, LONG).wait_for(state="detached", timeout=60_000)
    page.wait_for_selector("#calls-empty:not([hidden])")
    seen["long_agent"] = page.locator('#agents tr[data-agent="agent-9"]').inner_text()
    yield seen
    page.close()


def test_every_live_call_is_listed_with_its_agent(dashboard):
    assert dashboard["agents_in_rows"] == {LONG: "Zoe", SHORT: "Adam"}
    assert dashboard["order_default"] == [SHORT, LONG], "sorted by agent, A to Z"


def test_rows_sort_and_filter(dashboard):
    assert dashboard["order_agent_desc"] == [LONG, SHORT]
    assert dashboard["agent_sort"] == "descending"
    assert dashboard["filtered"] == [LONG]


def test_calls_disappear_live_when_they_end(dashboard):
    assert dashboard["after_short"] == [LONG], "the short call left while the long one was live"


def test_click_through_opens_the_call_overlay_keeping_the_token(dashboard):
    assert dashboard["link"] == f"/ui/overlay.html?call={LONG}&token={TOKEN}"
    assert dashboard["overlay_url"].endswith(dashboard["link"])
    assert dashboard["overlay_label"].startswith(LONG) and "Zoe" in dashboard["overlay_label"]


def test_agent_exposure_counts_finished_calls(dashboard):
    cells = dashboard["long_agent"].split("\t")
    assert cells[0].startswith("Zoe") and cells[1] == "no" and cells[2] == "1"
    assert dashboard["short_agent"].split("\t")[2] == "1"


def test_no_accessibility_violations(dashboard):
    """axe-core (WCAG 2.1 A/AA: names, roles, landmarks, colour contrast) with live rows on the page."""
    assert dashboard["axe"].violations_count == 0, dashboard["axe"].generate_report()


def test_every_socket_carries_the_token(dashboard):
    assert dashboard["sockets"] and all(f"token={TOKEN}" in url for url in dashboard["sockets"])
    assert not dashboard["errors"]
