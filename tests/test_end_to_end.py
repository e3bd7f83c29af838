"""Real recordings streamed through real telephony protocols into the running service."""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata

import httpx
import jiwer
import numpy as np
import pytest
import websockets

from assist.democall import DATA, fleurs_call, two_speaker_call
from assist.replay import follow, replay
from assist.settings import Settings
from streaming.types import SAMPLE_RATE
from tests.service import RunningService

HARVARD = DATA / "osr-harvard-8k"


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def stream_call(service, protocol, agent, debtor, call_id, metadata=None) -> list[dict]:
    events: list[dict] = []

    async def run() -> None:
        sender = asyncio.create_task(replay(service.url, protocol, agent, debtor, SAMPLE_RATE, call_id=call_id,
                                            speed=0, metadata=metadata))
        await sender
        await follow(service.url, call_id, events.append)

    asyncio.run(run())
    return events


def finals(events: list[dict], speaker: str) -> str:
    return " ".join(e["text"] for e in events if e["type"] == "transcript.final" and e["speaker"] == speaker)


def harvard_call():
    """Debtor: 10 Harvard sentences on a real 8 kHz line; agent: 2 FLEURS English utterances."""
    ref_debtor = (HARVARD / "manifest.tsv").read_text().splitlines()[1].split("\t")[-1]
    fleurs = DATA / "fleurs-cuttledoc"
    agent, debtor = two_speaker_call(
        [("agent", fleurs / "fleurs-en-003.ogg"), ("debtor", HARVARD / "OSR_us_000_0034_8k.wav"),
         ("agent", fleurs / "fleurs-en-004.ogg")]
    )
    ref_agent = " ".join((fleurs / f"fleurs-en-00{i}.txt").read_text() for i in (3, 4))
    return agent, debtor, ref_agent, ref_debtor


def check_whole_call(events: list[dict], ref_agent: str, ref_debtor: str) -> float:
    """Assert the call's log is complete and in order, finals carry word timings; return the WER."""
    kinds = [e["type"] for e in events]
    assert kinds[0] == "call.started" and kinds[-2:] == ["call.ended", "qa.score"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    finals_ = [e for e in events if e["type"] == "transcript.final"]
    assert all(e["words"] and e["start"] <= e["words"][0]["start"] + 0.5 for e in finals_)
    return jiwer.wer(normalise(ref_agent + " " + ref_debtor),
                     normalise(finals(events, "agent") + " " + finals(events, "debtor")))


@pytest.mark.parametrize("protocol", ["twilio", "genesys", "plain"])
def test_english_call_transcribed_within_wer(english_service, protocol):
    agent, debtor, ref_agent, ref_debtor = harvard_call()
    events = stream_call(english_service, protocol, agent, debtor, f"en-{protocol}")
    wer = check_whole_call(events, ref_agent, ref_debtor)
    print(f"{protocol}: WER {wer:.3f}")
    assert wer <= 0.15
    debtor_finals = [e for e in events if e["type"] == "transcript.final" and e["speaker"] == "debtor"]
    # the debtor speaks only after the agent's first turn (about 6.8 s in)
    assert min(e["start"] for e in debtor_finals) > 6.0


def test_silence_yields_no_text(english_service):
    silence = np.zeros(SAMPLE_RATE * 8, dtype=np.float32)
    noise = (np.random.default_rng(0).standard_normal(SAMPLE_RATE * 8) * 0.003).astype(np.float32)
    events = stream_call(english_service, "twilio", silence, noise, "quiet")
    assert not [e for e in events if e["type"].startswith("transcript")]


def test_events_resume_from_sequence_number(english_service):
    agent, debtor, _ = fleurs_call("en", turns=2)
    events = stream_call(english_service, "plain", agent, debtor, "resume")
    tail: list[dict] = []
    asyncio.run(follow(english_service.url, "resume", tail.append, since=3))
    assert [e["seq"] for e in tail] == [e["seq"] for e in events[3:]]


def test_rest_lists_and_health(english_service):
    assert httpx.get(english_service.http + "/healthz").json()["status"] == "ok"
    assert httpx.get(english_service.http + "/calls").json() == []


def test_the_service_runs_numpy_on_one_blas_thread(english_service):
    """models/threads.py: a second OpenBLAS thread spins after each small matmul, taking the decoders' CPU."""
    from threadpoolctl import threadpool_info

    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]  # numpy's, scipy's
    assert blas and set(blas) == {1}


def test_ended_call_is_stored_scored_and_categorised(english_service):
    agent, debtor, _, _ = harvard_call()
    events = stream_call(english_service, "twilio", agent, debtor, "stored")
    qa = events[-1]
    assert qa["type"] == "qa.score" and qa["scorecard"] and qa["category"]
    detail = httpx.get(english_service.http + "/api/calls/stored").json()
    stored_text = " ".join(u["text"] for u in detail["utterances"])
    assert "gold ring" in stored_text.lower()
    assert len(detail["events"]) == len(events)


async def _send_and_close_code(url: str, messages: list[str | bytes]) -> tuple[int, str]:
    async with websockets.connect(url) as ws:
        try:
            for m in messages:
                await ws.send(m)
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("unreachable: the server never closed")


@pytest.mark.parametrize(
    "protocol, messages, code, reason",
    [
        ("plain", ["{not json"], 1007, "JSON"),
        ("plain", [b"\x00\x01"], 4400, "before"),
        ("plain", [json.dumps({"event": "start", "call_id": "x", "encoding": "opus", "sample_rate": 8000,
                               "channels": ["agent", "debtor"]})], 4415, "opus"),
        ("plain", [json.dumps({"event": "dance"})], 4400, "dance"),
        ("twilio", [json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
                    json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
                                "start": {"accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1",
                                          "tracks": ["inbound", "outbound"], "customParameters": {},
                                          "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 44100,
                                                          "channels": 1}}})], 4415, ""),
        ("plain", ["x" * (300 * 1024)], 1009, ""),
        ("nope", ["{}"], 1008, "unknown protocol"),
    ],
)
def test_bad_input_gets_specific_close_code(english_service, protocol, messages, code, reason):
    got_code, got_reason = asyncio.run(_send_and_close_code(f"{english_service.url}/ingest/{protocol}", messages))
    assert got_code == code
    assert reason.lower() in got_reason.lower()


def test_bad_connection_does_not_disturb_a_live_call(english_service):
    agent, debtor, _ = fleurs_call("en", turns=2)

    async def run() -> list[dict]:
        events: list[dict] = []
        call = asyncio.create_task(replay(english_service.url, "twilio", agent, debtor, SAMPLE_RATE,
                                          call_id="steady", speed=4))
        await asyncio.sleep(1.0)
        code, _ = await _send_and_close_code(f"{english_service.url}/ingest/plain", ["{broken"])
        assert code == 1007
        async with websockets.connect(f"{english_service.url}/ingest/plain") as ws:  # abrupt disconnect
            await ws.send(json.dumps({"event": "start", "call_id": "dropped", "encoding": "pcm16",
                                      "sample_rate": 16000, "channels": ["agent"]}))
        await call
        await follow(english_service.url, "steady", events.append)
        return events

    events = asyncio.run(run())
    assert events[-2]["type"] == "call.ended" and finals(events, "agent")
    partials = [e for e in events if e["type"] == "transcript.partial"]
    assert partials, "paced audio gets interim transcripts while the speaker talks"
    final_seq = {(e["speaker"], e["utterance"]): e["seq"] for e in events if e["type"] == "transcript.final"}
    assert all(p["seq"] < final_seq[(p["speaker"], p["utterance"])] for p in partials)
    dropped: list[dict] = []
    asyncio.run(follow(english_service.url, "dropped", dropped.append))
    ended = next(e for e in dropped if e["type"] == "call.ended")
    assert ended["reason"] == "disconnected"


def test_spanish_call_with_base_within_wer(tmp_path):
    settings = Settings(asr_model="base", language="es", cache_dir=tmp_path,
                        database_url=f"sqlite:///{tmp_path / 'recobra.db'}")
    fleurs = DATA / "fleurs-cuttledoc"
    turns = [("agent" if i % 2 == 0 else "debtor", fleurs / f"fleurs-es-{i:03d}.ogg") for i in (0, 2, 3, 5, 6)]
    agent, debtor = two_speaker_call(turns)
    refs = {s: " ".join(p.with_suffix(".txt").read_text() for sp, p in turns if sp == s) for s in ("agent", "debtor")}
    with RunningService(settings) as service:
        events = stream_call(service, "genesys", agent, debtor, "es-call", metadata={"language": "es"})
    wer = jiwer.wer(normalise(refs["agent"] + " " + refs["debtor"]),
                    normalise(finals(events, "agent") + " " + finals(events, "debtor")))
    print(f"spanish base WER {wer:.3f}")
    assert wer <= 0.30
    assert {e["language"] for e in events if e["type"] == "transcript.final"} == {"es"}


def _early_finals(service) -> dict[str, float]:
    """recobra_early_finals_total by outcome, from the service's /metrics."""
    found = {"used": 0.0, "dropped": 0.0}
    for line in httpx.get(service.http + "/metrics").text.splitlines():
        if line.startswith("recobra_early_finals_total{"):
            found[line.split('outcome="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    return found


def test_a_final_is_decoded_at_the_pause_before_the_vad_closes_the_utterance(english_service):
    """Streamed faster than real time, every utterance that ends in a pause is closed while its early final
    (decoded 0.2 s into the pause) is in hand: those finals are the early ones, none is decoded twice, and
    the transcript is as good as ever."""
    before = _early_finals(english_service)
    agent, debtor, ref_agent, ref_debtor = harvard_call()
    events = stream_call(english_service, "plain", agent, debtor, "early-finals")
    after = _early_finals(english_service)
    finals_ = [e for e in events if e["type"] == "transcript.final"]
    assert after["used"] - before["used"] >= len(finals_) - 2  # the call's end may close the last ones
    assert check_whole_call(events, ref_agent, ref_debtor) <= 0.15
