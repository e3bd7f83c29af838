"""Written conversations (chat, WhatsApp, SMS, e-mail) through a call's analysers, event log, storage and QA.

A message is a final utterance on the conversation clock: each one starts `GAP_S` after the previous one
and lasts its words at `conversation_seconds_per_word`, so must-say deadlines count what was written as they
count what was said. The agent's first message is the opening: the deadlines that run from the start fall at
its end (the collector's identity and the disclosures belong in it); at the close every deadline has passed.
Contact hours are checked at each agent message's own time in the debtor's timezone.
"""

from __future__ import annotations

import asyncio
import copy
from collections import OrderedDict
from datetime import datetime
from typing import Any

import structlog

from assist.analysis.account_facts import AccountFactsAnalyser
from assist.analysis.base import Analyser, CallContext
from assist.analysis.compliance import ComplianceAnalyser
from assist.event_session import EventSession
from assist.events import ComplianceWarning, EventBase, PromptCard, TranscriptFinal
from assist.hub import EventHub
from assist.metrics import Metrics
from assist.settings import Settings
from assist.storage.recorder import Recorder
from models.words import Word
from streaming.types import Speaker, Utterance

log = structlog.get_logger(__name__)
TEXT_CHANNELS = ("chat", "whatsapp", "sms", "email")
GAP_S = 1.0
"""Conversation-clock seconds between two messages."""
PAST_EVERY_DEADLINE_S = 300.0
"""Conversation-clock seconds past every deadline of the packs (the longest is 30 s)."""
SHARED = frozenset({"ctx", "pack", "embedder", "_heads", "rules", "_by_type", "book", "path"})
"""Analyser attributes a draft's fork shares with the live analyser (read-only: rules, models, context)."""
KEEP_CLOSED = 1000
"""Closed conversations whose message answers are kept for retries."""


class ConversationClosed(Exception):
    """The conversation has ended: it takes no more messages."""


class MessageIdReused(Exception):
    """A message id came again with another sender or text."""


def _words(text: str, start: float, seconds_per_word: float) -> tuple[Word, ...]:
    parts = text.split()
    return tuple(Word(w, start + i * seconds_per_word, start + (i + 1) * seconds_per_word)
                 for i, w in enumerate(parts))


def fork(analyser: Analyser) -> Analyser:
    """A copy of `analyser` whose state can change without touching the original (rules and models shared)."""
    memo = {id(v): v for k, v in vars(analyser).items() if k in SHARED}
    return copy.deepcopy(analyser, memo)


class ConversationSession(EventSession):
    """One written conversation: messages in with `message`, the same events, storage and QA as a call."""

    def __init__(self, ctx: CallContext, hub: EventHub, settings: Settings, analysers: list[Analyser],
                 recorder: Recorder | None = None, metrics: Metrics | None = None) -> None:
        super().__init__(ctx, ctx.channel, hub, settings, analysers, recorder, metrics, channel=ctx.channel)
        self.answers: dict[str, dict[str, Any]] = {}
        """message id -> (sender, text) and the answer it got: a retry gets the same answer."""
        self._sent: dict[Speaker, int] = dict.fromkeys(Speaker, 0)
        self._lock = asyncio.Lock()
        self.closed = False
        self._open()

    @property
    def lag(self) -> float:
        """No audio waits behind a written conversation."""
        return 0.0

    @property
    def _compliance(self) -> ComplianceAnalyser | None:
        return next((a for a in self.analysers if isinstance(a, ComplianceAnalyser)), None)

    def _utterance(self, sender: Speaker, text: str) -> Utterance:
        start = self.clock + GAP_S if self.clock else 0.0
        words = _words(text, start, self.settings.conversations.conversation_seconds_per_word)
        end = words[-1].end if words else start + GAP_S
        return Utterance(sender, self._sent[sender] + 1, start, end, text, words, self.ctx.language, final=True)

    async def message(self, sender: Speaker, text: str, sent_at: datetime, message_id: str | None) -> dict[str, Any]:
        """Log, analyse and store one message; the events it raised (the same answer again for a repeated id)."""
        async with self._lock:
            if message_id is not None and (known := self.answers.get(message_id)) is not None:
                if known["key"] != (sender.value, text):
                    raise MessageIdReused(message_id)
                return known["answer"]
            if self.closed:
                raise ConversationClosed(self.call_id)
            await self._room()
            utt = self._utterance(sender, text)
            self._sent[sender] += 1
            self.clock = utt.end
            final = self.emit(TranscriptFinal.from_utterance(self.call_id, utt))
            first_reply = sender is Speaker.AGENT and self._sent[sender] == 1
            raised = await self._analyse_and_emit([utt], utt.end)
            if first_reply and (compliance := self._compliance) is not None:
                raised += [self.emit(e) for e in compliance.on_tick(utt.end + PAST_EVERY_DEADLINE_S)]
            if sender is Speaker.AGENT and (compliance := self._compliance) is not None:
                raised += [self.emit(e) for e in compliance.message_sent(sent_at, utt.end)]
            answer = {"conversation_id": self.call_id, "message_id": message_id, "seq": final.seq,
                      "events": [e.model_dump(mode="json") for e in (final, *raised)]}
            if message_id is not None:
                self.answers[message_id] = {"key": (sender.value, text), "answer": answer}
            log.info("conversation.message", call_id=self.call_id, sender=sender.value, seq=final.seq,
                     raised=len(raised))
            return answer

    async def draft(self, text: str, now: datetime) -> dict[str, Any]:
        """The warnings the agent's unsent `text` would raise and the cards standing for the debtor's last
        message; nothing is logged or stored and the conversation's analysers are left as they were."""
        async with self._lock:
            forks = [fork(a) for a in self.analysers if isinstance(a, ComplianceAnalyser | AccountFactsAnalyser)]
            utt = self._utterance(Speaker.AGENT, text)
            first = self._sent[Speaker.AGENT] == 0
            events = self.hub.calls[self.call_id].events
        warnings = await asyncio.to_thread(_draft_warnings, forks, utt, first, now)
        last_agent = max((e.seq for e in events if isinstance(e, TranscriptFinal) and e.speaker is Speaker.AGENT),
                         default=0)
        cards = [e for e in events if isinstance(e, PromptCard) and e.seq > last_agent]
        return {"conversation_id": self.call_id, "warnings": [w.model_dump(mode="json") for w in warnings],
                "suggestions": [c.model_dump(mode="json") for c in cards]}

    async def end(self, reason: str = "closed") -> EventBase:
        """Close the conversation: no more messages; stored, scored and categorised like a call."""
        async with self._lock:
            self.closed = True
            await self._analyse_and_emit([], self.clock + PAST_EVERY_DEADLINE_S)  # what was never written
        return await self._finish(reason)


def _draft_warnings(forks: list[Analyser], utt: Utterance, first: bool, now: datetime) -> list[EventBase]:
    out: list[EventBase] = []
    for analyser in forks:
        out += analyser.on_utterance(utt)
        if isinstance(analyser, ComplianceAnalyser):
            if first:
                out += analyser.on_tick(utt.end + PAST_EVERY_DEADLINE_S)
            out += analyser.message_sent(now, utt.end)
    return [e for e in out if isinstance(e, ComplianceWarning) and e.status != "retracted"]


class ClosedAnswers:
    """Message answers of recently closed conversations, so a retry after the close still gets its answer."""

    def __init__(self, keep: int = KEEP_CLOSED) -> None:
        self._answers: OrderedDict[str, dict[str, dict[str, Any]]] = OrderedDict()
        self.keep = keep

    def closed(self, session: ConversationSession) -> None:
        self._answers[session.call_id] = session.answers
        while len(self._answers) > self.keep:
            self._answers.popitem(last=False)

    def answer(self, call_id: str, message_id: str | None, sender: Speaker, text: str) -> dict[str, Any] | None:
        known = self._answers.get(call_id, {}).get(message_id or "")
        if known is None:
            return None
        if known["key"] != (sender.value, text):
            raise MessageIdReused(message_id)
        return known["answer"]
