"""The QA page (/ui/qa.html, headless Chromium) says which transcript a call's score was computed from and
where its post-call transcript stands, in English and Spanish, and switches between the two transcripts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import Browser, expect

from assist.qa.script import Script
from assist.settings import Settings
from assist.storage import repository as repo
from assist.storage.db import Database
from assist.storage.recorder import Recorder
from assist.storage.tables import PostCallTranscript
from tests.service import RunningService
from tests.test_browser_qa import CALLS

RESCORED, NOT_RECORDED = "en_promise_to_pay", "en_threat_refusal"
POST_TEXT = "I can pay two hundred dollars on Friday by debit card"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """Two scripted calls (no recording): one given a done post-call transcript, one the runner skips."""
    tmp = tmp_path_factory.mktemp("post_call_page")
    url = f"sqlite:///{tmp / 'recobra.db'}"

    async def load() -> None:
        recorder = Recorder(url)
        await recorder.start()
        for name in (RESCORED, NOT_RECORDED):
            await Script.load(CALLS / f"{name}.yaml").store(recorder, name)
        await recorder.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's event loop
        pool.submit(asyncio.run, load()).result()
    db = Database(url)
    with db.session() as s:
        s.add(PostCallTranscript(
            call_id=RESCORED, status="done", attempts=1, progress=1.0, queued_at=datetime.now(UTC),
            settings={"models": {"en": "tiny.en"}, "beam": 5, "segmentation": "silero-vad"},
            utterances=[{"seq": 1, "speaker": "debtor", "start": 3.0, "end": 6.0, "text": POST_TEXT,
                         "language": "en", "words": []}]))
        s.flush()
        repo.score_and_store(s, RESCORED)
    db.close()
    settings = Settings(asr_model="tiny.en", language="en", cache_dir=tmp / "cache", database_url=url,
                        post_call_poll_s=0.2)
    with RunningService(settings) as running:
        deadline = time.monotonic() + 60
        while (httpx.get(f"{running.http}/api/calls/{NOT_RECORDED}").json()["post_call"] or {}).get("status") \
                != "skipped":
            assert time.monotonic() < deadline, "the runner did not mark the call skipped"
            time.sleep(0.2)
        yield running


def test_the_page_shows_the_transcript_the_score_uses_and_switches_to_the_live_one(service, browser: Browser):
    page = browser.new_page(locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{service.http}/ui/qa.html#call={RESCORED}")
    expect(page.locator("#transcript-used")).to_have_text("Scored from the post-call transcript.")
    expect(page.locator("#post-call-state")).to_have_text("Post-call transcript: tiny.en, beam 5.")
    expect(page.locator("#transcript .utt")).to_have_count(1)
    expect(page.locator("#transcript")).to_contain_text(POST_TEXT)
    page.click("#transcript-switch")
    expect(page.locator("#transcript-showing")).to_have_text("Showing the live transcript.")
    expect(page.locator("#transcript")).not_to_contain_text(POST_TEXT)
    assert page.locator("#transcript .utt").count() > 1
    expect(page.locator("#transcript-switch")).to_be_focused()
    page.select_option("#language", "es")
    expect(page.locator("#transcript-used")).to_have_text("Puntuada con la transcripción posterior a la llamada.")
    expect(page.locator("#transcript-switch")).to_have_text("Mostrar la transcripción posterior")
    expect(page.locator("#post-call-state")).to_have_text("Transcripción posterior: tiny.en, haz 5.")
    assert not errors
    page.close()


@pytest.mark.parametrize("language, used, state", [
    ("en", "Scored from the live transcript.", "No post-call transcript: the call was not recorded."),
    ("es", "Puntuada con la transcripción en vivo.", "Sin transcripción posterior: la llamada no se grabó."),
])
def test_a_call_without_a_recording_says_so_in_both_languages(service, browser: Browser, language, used, state):
    page = browser.new_page(locale="es-ES" if language == "es" else "en-US")
    page.goto(f"{service.http}/ui/qa.html#call={NOT_RECORDED}")
    page.select_option("#language", language)
    expect(page.locator("#transcript-used")).to_have_text(used)
    expect(page.locator("#post-call-state")).to_have_text(state)
    expect(page.locator("#transcript-switch")).to_have_count(0)
    page.close()
