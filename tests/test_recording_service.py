"""A spoken card number through the real service (TTS -> VAD -> whisper): the stored recording is stereo
Ogg Vorbis with the card silenced, sealed with the tenant's key, served with ranges to its own tenant only."""

from __future__ import annotations

import asyncio
import base64
import io
import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
import websockets

from assist.democall import _interleave
from assist.replay import follow, replay
from assist.sealed import SealedError, SealedReader
from assist.settings import Settings
from models.tts import load_voice
from streaming.protocols.plain import plain_messages
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.tenancy import ACME_KEY, METRICS_TOKEN, TENANTS, TOKEN_SECRET, bearer, token
from tests.test_recording import rms

TURNS = [
    ("agent", "Thank you. Which card would you like to use today?"),
    ("debtor", "The card number is four one one one, one one one one, one one one one, one one one one."),
    ("agent", "Thank you, the payment of two hundred dollars is scheduled for Friday."),
]
KEYS = {t["id"]: base64.b64encode(os.urandom(32)).decode() for t in TENANTS}


def sealed_tenants() -> list[dict]:
    """The test tenants, each with its recording key (KEYS)."""
    return [{**t, "recording_key": KEYS[t["id"]]} for t in TENANTS]


def spoken(turns: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """The turns in the TTS voices (agent joe, debtor heart), one after another: the (agent, debtor) channels."""
    voices = {"agent": load_voice("joe"), "debtor": load_voice("heart")}
    return _interleave([(speaker, voices[speaker](text)) for speaker, text in turns])


def call_as_acme(service: RunningService, call_id: str, agent: np.ndarray, debtor: np.ndarray, **more: Any) -> None:
    """Stream a call to the service as tenant acme, as fast as it takes it (`more`: replay's other options)."""
    asyncio.run(replay(service.url, "plain", agent, debtor, SAMPLE_RATE, call_id=call_id, speed=0,
                       api_key=ACME_KEY, **more))


def until_stored(service: RunningService, call_id: str) -> None:
    """Follow the call as acme's agent until it has ended, and so is stored."""
    asyncio.run(follow(service.url, call_id, lambda event: None, token=token("acme", "agent", call_id)))


@pytest.fixture(scope="module")
def service_call(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recording")
    settings = Settings(asr_model="tiny.en", language="en", cache_dir=tmp / "cache", recordings_dir=tmp / "rec",
                        database_url=f"sqlite:///{tmp / 'recobra.db'}", tenants=sealed_tenants(),
                        token_secret=TOKEN_SECRET, metrics_token=METRICS_TOKEN)
    agent, debtor = spoken(TURNS)
    with RunningService(settings) as service:
        call_as_acme(service, "rec-1", agent, debtor)
        short = slice(0, 3 * SAMPLE_RATE)
        call_as_acme(service, "rec-off", agent[short], debtor[short], metadata={"record": "false"})
        asyncio.run(_dropped_and_resumed(service, agent[: 8 * SAMPLE_RATE], debtor[: 8 * SAMPLE_RATE]))
        for call_id in ("rec-1", "rec-off", "rec-re"):  # until each call has ended and is stored
            until_stored(service, call_id)
        yield service, settings, (agent, debtor)


async def _dropped_and_resumed(service: RunningService, agent: np.ndarray, debtor: np.ndarray) -> None:
    """Call rec-re: the connection drops halfway without a stop, telephony connects again and carries on."""
    messages = list(plain_messages(agent, debtor, SAMPLE_RATE, call_id="rec-re"))
    (_, start), frames, (_, stop) = messages[0], messages[1:-1], messages[-1]
    half = len(frames) // 2
    for last, part in ((False, frames[:half]), (True, frames[half:])):
        async with websockets.connect(f"{service.url}/ingest/plain", additional_headers={"X-API-KEY": ACME_KEY}) as ws:
            await ws.send(start)
            for _, message in part:
                await ws.send(message)
            if last:
                await ws.send(stop)


def get(service: RunningService, path: str, tenant: str = "acme", role: str = "qa", **headers: str) -> httpx.Response:
    return httpx.get(f"{service.http}{path}", headers={**bearer(tenant, role), **headers})


def test_the_card_is_silent_and_the_rest_of_the_call_is_not(service_call) -> None:
    service, _, (agent, debtor) = service_call
    info = get(service, "/api/calls/rec-1/recording/info").json()
    assert info["status"] == "complete" and abs(info["duration"] - len(agent) / SAMPLE_RATE) < 0.5
    cards = [s for s in info["redactions"] if s["kind"] == "card"]
    assert cards and all(set(s) == {"start", "end", "kind", "speaker"} for s in info["redactions"])
    detail = get(service, "/api/calls/rec-1").json()
    redacted = [w for u in detail["utterances"] for w in u["words"] if w["text"] == "[CARD]"]
    assert redacted and all(any(s["start"] <= w["start"] and w["end"] <= s["end"] for s in cards) for w in redacted)
    response = get(service, "/api/calls/rec-1/recording")
    assert response.status_code == 200 and response.headers["content-type"] == "audio/ogg"
    audio, rate = sf.read(io.BytesIO(response.content))
    assert rate == SAMPLE_RATE and audio.shape[1] == 2
    silenced = np.zeros(len(audio), bool)
    for s in info["redactions"]:
        a, b = int(s["start"] * SAMPLE_RATE), int(s["end"] * SAMPLE_RATE)
        silenced[a:b] = True
        assert rms(debtor[a:b]) > 0.01 and (rms(audio[a:b]) < 0.002).all(), s
    assert (rms(audio[~silenced]) > 0.01).all(), "agent and debtor speech outside the spans is kept"


def test_ranges_tenants_roles_and_the_key(service_call) -> None:
    service, _, _ = service_call
    full = get(service, "/api/calls/rec-1/recording").content
    head = get(service, "/api/calls/rec-1/recording", Range="bytes=0-99")
    assert head.status_code == 206 and head.content == full[:100]
    assert head.headers["content-range"] == f"bytes 0-99/{len(full)}" and head.headers["accept-ranges"] == "bytes"
    assert get(service, "/api/calls/rec-1/recording", Range="bytes=100-").content == full[100:]
    assert get(service, "/api/calls/rec-1/recording", Range="bytes=-50").content == full[-50:]
    past = get(service, "/api/calls/rec-1/recording", Range=f"bytes={len(full)}-")
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(full)}"
    assert get(service, "/api/calls/rec-1/recording", role="supervisor").status_code == 200
    assert get(service, "/api/calls/rec-1/recording", tenant="globex").status_code == 404
    assert httpx.get(f"{service.http}/api/calls/rec-1/recording",
                     headers=bearer("acme", "agent", "rec-1")).status_code == 403
    assert httpx.get(f"{service.http}/api/calls/rec-1/recording").status_code == 401
    path = service.app.state.recordings.path("acme", "rec-1")
    assert b"OggS" not in path.read_bytes() and full[100:400] not in path.read_bytes()
    with pytest.raises(SealedError):
        SealedReader(path, base64.b64decode(KEYS["globex"]), "rec-1")


def test_a_reconnect_continues_the_same_recording(service_call) -> None:
    service, _, (agent, _) = service_call
    info = get(service, "/api/calls/rec-re/recording/info").json()
    assert info["status"] == "complete" and info["duration"] == pytest.approx(8.0, abs=0.1)
    audio, _ = sf.read(io.BytesIO(get(service, "/api/calls/rec-re/recording").content))
    assert len(audio) == pytest.approx(8 * SAMPLE_RATE, abs=SAMPLE_RATE // 10)
    speech = np.flatnonzero(np.abs(agent[: 8 * SAMPLE_RATE]) > 0.05)
    first, last = slice(speech[0], speech[0] + SAMPLE_RATE // 2), slice(speech[-1] - SAMPLE_RATE // 2, speech[-1])
    assert rms(audio[first, 0]) > 0.01 and rms(audio[last, 0]) > 0.01, "audio from both connections"


def test_a_call_with_recording_off_stores_nothing(service_call) -> None:
    service, settings, _ = service_call
    assert get(service, "/api/calls/rec-off").status_code == 200
    assert get(service, "/api/calls/rec-off/recording").status_code == 404
    assert len(list(settings.recordings.recordings_dir.rglob("*.rec"))) == 2  # rec-1 and rec-re


def test_the_qa_page_plays_the_call_beside_its_transcript(service_call, browser) -> None:
    """Chromium loads the recording, clicking a line seeks there and highlights it, spans are labelled (EN/ES)."""
    service, _, _ = service_call
    page = browser.new_page(locale="en-US")
    page.goto(f"{service.http}/ui/qa.html?token={token('acme', 'qa')}#call=rec-1")
    page.wait_for_function("document.getElementById('player-audio').readyState >= 1", timeout=20_000)
    assert page.locator("#player-timeline .rec-span").count() >= 1
    assert "Card number" in page.locator("#player-spans").inner_text()
    line = page.locator("#transcript .utt").last
    start = float(line.get_attribute("data-start"))
    line.click()
    page.wait_for_function(f"Math.abs(document.getElementById('player-audio').currentTime - {start}) < 1.0")
    page.wait_for_function("document.querySelector('#transcript .utt:last-child').classList.contains('playing')")
    assert page.locator("#transcript .utt.playing").count() == 1
    if folder := os.environ.get("RECOBRA_SCREENSHOTS"):
        page.screenshot(path=str(Path(folder) / "qa-recording.png"), full_page=True)
    page.select_option("#language", "es")
    page.wait_for_function("document.getElementById('player-spans').innerText.includes('Número de tarjeta')")
    page.close()


def test_a_damaged_or_truncated_file_is_a_clear_error_or_what_is_whole(service_call) -> None:
    service, _, _ = service_call
    path = service.app.state.recordings.path("acme", "rec-re")
    original = path.read_bytes()
    full = get(service, "/api/calls/rec-re/recording").content
    try:
        damaged = bytearray(original)
        damaged[40] ^= 1  # inside the first record
        path.write_bytes(bytes(damaged))
        response = get(service, "/api/calls/rec-re/recording")
        assert response.status_code == 500 and "cannot be decrypted" in response.json()["detail"]
        path.write_bytes(original[:-20])  # without its end mark (a crash after the last write): all of it
        assert get(service, "/api/calls/rec-re/recording").content == full
        path.write_bytes(original[:-30])  # cut inside the last record: the whole records before it
        cut = get(service, "/api/calls/rec-re/recording")
        assert cut.status_code == 200 and 0 < len(cut.content) < len(full) and full.startswith(cut.content)
    finally:
        path.write_bytes(original)


def test_a_purged_recording_is_gone(service_call) -> None:
    service, _, _ = service_call
    from datetime import UTC, datetime, timedelta

    recordings = service.app.state.recordings
    assert sorted(recordings.purge(datetime.now(UTC) + timedelta(days=91))) == ["rec-1", "rec-re"]
    assert get(service, "/api/calls/rec-1/recording").status_code == 410
    assert not list(Path(recordings.root).rglob("*.rec"))
