"""The contract between a call session and its live analysers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from assist.events import EventBase
from streaming.types import AudioFrame, Utterance


@dataclass
class CallContext:
    """What analysers know about a call beyond its audio: set at call start from its metadata.

    `metadata` holds the telephony custom parameters, e.g. jurisdiction, debtor_timezone,
    account facts (litigation_authorized, time_barred, last_payment...), agent id.
    """

    call_id: str
    language: str = "en"
    jurisdiction: str = "us"
    eu_mode: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    channel: str = "voice"
    """voice for a call; chat, whatsapp, sms or email for a written conversation."""

    @property
    def medium(self) -> str:
        """voice or text: what the rule packs' `channels` name."""
        return "voice" if self.channel == "voice" else "text"


class Analyser(Protocol):
    """One analysis of one call. Calls arrive in call-clock order; none may block for long."""

    def on_utterance(self, utt: Utterance) -> list[EventBase]:
        """A partial (utt.final False) or final utterance of either speaker."""
        ...

    def on_audio(self, frame: AudioFrame) -> list[EventBase]:
        """Raw 16 kHz audio of either speaker, in call-clock order per speaker."""
        ...

    def on_tick(self, t: float) -> list[EventBase]:
        """The call clock reached `t` seconds (deadlines, silences)."""
        ...
