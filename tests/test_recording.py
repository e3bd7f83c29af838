"""Recordings without the ASR: sealed files, silenced spans on real speech, crash, ranges, retention."""

from __future__ import annotations

import asyncio
import base64
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assist.api_recording import parse_range
from assist.democall import fleurs_call
from assist.privacy import Redactor
from assist.recording import CallRecording, RecordingPolicy, redacted_spans
from assist.recording_store import Recordings
from assist.sealed import SealedError, SealedReader, SealedWriter
from assist.settings import Settings
from assist.storage.db import Database
from assist.storage.tables import Recording
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker, Word

KEY = os.urandom(32)


def rms(x: np.ndarray) -> np.ndarray:
    return np.sqrt((x.astype(np.float64) ** 2).mean(axis=0))


def test_sealed_file_reads_by_range_and_refuses_a_wrong_key_or_tampering(tmp_path: Path) -> None:
    path = tmp_path / "a.rec"
    writer = SealedWriter(path, KEY, "call-1")
    parts = [os.urandom(n) for n in (100, 1, 5000)]
    for part in parts:
        writer.append(part)
    writer.close()
    plain = b"".join(parts)
    assert plain[:50] not in path.read_bytes()
    reader = SealedReader(path, KEY, "call-1")
    assert reader.complete and reader.size == len(plain)
    assert b"".join(reader.read()) == plain
    assert b"".join(reader.read(90, 2000)) == plain[90:2000]
    with pytest.raises(SealedError, match="cannot be decrypted"):
        SealedReader(path, os.urandom(32), "call-1")
    with pytest.raises(SealedError):
        SealedReader(path, KEY, "another-call")  # a file renamed to another call's does not read
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SealedError):
        b"".join(SealedReader(path, KEY, "call-1").read())


def test_a_file_cut_short_by_a_crash_reads_up_to_its_last_whole_record(tmp_path: Path) -> None:
    path = tmp_path / "b.rec"
    writer = SealedWriter(path, KEY, "c")
    writer.append(b"x" * 1000)
    writer.append(b"y" * 1000)
    path.write_bytes(path.read_bytes()[:-10])  # the second record was being written
    reader = SealedReader(path, KEY, "c")
    assert not reader.complete and b"".join(reader.read()) == b"x" * 1000


def test_parse_range() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=90-", 100) == (90, 100)
    assert parse_range("bytes=-10", 100) == (90, 100)
    assert parse_range("bytes=50-500", 100) == (50, 100)
    with pytest.raises(ValueError):
        parse_range("bytes=100-", 100)


def test_spans_come_from_the_transcript_redactor_with_a_margin() -> None:
    words = [Word(w, 1.0 + i * 0.4, 1.3 + i * 0.4) for i, w in enumerate(
        "my card is four one one one one one one one one one one one one one one one thanks".split())]
    (span,) = redacted_spans([("debtor", w) for w in words], Redactor(), 0.3)
    assert span.kind == "card" and span.start == pytest.approx(2.2 - 0.3) and span.end == pytest.approx(8.5 + 0.3)
    dni = [Word(w, i * 0.5, i * 0.5 + 0.4) for i, w in enumerate(
        "mi DNI es uno dos tres cuatro cinco seis siete ocho zeta".split())]
    assert [s.kind for s in redacted_spans([("debtor", w) for w in dni], Redactor(), 0.3)] == ["dni"]


@pytest.mark.parametrize(("said", "kinds"), [
    ("it expires zero four twenty seven and the code on the back is seven three seven", ["expiry", "cvv"]),
    ("vence en abril de dos mil veintisiete y el código de seguridad es uno dos tres", ["expiry", "cvv"]),
    ("la tarjeta empieza por cuatro uno uno uno uno uno uno uno", ["card"]),
    ("I pay one hundred twenty three dollars on the fourth of April", []),
])
def test_expiry_security_code_and_half_card_are_silenced(said: str, kinds: list[str]) -> None:
    words = [Word(w, i * 0.5, i * 0.5 + 0.4) for i, w in enumerate(said.split())]
    spans = redacted_spans([("debtor", w) for w in words], Redactor(), 0.1)
    assert [s.kind for s in spans] == kinds
    for span in spans:  # only the number's words are silent, not its cue
        inside = [w.text for w in words if span.start < w.start and w.end < span.end]
        assert inside and all(t not in ("expires", "vence", "back", "seguridad", "tarjeta") for t in inside)


def test_a_number_is_read_with_the_finals_just_before_it(tmp_path: Path) -> None:
    """Half a card per breath, and a security code whose cue was in the agent's question."""
    recording = _recording(tmp_path / "e.rec", [])

    def final(speaker: Speaker, text: str, at: float) -> None:
        recording.words(speaker, [Word(w, at + i * 0.4, at + i * 0.4 + 0.3) for i, w in enumerate(text.split())])

    final(Speaker.DEBTOR, "it is four one one one one one one one", 10.0)
    final(Speaker.DEBTOR, "one one one one one one one one", 14.0)
    final(Speaker.AGENT, "and the security code on the back", 20.0)
    final(Speaker.DEBTOR, "seven three seven", 23.5)
    final(Speaker.DEBTOR, "seven three seven", 40.0)  # no cue near it: an ordinary number
    assert [(s.kind, s.speaker) for s in recording.spans] == [("card", "debtor"), ("cvv", "debtor")]
    card, cvv = recording.spans
    assert card.start == pytest.approx(10.8 - 0.3) and card.end == pytest.approx(14.0 + 7 * 0.4 + 0.3 + 0.3)
    assert cvv.start == pytest.approx(23.5 - 0.3) and cvv.end == pytest.approx(23.5 + 0.8 + 0.3 + 0.3)


async def _stream(recording: CallRecording, agent: np.ndarray, debtor: np.ndarray, words: list[Word],
                  words_at: float, close: bool = True) -> None:
    step = 320
    for i in range(0, len(agent), step):
        t = i / SAMPLE_RATE
        await recording.audio(AudioFrame(Speaker.AGENT, t, agent[i:i + step]))
        await recording.audio(AudioFrame(Speaker.DEBTOR, t, debtor[i:i + step]))
        if words and t >= words_at:  # the final arrives a few seconds after its speech
            recording.words(Speaker.DEBTOR, words)
            words = []
    if close:
        await recording.close()


def _recording(path: Path, rows: list) -> CallRecording:
    return CallRecording("call-1", path, KEY, Redactor(), RecordingPolicy(hold_s=3.0),
                         lambda *change: rows.append(change))


def test_real_speech_is_recorded_in_stereo_with_the_spoken_number_silenced(tmp_path: Path) -> None:
    agent, debtor, _ = fleurs_call("en", 4)
    talk = np.flatnonzero(np.abs(debtor) > 0.05)
    t0 = talk[0] / SAMPLE_RATE + 0.5  # a card number "said" inside the debtor's real speech
    words = [Word("card", t0 - 0.4, t0 - 0.1), *(Word("4111", t0 + i * 0.4, t0 + i * 0.4 + 0.3) for i in range(4))]
    rows: list = []
    path = tmp_path / "c.rec"
    asyncio.run(_stream(_recording(path, rows), agent, debtor, words, words_at=t0 + 3.0))
    audio, rate = sf.read(io.BytesIO(b"".join(SealedReader(path, KEY, "call-1").read())))
    assert rate == SAMPLE_RATE and audio.shape[1] == 2 and abs(len(audio) - len(agent)) < SAMPLE_RATE // 10
    status, _, spans = rows[-1]
    assert status == "complete" and [(s["kind"], s["speaker"]) for s in spans] == [("card", "debtor")]
    a, b = int(spans[0]["start"] * SAMPLE_RATE), int(spans[0]["end"] * SAMPLE_RATE)
    assert (rms(debtor[a:b]) > 0.02) and (rms(audio[a:b]) < 0.002).all()
    outside = np.ones(len(audio), bool)
    outside[a:b] = False
    source = np.stack([agent, debtor], axis=1)[: len(audio)]
    assert np.allclose(rms(audio[outside]), rms(source[outside]), rtol=0.2), "both channels kept outside the span"
    assert b"OggS" not in path.read_bytes()


def test_a_crash_keeps_what_was_written(tmp_path: Path) -> None:
    agent, debtor, _ = fleurs_call("en", 2)
    path = tmp_path / "d.rec"
    asyncio.run(_stream(_recording(path, []), agent, debtor, [], 0.0, close=False))  # never closed
    reader = SealedReader(path, KEY, "call-1")
    audio, _ = sf.read(io.BytesIO(b"".join(reader.read())))
    assert not reader.complete and len(audio) > len(agent) - 5 * SAMPLE_RATE


def test_purge_deletes_recordings_past_retention(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}", recordings_dir=tmp_path / "rec",
                        recording_retention_days=30)
    db = Database(settings.storage.database_url)
    store = Recordings(settings, db)
    recording = store.open("old-call", {})
    assert recording is not None and store.open("off-call", {"record": "false"}) is None
    agent, debtor, _ = fleurs_call("en", 2)
    asyncio.run(_stream(recording, agent, debtor, [], 0.0))
    assert recording.path.exists()
    assert store.purge(datetime.now(UTC) + timedelta(days=29)) == []
    assert store.purge(datetime.now(UTC) + timedelta(days=31)) == ["old-call"]
    with db.session() as s:
        assert s.get_one(Recording, "old-call").status == "purged"
    assert not recording.path.exists()
    db.close()


def test_gaps_are_silence_and_a_channel_that_sends_nothing_does_not_hold_the_other(tmp_path: Path) -> None:
    agent, _, _ = fleurs_call("en", 2)
    path = tmp_path / "g.rec"
    rows: list = []
    recording = CallRecording("call-1", path, KEY, Redactor(), RecordingPolicy(hold_s=3.0, max_held_s=10.0),
                              lambda *change: rows.append(change))

    async def run() -> int:
        step, written = 320, 0
        for offset in (0.0, 600.0):  # the media clock jumps ten minutes ahead
            for i in range(0, 20 * SAMPLE_RATE, step):
                await recording.audio(AudioFrame(Speaker.AGENT, offset + i / SAMPLE_RATE, agent[i:i + step]))
            written = max(written, recording._written)
        await recording.close()
        return written

    written_before_close = asyncio.run(run())
    assert written_before_close > 600 * SAMPLE_RATE, "the agent's audio is written though the debtor sent none"
    audio, _ = sf.read(io.BytesIO(b"".join(SealedReader(path, KEY, "call-1").read())))
    assert len(audio) == pytest.approx(620 * SAMPLE_RATE, abs=SAMPLE_RATE // 10)
    assert rms(audio[30 * SAMPLE_RATE:590 * SAMPLE_RATE]).max() < 1e-3 and rms(audio[:20 * SAMPLE_RATE])[0] > 1e-3
    assert rows[-1][:2] == ("complete", pytest.approx(620.0, abs=0.1))


def test_a_lagging_channel_written_to_bound_memory_loses_its_unsettled_audio_never_leaks_it(tmp_path: Path) -> None:
    agent, debtor, _ = fleurs_call("en", 4)
    speech = np.full(len(agent), 0.1, np.float32)  # the debtor talks all along, but its transcription lags
    path = tmp_path / "l.rec"
    recording = CallRecording("call-1", path, KEY, Redactor(), RecordingPolicy(hold_s=3.0, max_held_s=10.0),
                              lambda *change: None)

    async def run() -> None:
        step = 320
        for i in range(0, 6 * SAMPLE_RATE, step):
            await recording.audio(AudioFrame(Speaker.DEBTOR, i / SAMPLE_RATE, speech[i:i + step]))
        for i in range(0, 30 * SAMPLE_RATE, step):
            await recording.audio(AudioFrame(Speaker.AGENT, i / SAMPLE_RATE, agent[i:i + step]))
        await recording.close()

    asyncio.run(run())
    audio, _ = sf.read(io.BytesIO(b"".join(SealedReader(path, KEY, "call-1").read())))
    second = SAMPLE_RATE
    assert rms(audio[: 2 * second, 1]) > 0.05, "settled debtor audio (older than the hold) is kept"
    assert rms(audio[3 * second + 1000: 6 * second, 1]) < 1e-3, "unsettled debtor audio is dropped, not written"


def test_recording_is_off_per_tenant_per_call_or_without_a_key(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    tenants = [{"id": "on", "recording_key": key}, {"id": "off", "recording_key": key, "record_calls": False},
               {"id": "keyless"}]
    settings = Settings(database_url=f"sqlite:///{tmp_path / 't.db'}", tenants=tenants, token_secret="s" * 32)
    db = Database(settings.storage.database_url)
    store = Recordings(settings, db)
    assert store.open("a", {"tenant": "on"}) is not None
    assert store.open("b", {"tenant": "on", "record": False}) is None
    assert store.open("c", {"tenant": "off"}) is None and store.open("d", {"tenant": "keyless"}) is None
    assert Recordings(settings.model_copy(update={"record_calls": False}), db).open("e", {"tenant": "on"}) is None
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(tenants=[{"id": "x", "recording_key": base64.b64encode(b"short").decode()}], token_secret="s" * 32)
    db.close()
