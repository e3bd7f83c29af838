"""The agent overlay in headless Chromium, live against a running service streaming a real call.

The call is the scripted EN collections call (TTS voices) streamed over Twilio Media Streams faster
than real time; whisper tiny.en hears it, the analysers warn and prompt, the page shows it. Midway the
page's socket is dropped and kept offline for a while: it must resume from its last sequence number.
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from assist.dashboard import Dashboard
from assist.democall import collections_call, collections_metadata
from assist.events import EVENT_ADAPTER
from assist.replay import replay
from streaming.types import SAMPLE_RATE

# RECOBRA_SCREENSHOTS=benchmarks/results/screenshots refreshes the README's pictures; else a temp folder
SCREENSHOTS = Path(os.environ.get("RECOBRA_SCREENSHOTS") or Path(tempfile.gettempdir()) / "recobra-screenshots")
CALL = "overlay-collections"
SPEED = 1.5  # faster than real time, slow enough for interim transcripts on a busy 2-core CPU
OFFLINE_S = 3.0


def start_call(service, call_id: str, agent, debtor, metadata: dict, speed: float) -> threading.Thread:
    """Stream a call in the background; returns once the service knows the call."""
    sender = threading.Thread(
        target=lambda: asyncio.run(replay(service.url, "twilio", agent, debtor, SAMPLE_RATE, call_id=call_id,
                                          metadata=metadata, speed=speed)),
        daemon=True,
    )
    sender.start()
    deadline = time.monotonic() + 60
    while httpx.get(f"{service.http}/calls/{call_id}/log").status_code != 200:
        assert time.monotonic() < deadline and sender.is_alive(), f"call {call_id} never started"
        time.sleep(0.05)
    return sender


@pytest.fixture(scope="module")
def overlay(english_service, browser):
    """The overlay page after the whole call, with what happened on the way."""
    agent, debtor, _ = collections_call("en")
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    board = browser.new_page(viewport={"width": 1280, "height": 500})
    board.goto(f"{english_service.http}/ui/dashboard.html")
    board.wait_for_selector('#conn[data-state="live"]')
    sender = start_call(english_service, CALL, agent, debtor, collections_metadata("en"), SPEED)
    page.goto(f"{english_service.http}/ui/overlay.html?call={CALL}")
    page.wait_for_selector("#transcript li.final", timeout=60_000)
    dropped_at = time.time()
    seq_at_drop = page.evaluate(f"window.recobraOverlay.dropConnection({OFFLINE_S * 1000})")
    board_row = board.locator(f'#calls tr[data-call="{CALL}"]')
    board_row.locator(".badge.critical").wait_for(timeout=90_000)  # the supervisor sees it while it is live
    board_seen = {"agent": board_row.locator(".agent-name").inner_text(),
                  "critical": int(board_row.locator(".badge.critical").get_attribute("data-count"))}
    # later in the call: the threat turns the style aggressive, debtor stress and hang-up risk come in
    board.locator(f'#calls tr[data-call="{CALL}"][data-band="too_aggressive"]').wait_for(timeout=90_000)
    board_row.locator(".stress-cell polyline").wait_for(timeout=90_000)
    board_row.locator('.risk:not([data-level="none"])').wait_for(timeout=90_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    board.screenshot(path=SCREENSHOTS / "dashboard.png")
    board.close()
    page.wait_for_function("window.recobraOverlay.ended", timeout=180_000)
    sender.join(60)
    log = httpx.get(f"{english_service.http}/calls/{CALL}/log").json()
    page.screenshot(path=SCREENSHOTS / "overlay.png", full_page=True)
    page.set_viewport_size({"width": 380, "height": 900})
    page.screenshot(path=SCREENSHOTS / "overlay-380.png", full_page=True)
    docked_width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size({"width": 1280, "height": 860})
    yield {"page": page, "log": log, "seq_at_drop": seq_at_drop, "dropped_at": dropped_at,
           "docked_width": docked_width, "errors": errors, "http": english_service.http, "board": board_seen}
    page.close()


def of_type(log: list[dict], kind: str) -> list[dict]:
    return [e for e in log if e["type"] == kind]


def js_round(x: float) -> int:
    """JavaScript's Math.round (halves up), not Python's round (halves to even)."""
    return math.floor(x + 0.5)


def test_transcript_lines_appear_labelled_and_final(overlay):
    page, log = overlay["page"], overlay["log"]
    finals = of_type(log, "transcript.final")
    lines = page.locator("#transcript li.final")
    assert lines.count() == len(finals)
    assert page.locator("#transcript li.provisional").count() == 0, "every interim line became final"
    partials = of_type(log, "transcript.partial")
    assert partials, "paced audio gets interim transcripts"
    assert page.evaluate("window.recobraOverlay.provisionalShown") == len(partials), "each shown as provisional"
    agent_lines = page.locator("#transcript li.final.agent .text").all_inner_texts()
    debtor_lines = page.locator("#transcript li.final.debtor .text").all_inner_texts()
    assert "garnish your wages" in " ".join(agent_lines).lower()
    assert "lost my job" in " ".join(debtor_lines).lower()
    assert set(page.locator("#transcript li.final .who").all_inner_texts()) == {"Agent", "Debtor"}
    assert not overlay["errors"]


def test_critical_compliance_warning_shows_rule_and_citation(overlay):
    page = overlay["page"]
    card = page.locator('#warnings [data-rule="US-THR-02"]')
    assert card.get_attribute("data-severity") == "critical"
    text = card.inner_text()
    assert "US-THR-02" in text and "15 USC 1692e" in text and "garnish" in text.lower()
    banner = page.locator("#critical")
    assert banner.is_visible() and banner.get_attribute("role") == "alert"
    assert "Critical compliance warning" in banner.inner_text()
    severities = [page.locator("#warnings .card").nth(i).get_attribute("data-severity")
                  for i in range(page.locator("#warnings .card").count())]
    rank = {"critical": 3, "warning": 2, "info": 1}
    assert severities == sorted(severities, key=rank.__getitem__, reverse=True), "critical first"


def test_prompt_cards_appear_with_what_to_say(overlay):
    page = overlay["page"]
    card = page.locator('#prompts [data-card="lost_job"]')
    assert card.is_visible()
    assert card.locator("ul.say li").count() >= 1
    assert page.locator('#prompts [data-card="angry_hang_up"]').is_visible()


def test_signals_show_style_stress_sentiment_and_risk(overlay):
    page, log = overlay["page"], overlay["log"]
    last_style = of_type(log, "style")[-1]
    assert page.locator("#style-band").get_attribute("data-band") == last_style["band"]
    assert float(page.locator("#style-gauge").get_attribute("aria-valuenow")) == pytest.approx(last_style["index"],
                                                                                               abs=0.0051)
    assert page.locator("#style-reasons li").all_inner_texts() == last_style["reasons"]
    last_stress = [s for s in of_type(log, "stress") if s["speaker"] == "debtor"][-1]
    assert page.locator("#stress-bar").get_attribute("aria-valuenow") == str(js_round(last_stress["level"]))
    assert page.locator("#sentiment-spark svg polyline").count() == 1
    last_risk = of_type(log, "abandon_risk")[-1]
    assert page.locator("#abandon-bar").get_attribute("aria-valuenow") == str(js_round(last_risk["risk"] * 100))


@pytest.mark.parametrize("width", [1280, 380])
def test_no_accessibility_violations(overlay, width):
    """axe-core (WCAG 2.1 A/AA: names, roles, landmarks, colour contrast) on the page full of cards."""
    from axe_playwright_python.sync_playwright import Axe

    page = overlay["page"]
    page.set_viewport_size({"width": width, "height": 900})
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa"]}})
    page.set_viewport_size({"width": 1280, "height": 860})
    assert results.violations_count == 0, results.generate_report()


def test_dropped_connection_resumes_without_gaps_or_duplicates(overlay):
    page, log, seq_at_drop = overlay["page"], overlay["log"], overlay["seq_at_drop"]
    assert page.evaluate("window.recobraOverlay.connects") == [0, seq_at_drop]
    # the call went on while the page was offline: those events came back only through ?since=
    missed = [e for e in log if e["seq"] > seq_at_drop
              and datetime.fromisoformat(e["at"]).timestamp() < overlay["dropped_at"] + OFFLINE_S - 0.5]
    assert missed, "no event was published while the page was offline"
    assert page.evaluate("window.recobraOverlay.seqs") == [e["seq"] for e in log] == list(range(1, len(log) + 1))
    shown = page.locator("#transcript li.final").evaluate_all(
        "lines => lines.map(li => [Number(li.dataset.seq), li.querySelector('.text').textContent])")
    assert sorted(shown) == [[e["seq"], e["text"]] for e in of_type(log, "transcript.final")]


def test_docked_at_380_px_without_horizontal_scroll(overlay):
    assert overlay["docked_width"] <= 380


def test_dismissed_cards_stay_dismissed_after_reload(overlay):
    page = overlay["page"]
    page.get_by_role("button", name="Dismiss prompt: Lost job").click()
    page.locator('#warnings [data-rule="US-THR-02"] button.dismiss').click()
    assert page.locator('#prompts [data-card="lost_job"]').count() == 0
    page.reload()
    page.wait_for_function("window.recobraOverlay.ended", timeout=60_000)
    assert page.locator('#prompts [data-card="angry_hang_up"]').is_visible()
    assert page.locator('#prompts [data-card="lost_job"]').count() == 0
    assert page.locator('#warnings [data-rule="US-THR-02"]').count() == 0
    assert page.locator('#warnings [data-rule="US-THR-03"]').is_visible()


def test_critical_banner_is_acknowledged_with_the_keyboard(overlay):
    page = overlay["page"]
    ack = page.locator("#critical button.ack")
    ack.focus()
    page.keyboard.press("Enter")
    assert page.locator("#critical").is_hidden()
    assert page.locator('#warnings [data-rule="US-THR-03"]').is_visible(), "acknowledged, not dismissed"


def test_without_a_call_the_overlay_lists_live_calls(overlay, browser):
    page = browser.new_page()
    page.goto(f"{overlay['http']}/ui/overlay.html?token=t0k")
    page.wait_for_selector("#picker:not([hidden])")
    assert page.locator("#picker-dashboard").get_attribute("href").endswith("dashboard.html?token=t0k")
    page.close()


def test_dashboard_listed_the_live_call_with_its_critical_warnings(overlay):
    assert overlay["board"]["agent"] == "Mike"
    assert overlay["board"]["critical"] >= 1


def test_repeated_hard_calls_flag_the_agent_for_a_check_in(overlay):
    """The call's real event log, fed three times to the dashboard: three hard calls in a row."""
    dashboard = Dashboard()
    for n in range(3):
        for raw in overlay["log"]:
            dashboard.on_event(EVENT_ADAPTER.validate_python({**raw, "call_id": f"{CALL}-{n}"}))
    agent = dashboard.snapshot()["agents"][0]
    assert agent["agent"] == "Mike" and agent["agent_id"] == "agent-7"
    assert agent["calls"] == 3 and agent["hard_calls"] == 3 and agent["consecutive_hard_calls"] == 3
    assert "3 hard calls in a row" in agent["attention"]
    assert dashboard.snapshot()["calls"] == []
