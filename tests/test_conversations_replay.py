"""The scripted compliance calls (tests/data/compliance_calls, English and Spanish) replayed as written
conversations give the rules their spoken transcripts give, less the voice-only ones; text rules know
their channel; drafts leave the conversation as it was."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from assist.analysis.base import CallContext
from assist.analysis.compliance import ComplianceAnalyser
from assist.analysis.pipeline import build_analysers
from assist.analysis.rulepacks import load_rule_pack
from assist.conversations import ConversationSession
from assist.events import ComplianceWarning
from assist.hub import EventHub
from assist.settings import Settings
from models.embedding_worker import shared_embedder
from streaming.types import Speaker
from tests.test_compliance import CALLS, ScriptedCall, replay, standing

SETTINGS = Settings()
DAYTIME = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)


def voice_only(jurisdiction: str) -> set[str]:
    return {r.id for r in load_rule_pack(jurisdiction).rules if r.channels == ["voice"]}


async def as_chat(call: ScriptedCall, channel: str = "chat") -> list[ComplianceWarning]:
    """The call's final lines posted as messages of one conversation (its partials are never sent), closed:
    the conversation's compliance warnings."""
    ctx = CallContext(f"chat-{call.name}", call.ctx.language, call.ctx.jurisdiction, metadata=dict(call.ctx.metadata),
                      channel=channel)
    session = ConversationSession(ctx, EventHub(), SETTINGS, build_analysers(ctx, shared_embedder()))
    started = ctx.metadata.get("started_at")
    sent_at = datetime.fromisoformat(started) if started else DAYTIME  # written when the call was made
    for speaker, _start, _end, text, *_ in call.script:
        await session.message(Speaker(speaker), text, sent_at, None)
    await session.end()
    return [e for e in session.hub.calls[ctx.call_id].events if isinstance(e, ComplianceWarning)]


@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
def test_scripted_call_as_chat_gives_the_spoken_rules(call: ScriptedCall) -> None:
    spoken = standing(replay(call, ComplianceAnalyser(call.ctx)))

    async def run() -> set[str]:
        return standing(await as_chat(call))

    assert asyncio.run(run()) == spoken - voice_only(call.ctx.jurisdiction)


def test_channels_are_data_in_the_packs() -> None:
    for jurisdiction in ("us", "es", "mx", "co", "pe"):
        assert f"{jurisdiction.upper()}-REC-01" in voice_only(jurisdiction)
    california = {"debtor_state": "CA"}  # all-party consent: the recording notice applies to a call
    text = CallContext("c", "en", "us", metadata=california, channel="sms")
    assert "US-REC-01" not in ComplianceAnalyser(text, semantic=False).rules
    assert "US-REC-01" in ComplianceAnalyser(CallContext("c", "en", "us", metadata=california), semantic=False).rules
    kinds = {type(a).__name__ for a in build_analysers(text, shared_embedder())}
    assert not kinds & {"StressAnalyser", "StyleAnalyser", "AbandonAnalyser"}


@pytest.mark.parametrize("language, threat, rule", [
    ("en", "If you don't pay today we will take you to court and garnish your wages.", "US-THR-02"),
    ("es", "Si no paga, mañana le embargamos la nómina.", "ES-CRIM-02"),
])
def test_a_draft_warns_and_changes_nothing(language: str, threat: str, rule: str) -> None:
    jurisdiction = "us" if language == "en" else "es"

    async def run() -> None:
        ctx = CallContext(f"draft-{language}", language, jurisdiction, metadata={"identity_verified": True},
                          channel="whatsapp")
        session = ConversationSession(ctx, EventHub(), SETTINGS, build_analysers(ctx, shared_embedder()))
        before = len(session.hub.calls[ctx.call_id].events)
        draft = await session.draft(threat, DAYTIME)
        assert rule in {w["rule_id"] for w in draft["warnings"]}
        assert len(session.hub.calls[ctx.call_id].events) == before
        sent = await session.message(Speaker.AGENT, threat, DAYTIME, "m1")
        assert rule in {e.get("rule_id") for e in sent["events"]}
        await session.end()

    asyncio.run(run())


def test_contact_hours_use_each_message_time_in_the_debtor_timezone() -> None:
    async def run() -> list[str]:
        ctx = CallContext("late", "en", "us", metadata={"debtor_timezone": "America/Chicago",
                                                        "identity_verified": True}, channel="sms")
        session = ConversationSession(ctx, EventHub(), SETTINGS, build_analysers(ctx, shared_embedder()))
        late = datetime(2025, 3, 5, 4, 30, tzinfo=UTC)  # 22:30 in Chicago
        ok = await session.message(Speaker.AGENT, "Hello, this is Mike from Apex Recovery.", DAYTIME, None)
        assert "US-TIME-01" not in {e.get("rule_id") for e in ok["events"]}
        answer = await session.message(Speaker.AGENT, "Please call us back about your account.", late, None)
        await session.end()
        return [e.get("rule_id") for e in answer["events"]]

    assert "US-TIME-01" in asyncio.run(run())
