"""Screenshots of the QA review page (benchmarks/results/screenshots/qa*.png) in headless Chromium.

Loads the scripted EN/ES calls (tests/data/qa_calls) into a fresh SQLite database through the recorder,
starts the real service on it, opens /ui/qa.html and captures the call list and one call's review.

    python -m benchmarks.screenshot_qa [--call en_threat_refusal] [--width 1280]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from assist.qa.script import Script
from assist.settings import Settings
from assist.storage.recorder import Recorder
from tests.service import RunningService

CALLS = Path(__file__).resolve().parent.parent / "tests" / "data" / "qa_calls"
OUT = Path(__file__).resolve().parent / "results" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


async def load_scripted_calls(database_url: str) -> list[str]:
    """Store and score every scripted call as if it had been streamed live."""
    recorder = Recorder(database_url)
    await recorder.start()
    names = []
    for path in sorted(CALLS.glob("*.yaml")):
        await Script.load(path).store(recorder, path.stem)
        names.append(path.stem)
    await recorder.close()
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--call", default="en_threat_refusal", help="the call whose review is captured")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'recobra.db'}"
        names = asyncio.run(load_scripted_calls(url))
        settings = Settings(asr_model="tiny.en", language="en", cache_dir=Path(tmp) / "cache", database_url=url)
        with RunningService(settings) as service, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(f"{service.http}/ui/qa.html")
            page.wait_for_selector(f'#calls-body tr[data-call="{names[-1]}"]')
            page.screenshot(path=OUT / "qa-list.png")
            page.goto(f"{service.http}/ui/qa.html#call={args.call}")
            page.wait_for_selector("#transcript .utt")
            page.locator("#warnings .quote, #scorecard .quote").first.click()  # jump to the quoted utterance
            page.wait_for_timeout(600)  # the smooth scroll
            page.screenshot(path=OUT / "qa.png")
            browser.close()
    print(f"wrote {OUT / 'qa.png'} and {OUT / 'qa-list.png'} ({len(names)} calls)")


if __name__ == "__main__":
    main()
