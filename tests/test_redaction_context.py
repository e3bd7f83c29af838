"""A final is redacted after what was said just before it (either speaker, 5 s): a number whose cue was in
the question, or said in two breaths, is redacted in the stored transcript as in the recording."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from assist.events import CallEnded, CallStarted, TranscriptFinal, WordOut
from assist.privacy import Redactor
from assist.storage import repository as repo
from assist.storage.recorder import Recorder
from streaming.types import Speaker


@pytest.mark.parametrize(("before", "said", "expected"), [
    ("and the security code on the back?", "seven three seven", "[CVV]"),
    ("¿y el código de seguridad?", "siete tres siete", "[CVV]"),
    ("what's the expiration date?", "zero four twenty seven", "[EXPIRY]"),
    ("¿la fecha de vencimiento?", "abril de dos mil veintisiete", "[EXPIRY]"),
    ("my card is four one one one, one one one one,", "one one one one, one one one one", "[CARD]"),
    ("the security code?", "give me one minute", "give me one minute"),
    ("what's the card number?", "I can pay 150 dollars", "I can pay 150 dollars"),
    ("¿el número de la tarjeta?", "le pago el 27 de abril", "le pago el 27 de abril"),
])
def test_a_cue_in_the_question_redacts_the_answer(before: str, said: str, expected: str) -> None:
    assert Redactor().text(said, context=before) == expected
    assert Redactor().text(before, context="") == Redactor().text(before)  # the context is never returned


def final(call_id: str, seq: int, speaker: Speaker, utterance: int, start: float, text: str) -> TranscriptFinal:
    words = [WordOut(text=w, start=start + i * 0.4, end=start + i * 0.4 + 0.3, probability=0.9)
             for i, w in enumerate(text.split())]
    return TranscriptFinal(call_id=call_id, seq=seq, t=words[-1].end, speaker=speaker, utterance=utterance, start=start,
                           end=words[-1].end, text=text, words=words, language="en")


def test_stored_finals_are_redacted_after_the_finals_just_before_them(tmp_path: Path) -> None:
    async def run() -> list[dict]:
        recorder = Recorder(f"sqlite:///{tmp_path / 'r.db'}")
        await recorder.start()
        await recorder.call_started(CallStarted(call_id="c", seq=1, protocol="plain"))
        for event in [
            final("c", 2, Speaker.AGENT, 1, 1.0, "and the code on the back of the card?"),
            final("c", 3, Speaker.DEBTOR, 1, 4.5, "seven three seven"),
            final("c", 4, Speaker.AGENT, 2, 20.0, "how much can you pay?"),
            final("c", 5, Speaker.DEBTOR, 2, 30.0, "one two three"),  # no cue in the 5 s before it
        ]:
            await recorder.record(event)
        await recorder.call_ended(CallEnded(call_id="c", seq=6, reason="hangup", duration=40.0))
        with recorder.db.session() as s:
            stored = repo.event_payloads(s, "c") or []
        await recorder.close()
        return [e for e in stored if e["type"] == "transcript.final"]

    finals = asyncio.run(run())
    assert [e["text"] for e in finals] == ["and the code on the back of the card?", "[CVV]", "how much can you pay?",
                                           "one two three"]
    assert [w["text"] for w in finals[1]["words"]] == ["[CVV]"] * 3
