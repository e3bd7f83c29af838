"""Spoken identity and card numbers through the real pipeline (TTS speech -> VAD -> whisper -> storage):
whatever way whisper writes them, the stored call keeps none of their digits."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from assist.democall import _interleave
from assist.replay import follow, replay
from assist.spoken_numbers import spoken_as_digits
from models.tts import load_voice
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.tenancy import ACME_KEY, bearer, tenant_settings, token

TURNS = [
    ("agent", "Before we set up the payment, can you confirm your social security number?"),
    ("debtor", "My social security number is one two three, four five, six seven eight nine."),
    ("agent", "Thank you. And the card you want to use?"),
    ("debtor", "The card number is four one one one, one one one one, one one one one, one one one one."),
    ("agent", "And the security code on the back?"),
    ("debtor", "The security code is seven three seven."),
]
SECRETS = ["6789", "1111", "737"]
"""Groups that must not survive in any form (digits or words)."""


@pytest.fixture(scope="module")
def stored_call(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("speech")
    voices = {"agent": load_voice("joe"), "debtor": load_voice("heart")}
    agent, debtor = _interleave([(speaker, voices[speaker](text)) for speaker, text in TURNS])
    with RunningService(tenant_settings(tmp)) as service:
        asyncio.run(replay(service.url, "plain", agent, debtor, SAMPLE_RATE, call_id="spoken-1", speed=0,
                           api_key=ACME_KEY))
        live: list[dict] = []
        asyncio.run(follow(service.url, "spoken-1", live.append, token=token("acme", "agent", "spoken-1")))
        detail = httpx.get(f"{service.http}/api/calls/spoken-1", headers=bearer("acme", "qa")).json()
    raw = "".join(p.read_bytes().decode("latin-1") for p in Path(tmp).glob("recobra.db*"))
    return live, detail, raw


def digits_in(text: str) -> str:
    rewritten = spoken_as_digits(text)
    return " ".join(re.findall(r"\d+", rewritten[0] if rewritten else text))


def test_spoken_numbers_are_redacted_in_storage(stored_call):
    live, detail, raw = stored_call
    said = " ".join(u["text"] for u in detail["utterances"])
    assert "[SSN]" in said and "[CARD]" in said and "[CVV]" in said, said
    for utterance in detail["utterances"]:
        for text in [utterance["text"], " ".join(w["text"] for w in utterance["words"])]:
            for secret in SECRETS:
                assert secret not in digits_in(text), (secret, text)
    # live events carry the transcript as whisper wrote it: none of its number forms reach the database
    written = {m.group() for e in live if e["type"].startswith("transcript.")
               for m in re.finditer(r"\d[\d ,.\-]{4,}\d", e["text"])}
    assert written, "whisper wrote the numbers in digits"
    for form in written:
        assert form not in raw, form
