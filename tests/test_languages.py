"""Every call in its own language: routing, refusal, detection and switching on one service with its defaults."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import jiwer
import numpy as np
import pytest
import websockets

from assist.call_language import CallLanguage
from assist.democall import DATA, load_mono, two_speaker_call
from assist.settings import Settings
from models.batching import Pending, Priority, RequestQueue
from tests.service import RunningService
from tests.test_end_to_end import finals, normalise, stream_call

FLEURS = DATA / "fleurs-cuttledoc"
PICOVOICE = DATA / "picovoice-leopard-tests"


def picovoice_es() -> tuple[np.ndarray, str]:
    tests = json.loads((PICOVOICE / "test_data.json").read_text())["tests"]["language_tests"]
    es = next(t for t in tests if t["language"] == "es")
    return load_mono(PICOVOICE / es["audio_file"]), es["transcript"]


def spanish_call() -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Every real Spanish recording in ../shared/data: agent FLEURS es 0, 2, 4, 6, 8; debtor FLEURS es
    1, 3, 5, 7, 9 and the Picovoice Spanish test sentence."""
    _, pico_ref = picovoice_es()
    turns = [("agent" if i % 2 == 0 else "debtor", FLEURS / f"fleurs-es-{i:03d}.ogg") for i in range(10)]
    agent, debtor = two_speaker_call([*turns, ("debtor", PICOVOICE / "test_es.wav")])
    refs = {s: " ".join(p.with_suffix(".txt").read_text() for sp, p in turns if sp == s) for s in ("agent", "debtor")}
    refs["debtor"] += " " + pico_ref
    return agent, debtor, refs


@pytest.fixture(scope="module")
def default_service(tmp_path_factory):
    """The service on its defaults: tiny.en for English, multilingual base for Spanish, language detected."""
    tmp = tmp_path_factory.mktemp("languages")
    with RunningService(Settings(cache_dir=tmp / "cache", database_url=f"sqlite:///{tmp / 'r.db'}")) as service:
        yield service


def speaker_wer(events: list[dict], refs: dict[str, str]) -> dict[str, float]:
    return {s: jiwer.wer(normalise(refs[s]), normalise(finals(events, s))) for s in ("agent", "debtor")}


@pytest.mark.parametrize("protocol, metadata", [("twilio", {"language": "es"}),
                                                ("genesys", {"language": "es-MX"})])
def test_spanish_call_on_the_defaults_is_transcribed_in_spanish(default_service, protocol, metadata):
    agent, debtor, refs = spanish_call()
    events = stream_call(default_service, protocol, agent, debtor, f"es-{protocol}", metadata=metadata)
    wer = speaker_wer(events, refs)
    print(f"{protocol} Spanish per-speaker WER {wer}")
    assert max(wer.values()) <= 0.15
    assert {e["language"] for e in events if e["type"].startswith("transcript.")} == {"es"}
    assert not [e for e in events if e["type"] in ("call.error", "call.language")]


def test_english_and_spanish_calls_at_once_each_in_its_language(default_service):
    es_agent, es_debtor, es_refs = spanish_call()
    en_agent, en_debtor = two_speaker_call([("agent", FLEURS / f"fleurs-en-00{i}.ogg") if i % 2 == 0 else
                                            ("debtor", FLEURS / f"fleurs-en-00{i}.ogg") for i in range(4)])
    en_refs = {s: " ".join((FLEURS / f"fleurs-en-00{i}.txt").read_text() for i in range(4)
                           if (i % 2 == 0) == (s == "agent")) for s in ("agent", "debtor")}
    results: dict[str, list[dict]] = {}

    def run(call_id, protocol, agent, debtor, metadata):
        results[call_id] = stream_call(default_service, protocol, agent, debtor, call_id, metadata=metadata)

    threads = [threading.Thread(target=run, args=("mixed-es", "twilio", es_agent, es_debtor, {"language": "es"})),
               threading.Thread(target=run, args=("mixed-en", "plain", en_agent, en_debtor, {"language": "en"}))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert max(speaker_wer(results["mixed-es"], es_refs).values()) <= 0.15
    assert max(speaker_wer(results["mixed-en"], en_refs).values()) <= 0.2
    assert {e["language"] for e in results["mixed-en"] if e["type"] == "transcript.final"} == {"en"}
    assert {e["language"] for e in results["mixed-es"] if e["type"] == "transcript.final"} == {"es"}


def test_language_left_unnamed_is_detected_once_and_held(default_service):
    agent, debtor, refs = spanish_call()
    events = stream_call(default_service, "plain", agent, debtor, "es-detected", metadata={})
    detected = [e for e in events if e["type"] == "call.language"]
    assert [(e["language"], e["reason"]) for e in detected] == [("es", "detected")]
    later = [e for e in events if e["type"] == "transcript.final" and e["seq"] > detected[0]["seq"]]
    assert later and {e["language"] for e in later} == {"es"}
    assert max(speaker_wer(events, refs).values()) <= 0.2


def test_english_call_whose_debtor_switches_to_spanish_follows_the_switch(default_service):
    """Code-switching: the call says English, the debtor answers in Spanish for a stretch."""
    turns = [("agent", FLEURS / "fleurs-en-000.ogg"), ("debtor", FLEURS / "fleurs-es-000.ogg"),
             ("debtor", FLEURS / "fleurs-es-002.ogg"), ("debtor", FLEURS / "fleurs-es-003.ogg"),
             ("debtor", FLEURS / "fleurs-es-005.ogg")]
    agent, debtor = two_speaker_call(turns)
    events = stream_call(default_service, "plain", agent, debtor, "switch", metadata={"language": "en"})
    switched = [e for e in events if e["type"] == "call.language"]
    assert [(e["language"], e["reason"]) for e in switched] == [("es", "switched")]
    debtor_finals = [e for e in events if e["type"] == "transcript.final" and e["speaker"] == "debtor"]
    assert debtor_finals[-1]["language"] == "es" and debtor_finals[-1]["seq"] > switched[0]["seq"]
    ref = (FLEURS / "fleurs-es-005.txt").read_text()
    assert jiwer.wer(normalise(ref), normalise(debtor_finals[-1]["text"])) <= 0.3


async def _close_of(url: str, metadata: dict) -> tuple[int, str]:
    start = {"event": "start", "call_id": f"lang-{time.monotonic_ns()}", "encoding": "pcm16", "sample_rate": 16000,
             "channels": ["agent", "debtor"], "metadata": metadata}
    async with websockets.connect(f"{url}/ingest/plain") as ws:
        await ws.send(json.dumps(start))
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("unreachable")


def test_a_language_no_model_serves_is_refused_at_the_start(default_service, tmp_path):
    code, reason = asyncio.run(_close_of(default_service.url, {"language": "fr"}))
    assert code == 4422 and "'fr'" in reason and "en, es" in reason
    english_only = Settings(asr_model="tiny.en", cache_dir=tmp_path / "cache", database_url=f"sqlite:///{tmp_path}/e.db")
    with RunningService(english_only) as service:
        code, reason = asyncio.run(_close_of(service.url, {"language": "es"}))
    assert code == 4422 and "'es'" in reason and "served: en" in reason


def test_call_language_policy():
    held = CallLanguage("en", ("en", "es"))
    assert held.observe("es", 0.99, 3.0) is None  # one utterance is not a switch
    assert held.observe("en", 0.99, 3.0) is None  # and a final in the held language resets the count
    assert held.observe("es", 0.99, 3.0) is None
    assert held.observe("es", 0.99, 0.5) is None  # too short to count
    assert held.observe("es", 0.70, 3.0) is None  # not confident enough: resets
    assert held.observe("es", 0.95, 3.0) is None
    assert held.observe("es", 0.95, 3.0) == "es" and held.current == "es"
    assert held.observe("pl", 0.99, 3.0) is None  # never a language the service does not serve
    undecided = CallLanguage(None, ("en", "es"))
    assert undecided.observe("es", 0.6, 2.0) is None and undecided.current is None
    assert undecided.observe("es", 0.9, 2.0) == "es"


def test_an_interim_that_waited_long_enough_is_served_with_the_finals():
    queue = RequestQueue(interim_max_wait_s=0.05)
    told: list = []
    queue.put(Pending("old-interim", Priority.INTERIM, told.append, "a", ("a", "agent")))
    time.sleep(0.06)
    for i in range(3):
        queue.put(Pending(f"final-{i}", Priority.FINAL, told.append, "b", ("b", f"c{i}")))
    queue.put(Pending("new-interim", Priority.INTERIM, told.append, "c", ("c", "agent")))
    order = [p.item for p in queue.take(10, 0.0)]
    assert order == ["old-interim", "final-0", "final-1", "final-2", "new-interim"]
