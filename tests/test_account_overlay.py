"""The overlay's account panel in headless Chromium: the facts of the latest account.updated, the fields
that changed highlighted, what changed in words, in English and in Spanish."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from assist.settings import Settings
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
