"""The overlay's account panel in headless Chromium: the facts of the latest account.updated, the fields
that changed highlighted, what changed in words, in English and in Spanish; the prompt cards from the facts
following them live (replaced facts replace their cards, withdrawn facts take them away)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import numpy as np
import pytest
import websockets

from assist.settings import Settings
from streaming.protocols.plain import plain_messages
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.test_account import FACTS, TODAY, log_of, stream

CALL = "acct-overlay"


@pytest.fixture(scope="module")
def ended_call(tmp_path_factory):
    """A development-mode service after a call whose facts arrived before it and changed during it."""
    tmp = tmp_path_factory.mktemp("account-overlay")
    settings = Settings(asr_model="tiny.en", language="en", cache_dir=tmp / "cache",
                        database_url=f"sqlite:///{tmp / 'r.db'}", recordings_dir=tmp / "recordings")
    with RunningService(settings) as service:
        before = {**FACTS, "payments_since_extract": [], "balance": 400.0, "amount_past_due": 400.0}
        assert httpx.put(f"{service.http}/calls/{CALL}/account", json=before).json()["status"] == "waiting"

        async def payment_arrives() -> None:
            async with httpx.AsyncClient(base_url=service.http) as client:
                patch = {"balance": 250.0, "amount_past_due": 250.0, "attorney_on_file": True,
                         "payments_since_extract": FACTS["payments_since_extract"]}
                assert (await client.patch(f"/calls/{CALL}/account", json=patch)).json()["status"] == "applied"

        silence = np.zeros(3 * SAMPLE_RATE, dtype=np.float32)
        asyncio.run(stream(service, CALL, silence, silence, {"language": "en"}, {1.5: payment_arrives}))
        log_of(service, CALL)
        yield service


def test_account_panel_highlights_what_changed_in_both_languages(ended_call, browser):
    page = browser.new_page(locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{ended_call.http}/ui/overlay.html?call={CALL}")
    page.wait_for_function("window.recobraOverlay && window.recobraOverlay.ended")
    panel = page.locator("#account-panel")
    assert panel.is_visible() and page.locator("#account-h").text_content() == "Account"
    assert page.locator("#account-changes li").all_inner_texts() == [
        "Amount past due now 250.00 USD (was 400.00 USD)", "Attorney on file",
        "Balance now 250.00 USD (was 400.00 USD)", "Payment of 150.00 USD received today"]
    changed = page.locator("#account-facts .changed").evaluate_all("rows => rows.map(r => r.dataset.field)")
    assert sorted(changed) == ["amount_past_due", "attorney_on_file", "balance", "payments_since_extract"]
    assert page.locator("[data-field=attorney_on_file].stop dd").inner_text() == "Yes"
    assert page.locator("[data-field=payments_since_extract] dd").inner_text() == f"150.00 USD · {TODAY} · card"
    assert page.locator("[data-field=plan] dd").inner_text() == "active · 50.00 USD · 2027-01-05"

    page.locator("#summary li").first.wait_for()
    assert page.locator("#summary .summary-text").all_inner_texts() == [
        "ACC-ATTY-01: Debtor represented by an attorney: contact the attorney, not the debtor",
        f"Payment of 150.00 USD received on {TODAY} (account facts)"]
    sections = page.locator("#summary li").evaluate_all("rows => rows.map(r => [r.dataset.section, r.dataset.seq])")
    summary = httpx.get(f"{ended_call.http}/calls/{CALL}/summary").json()
    assert sections == [[line["section"], str(line["source"]["seq"])] for line in summary["lines"]]

    page.click("#summary-edit")
    page.locator("#summary .summary-edit").first.fill("Attorney on file: I ended the call at once.")
    page.click("#summary-save")
    page.locator("#summary-note").filter(has_text="Edited by dev").wait_for()
    assert page.locator("#summary .summary-text").first.inner_text() == "Attorney on file: I ended the call at once."
    edited = httpx.get(f"{ended_call.http}/calls/{CALL}/summary").json()["edited"]
    assert edited["by"] == "dev" and edited["lines"][0] == {"section": "compliance",
                                                             "text": "Attorney on file: I ended the call at once."}

    page.select_option("#language", "es")
    assert page.locator("#account-h").text_content() == "Cuenta"
    assert page.locator("#account-changes li").nth(3).inner_text() == "Pago de 150.00 USD recibido hoy"
    assert page.locator("[data-field=payments_since_extract] dt").inner_text() == "Pagos recibidos"
    assert page.locator("[data-field=attorney_on_file] dd").inner_text() == "Sí"
    assert page.locator("[data-field=plan] dd").inner_text() == "activo · 50.00 USD · 2027-01-05"
    assert not errors, errors


async def held_call(service, call_id: str, release: threading.Event) -> None:
    """A plain call of 2 s of silence sent at once; it stays live (within the idle timeout) until `release`."""
    silence = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    *messages, (_, stop) = plain_messages(silence, silence, SAMPLE_RATE, call_id=call_id, metadata={"language": "en"})
    async with websockets.connect(f"{service.url}/ingest/plain") as ws:
        for _, message in messages:
            await ws.send(message)
        await asyncio.to_thread(release.wait, 60)
        await ws.send(stop)
        await ws.wait_closed()


def test_fact_cards_follow_the_facts_replaced_or_withdrawn(ended_call, browser):
    """A fact card the newer facts no longer call for leaves the overlay at once; one they still call for with
    other words is replaced; withdrawn (empty) facts take every fact card away, live and on a later replay."""
    call = "acct-cards"
    api = f"{ended_call.http}/calls/{call}/account"
    cards_on = "els => els.map(e => e.dataset.card)"
    assert httpx.put(api, json={**FACTS, "dispute_open": True}).json()["status"] == "waiting"
    release = threading.Event()
    sender = threading.Thread(target=lambda: asyncio.run(held_call(ended_call, call, release)), daemon=True)
    sender.start()
    page = browser.new_page(locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        deadline = time.monotonic() + 60
        while httpx.get(f"{ended_call.http}/calls/{call}/log").status_code != 200:
            assert time.monotonic() < deadline and sender.is_alive(), "the call never started"
            time.sleep(0.05)
        page.goto(f"{ended_call.http}/ui/overlay.html?call={call}")
        cards = page.locator("#prompts .card.prompt")
        page.locator('#prompts [data-card="account_dispute"]').wait_for()
        disputed = sorted(cards.evaluate_all(cards_on))
        paid_first = page.locator('#prompts [data-card="account_payment_received"] .say').inner_text()

        paid = {"amount": 80.0, "date": TODAY, "channel": "card"}
        replaced = {**FACTS, "last_payment": {"amount": 80.0, "date": TODAY}, "payments_since_extract": [paid]}
        assert httpx.put(api, json=replaced).json()["status"] == "applied"
        page.locator('#prompts [data-card="account_plan_options"]').wait_for()
        page.locator('#prompts [data-card="account_dispute"]').wait_for(state="detached", timeout=1000)
        after_replace = sorted(cards.evaluate_all(cards_on))
        paid_then = page.locator('#prompts [data-card="account_payment_received"] .say').inner_text()

        assert httpx.put(api, json={}).json()["status"] == "applied"
        page.wait_for_function("document.querySelectorAll('#prompts .card').length === 0", timeout=10_000)
        withdrawn = (page.locator("#prompts-empty").is_visible(), page.locator("#prompts-count").inner_text())
    finally:
        release.set()
        sender.join(60)
    page.wait_for_function("window.recobraOverlay && window.recobraOverlay.ended", timeout=60_000)
    later = browser.new_page(locale="en-US")  # the ended call replayed from its log ends the same way
    later.on("pageerror", lambda error: errors.append(str(error)))
    later.goto(f"{ended_call.http}/ui/overlay.html?call={call}")
    later.wait_for_function("window.recobraOverlay && window.recobraOverlay.ended")
    replayed = later.locator("#prompts .card").count()
    updates = [e for e in log_of(ended_call, call) if e["type"] == "account.updated"]
    page.close()
    later.close()

    assert disputed == ["account_dispute", "account_payment_received"]  # no plan offers while disputed
    assert after_replace == ["account_payment_received", "account_plan_options"]
    assert "150.00 USD" in paid_first and "80.00 USD" in paid_then and "150.00 USD" not in paid_then
    assert withdrawn == (True, "")
    assert replayed == 0
    assert [u["cards"] for u in updates] == [["account_dispute", "account_payment_received"],
                                             ["account_payment_received", "account_plan_options"], []]
    assert not errors, errors
