"""Typed events pushed on `/calls/{call_id}/events` (pydantic on the wire only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from streaming.types import Speaker, Utterance


def _now() -> datetime:
    return datetime.now(UTC)


class EventBase(BaseModel):
    """Fields every event carries; `seq` is assigned by the call's event log (1, 2, 3...)."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    seq: int = 0
    t: float = Field(0.0, description="Seconds since call start on the call's audio clock.")
    at: datetime = Field(default_factory=_now, description="Wall-clock time the event was made.")


class WordOut(BaseModel):
    text: str
    start: float
    end: float
    probability: float


class TranscriptBase(EventBase):
    speaker: Speaker
    utterance: int = Field(description="Per-speaker utterance number; partials share it with their final.")
    start: float
    end: float
    text: str
    words: list[WordOut] = []
    language: str

    @classmethod
    def from_utterance(cls, call_id: str, utt: Utterance) -> TranscriptBase:
        return cls(
            call_id=call_id,
            t=utt.end,
            speaker=utt.speaker,
            utterance=utt.seq,
            start=utt.start,
            end=utt.end,
            text=utt.text,
            words=[WordOut(text=w.text, start=w.start, end=w.end, probability=w.probability) for w in utt.words],
            language=utt.language,
        )


class TranscriptPartial(TranscriptBase):
    type: Literal["transcript.partial"] = "transcript.partial"
    stable_text: str = Field("", description="Prefix committed by agreement; it will not change.")


class TranscriptFinal(TranscriptBase):
    type: Literal["transcript.final"] = "transcript.final"


class CallStarted(EventBase):
    type: Literal["call.started"] = "call.started"
    protocol: str
    channel: str = Field("voice", description="voice for calls; chat, whatsapp, sms or email for a conversation.")
    metadata: dict[str, Any] = {}


class CallEnded(EventBase):
    type: Literal["call.ended"] = "call.ended"
    reason: str
    duration: float
    summary: dict[str, Any] = {}


class CallLanguageSet(EventBase):
    """The call's language was detected from its speech, or changed after a stretch in another language."""

    type: Literal["call.language"] = "call.language"
    language: str
    probability: float
    reason: Literal["detected", "switched"]


class CallError(EventBase):
    type: Literal["call.error"] = "call.error"
    message: str


class Evidence(BaseModel):
    """A quote from the transcript that justifies a warning, prompt or score item."""

    speaker: Speaker
    quote: str
    start: float
    end: float


class ComplianceWarning(EventBase):
    type: Literal["compliance.warning"] = "compliance.warning"
    rule_id: str
    severity: Literal["info", "warning", "critical"]
    title: str
    citation: str
    jurisdiction: str
    speaker: Speaker | None = None
    evidence: Evidence | None = None
    status: Literal["provisional", "confirmed", "retracted"] = "confirmed"


class PromptCard(EventBase):
    type: Literal["prompt"] = "prompt"
    card_id: str
    title: str
    language: str
    say: list[str]
    avoid: list[str] = []
    evidence: Evidence | None = None


class SentimentScore(EventBase):
    type: Literal["sentiment"] = "sentiment"
    speaker: Speaker
    utterance: int
    label: Literal["negative", "neutral", "positive"]
    score: float = Field(description="-1 (negative) .. +1 (positive).")
    probabilities: dict[str, float] = {}


class StressLevel(EventBase):
    type: Literal["stress"] = "stress"
    speaker: Speaker = Speaker.DEBTOR
    level: float = Field(description="0..100 against the speaker's own baseline in this call.")
    trend: float = Field(description="Change per minute of level; > 0 rising.")
    features: dict[str, float] = {}


class Reason(BaseModel):
    """One reason behind a signal: a stable code, its numbers, and its text in each language the pages speak."""

    code: str
    params: dict[str, Any] = {}
    text: dict[str, str] = Field(description="Language code -> rendered text.")


class NegotiationStyle(EventBase):
    type: Literal["style"] = "style"
    index: float = Field(description="-1 too passive .. +1 too aggressive.")
    band: Literal["too_passive", "balanced", "too_aggressive"]
    reasons: list[str] = Field([], description="The reasons' text in the call's language.")
    reason_details: list[Reason] = []
    components: dict[str, float] = {}


class AbandonRisk(EventBase):
    type: Literal["abandon_risk"] = "abandon_risk"
    risk: float = Field(description="0..1 for the last ~5 s window.")
    alert: bool = Field(description="True when the risk has just crossed the alert threshold.")
    reasons: list[str] = Field([], description="The reasons' text in the call's language.")
    reason_details: list[Reason] = []


class AccountUpdated(EventBase):
    """The creditor's facts about the account arrived or changed (PUT/PATCH /calls/{id}/account)."""

    type: Literal["account.updated"] = "account.updated"
    facts: dict[str, Any] = Field(description="The account facts now in force (assist/api_account.py AccountFacts).")
    changed: list[str] = Field([], description="Top-level fields that differ from the previous facts.")
    changes: list[Reason] = Field([], description="What changed, in words, for the agent.")
    cards: list[str] | None = Field(None, description=(
        "The prompt cards (card_id) these facts call for: a card shown for earlier facts and not listed here "
        "no longer applies (empty when the facts are withdrawn); null in logs written before this field."))


class QaScore(EventBase):
    type: Literal["qa.score"] = "qa.score"
    scorecard: dict[str, Any]
    category: dict[str, Any]


Event = Annotated[
    TranscriptPartial
    | TranscriptFinal
    | CallStarted
    | CallEnded
    | CallLanguageSet
    | CallError
    | ComplianceWarning
    | PromptCard
    | SentimentScore
    | StressLevel
    | NegotiationStyle
    | AbandonRisk
    | AccountUpdated
    | QaScore,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
