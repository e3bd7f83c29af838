from __future__ import annotations

import os
from pathlib import Path

import pytest

from assist.settings import Settings
from tests.service import RunningService


@pytest.fixture(scope="session")
def english_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("service")
    settings = Settings(asr_model="tiny.en", language="en", cache_dir=tmp / "cache",
                        database_url=f"sqlite:///{tmp / 'recobra.db'}")
    with RunningService(settings) as service:
        yield service


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download).

    Module-scoped: Playwright's sync API keeps an event loop running in the main thread while it is
    open, so `asyncio.run` in later test modules would fail under a session-scoped browser.
    """
    if not CHROMIUM.exists():
        if os.environ.get("RECOBRA_REQUIRE_SERVICES"):
            pytest.fail("Chromium is required here: apt-get install chromium chromium-driver")
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()
