"""Supervisor dashboard: live per-call summaries and per-agent wellbeing exposure, built from hub events.

`Dashboard.on_event` is an `EventHub` listener (every event of every call). Supervisors follow it on
`WS /calls/live`: a snapshot, then coalesced `call.update` / `call.removed` / `agent.update` messages.
Agent metrics are exposure facts (hard or abusive calls, handle time, calls without a break), never an
inference of the agent's emotions (EU AI Act Art. 5(1)(f)); thresholds live in rules/wellbeing.yaml.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.websockets import WebSocket, WebSocketDisconnect

from assist.analysis.text import PhraseBook, normalise
from assist.events import (
    AbandonRisk,
    CallEnded,
    CallStarted,
    ComplianceWarning,
    EventBase,
    NegotiationStyle,
    SentimentScore,
    StressLevel,
    TranscriptFinal,
    TranscriptPartial,
)
from streaming.types import Speaker

UNKNOWN_AGENT = "unassigned"
DETACHED_KEPT = 1000  # calls hidden because their front end went away, kept in case it comes back
Visible = Callable[[str | None], bool]
"""Whether a supervisor may see calls of a tenant (None: development mode, no tenants)."""


def everyone(tenant: str | None) -> bool:
    return True


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HardCall(_Strict):
    debtor_stress_at_least: float = Field(ge=0, le=100)
    debtor_sentiment_at_most: float = Field(ge=-1, le=1)
    abandon_alert: bool
    abusive: bool


class AbusiveCall(_Strict):
    min_utterances: int = Field(ge=1)
    phrases: dict[str, list[str]]


class Attention(_Strict):
    consecutive_hard_calls: int = Field(ge=1)
    abusive_calls: int = Field(ge=1)
    calls_without_break: int = Field(ge=1)
    long_calls: int = Field(ge=1)


class WellbeingRules(_Strict):
    """rules/wellbeing.yaml, validated."""

    version: int
    hard_call: HardCall
    abusive_call: AbusiveCall
    long_call_s: float = Field(gt=0)
    break_gap_s: float = Field(ge=0)
    attention: Attention
    stress_points: int = Field(ge=2)
    high_abandon_risk: float = Field(ge=0, le=1)

    @classmethod
    def load(cls) -> WellbeingRules:
        """The packaged wellbeing.yaml (the service hands the Dashboard its RuleSet's `wellbeing`)."""
        from assist.ruleset import packaged_rules

        return packaged_rules().wellbeing


@dataclass
class CallSummary:
    """What the supervisor sees of one call; debtor-side signals only."""

    call_id: str
    tenant: str | None
    agent_id: str
    agent: str
    protocol: str
    started_at: datetime
    language: str | None
    jurisdiction: str | None
    t: float = 0.0
    stress: deque[tuple[float, float]] = field(default_factory=deque)
    stress_trend: float | None = None
    peak_stress: float | None = None
    sentiment: float | None = None
    lowest_sentiment: float | None = None
    style_band: str | None = None
    style_index: float | None = None
    warnings: dict[tuple[str, float | None], ComplianceWarning] = field(default_factory=dict)
    """The latest status of each warning, by rule and evidence start."""
    abandon_risk: float | None = None
    abandon_alert: bool = False
    abusive_utterances: int = 0

    def open_critical(self) -> list[ComplianceWarning]:
        """Critical warnings not retracted (provisional ones included while live), one per rule."""
        by_rule = {w.rule_id: w for w in self.warnings.values() if w.severity == "critical" and w.status != "retracted"}
        return list(by_rule.values())

    def abusive(self, rules: WellbeingRules) -> bool:
        return self.abusive_utterances >= rules.abusive_call.min_utterances

    def hard_reasons(self, rules: WellbeingRules) -> list[str]:
        """Why this call is hard for the agent so far (empty: it is not)."""
        hard = rules.hard_call
        reasons = []
        if self.peak_stress is not None and self.peak_stress >= hard.debtor_stress_at_least:
            reasons.append(f"debtor stress peaked at {self.peak_stress:.0f}")
        if self.lowest_sentiment is not None and self.lowest_sentiment <= hard.debtor_sentiment_at_most:
            reasons.append(f"debtor sentiment fell to {self.lowest_sentiment:+.2f}")
        if hard.abandon_alert and self.abandon_alert:
            reasons.append("hang-up risk alert")
        if hard.abusive and self.abusive(rules):
            reasons.append("abusive debtor")
        return reasons

    def to_json(self, rules: WellbeingRules) -> dict[str, Any]:
        last = self.stress[-1][1] if self.stress else None
        return {
            "call_id": self.call_id,
            "tenant": self.tenant,
            "agent_id": self.agent_id,
            "agent": self.agent,
            "protocol": self.protocol,
            "language": self.language,
            "jurisdiction": self.jurisdiction,
            "started_at": self.started_at.isoformat(),
            "t": round(self.t, 2),
            "stress": last,
            "stress_trend": self.stress_trend,
            "stress_history": [round(level, 1) for _, level in self.stress],
            "sentiment": self.sentiment,
            "style_band": self.style_band,
            "style_index": self.style_index,
            "critical": [{"rule_id": w.rule_id, "title": w.title} for w in self.open_critical()],
            "warnings": sum(w.status != "retracted" for w in self.warnings.values()),
            "abandon_risk": self.abandon_risk,
            "abandon_alert": self.abandon_alert,
            "hard": self.hard_reasons(rules),
        }


@dataclass
class AgentExposure:
    """Workload and exposure facts about one agent's calls since the service started."""

    tenant: str | None
    agent_id: str
    agent: str
    live_calls: int = 0
    calls: int = 0
    handle_time_s: float = 0.0
    hard_calls: int = 0
    consecutive_hard_calls: int = 0
    abusive_calls: int = 0
    long_calls: int = 0
    calls_without_break: int = 0
    last_ended_at: datetime | None = None

    def attention(self, rules: WellbeingRules) -> list[str]:
        """Why a supervisor should check in with this agent (empty: no reason)."""
        limits = rules.attention
        checks = [
            (self.consecutive_hard_calls, limits.consecutive_hard_calls, "hard calls in a row"),
            (self.abusive_calls, limits.abusive_calls, "abusive calls"),
            (self.calls_without_break, limits.calls_without_break, "calls without a break"),
            (self.long_calls, limits.long_calls, "long calls"),
        ]
        return [f"{value} {what}" for value, limit, what in checks if value >= limit]

    def to_json(self, rules: WellbeingRules) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "agent_id": self.agent_id,
            "agent": self.agent,
            "live_calls": self.live_calls,
            "calls": self.calls,
            "handle_time_s": round(self.handle_time_s, 1),
            "hard_calls": self.hard_calls,
            "consecutive_hard_calls": self.consecutive_hard_calls,
            "abusive_calls": self.abusive_calls,
            "long_calls": self.long_calls,
            "calls_without_break": self.calls_without_break,
            "attention": self.attention(rules),
        }


class Feed:
    """One supervisor's pending messages, coalesced by key so a slow client only gets the latest state."""

    def __init__(self, visible: Visible = everyone) -> None:
        self.visible = visible
        self._pending: dict[str, dict[str, Any]] = {}
        self._ready = asyncio.Event()

    def put(self, key: str, message: dict[str, Any]) -> None:
        self._pending.pop(key, None)
        self._pending[key] = message
        self._ready.set()

    async def next(self) -> list[dict[str, Any]]:
        await self._ready.wait()
        self._ready.clear()
        messages = list(self._pending.values())
        self._pending.clear()
        return messages


class Dashboard:
    """Live call summaries and agent exposure metrics, fed by `EventHub.add_listener(dashboard.on_event)`
    and `EventHub.add_close_listener(dashboard.on_closed)`."""

    def __init__(self, rules: WellbeingRules | None = None) -> None:
        self.rules = rules or WellbeingRules.load()
        self._abuse = PhraseBook.from_rules({"abusive": self.rules.abusive_call.phrases})
        self.calls: dict[str, CallSummary] = {}
        self.agents: dict[tuple[str | None, str], AgentExposure] = {}
        self._feeds: set[Feed] = set()
        self._detached: OrderedDict[str, CallSummary] = OrderedDict()

    def snapshot(self, visible: Visible = everyone) -> dict[str, Any]:
        """Live calls and agents of the tenants `visible` allows."""
        return {
            "type": "snapshot",
            "calls": [c.to_json(self.rules) for c in self.calls.values() if visible(c.tenant)],
            "agents": [a.to_json(self.rules) for a in self.agents.values() if visible(a.tenant)],
        }

    @contextlib.contextmanager
    def feed(self, visible: Visible = everyone) -> Iterator[Feed]:
        """A feed of updates (of the tenants `visible` allows) for as long as the `with` block lasts."""
        feed = Feed(visible)
        self._feeds.add(feed)
        try:
            yield feed
        finally:
            self._feeds.discard(feed)

    def on_event(self, event: EventBase) -> None:
        """Hub listener: fold one event into its call's summary and push the change."""
        if isinstance(event, CallStarted):
            self._start(event)
            return
        call = self.calls.get(event.call_id) or self._reattach(event.call_id)
        if call is None or isinstance(event, TranscriptPartial):
            return
        call.t = max(call.t, event.t)
        if isinstance(event, CallEnded):
            self._end(call, event)
            return
        self._fold(call, event)
        self._push_call(call)

    def _fold(self, call: CallSummary, event: EventBase) -> None:
        if isinstance(event, StressLevel) and event.speaker is Speaker.DEBTOR:
            call.stress.append((event.t, event.level))
            while len(call.stress) > self.rules.stress_points:
                call.stress.popleft()
            call.stress_trend = event.trend
            call.peak_stress = max(call.peak_stress or 0.0, event.level)
        elif isinstance(event, SentimentScore) and event.speaker is Speaker.DEBTOR:
            call.sentiment = event.score
            call.lowest_sentiment = min(call.lowest_sentiment if call.lowest_sentiment is not None else 1.0,
                                        event.score)
        elif isinstance(event, NegotiationStyle):
            call.style_band, call.style_index = event.band, event.index
        elif isinstance(event, ComplianceWarning):
            call.warnings[(event.rule_id, event.evidence.start if event.evidence else None)] = event
        elif isinstance(event, AbandonRisk):
            call.abandon_risk = event.risk
            call.abandon_alert = call.abandon_alert or event.alert
        elif isinstance(event, TranscriptFinal):
            call.language = call.language or event.language
            if event.speaker is Speaker.DEBTOR and self._abuse.any(normalise(event.text), "abusive"):
                call.abusive_utterances += 1

    def _start(self, event: CallStarted) -> None:
        custom = event.metadata.get("custom_config")  # Genesys AudioHook puts integrator keys here
        meta = {**custom, **event.metadata} if isinstance(custom, dict) else event.metadata
        tenant = str(meta["tenant"]) if meta.get("tenant") is not None else None
        agent_id = str(meta.get("agent_id") or meta.get("agent") or UNKNOWN_AGENT)
        name = str(meta.get("agent") or agent_id)
        call = self.calls[event.call_id] = CallSummary(
            call_id=event.call_id, tenant=tenant, agent_id=agent_id, agent=name, protocol=event.protocol,
            started_at=event.at,
            language=str(meta["language"])[:2] if meta.get("language") else None,
            jurisdiction=str(meta["jurisdiction"]).lower() if meta.get("jurisdiction") else None,
        )
        agent = self.agents.setdefault((tenant, agent_id), AgentExposure(tenant, agent_id, name))
        agent.agent = name
        agent.live_calls += 1
        busy = agent.live_calls > 1
        recent = agent.last_ended_at is not None and (
            (event.at - agent.last_ended_at).total_seconds() <= self.rules.break_gap_s
        )
        agent.calls_without_break = agent.calls_without_break + 1 if busy or recent else 1
        self._push_call(call)
        self._push_agent(agent)

    def _end(self, call: CallSummary, event: CallEnded) -> None:
        del self.calls[call.call_id]
        agent = self.agents[(call.tenant, call.agent_id)]
        agent.live_calls = max(0, agent.live_calls - 1)
        agent.calls += 1
        agent.handle_time_s += event.duration
        if call.hard_reasons(self.rules):
            agent.hard_calls += 1
            agent.consecutive_hard_calls += 1
        else:
            agent.consecutive_hard_calls = 0
        agent.abusive_calls += int(call.abusive(self.rules))
        agent.long_calls += int(event.duration >= self.rules.long_call_s)
        agent.last_ended_at = event.at
        self._push(call.tenant, f"call:{call.call_id}", {"type": "call.removed", "call_id": call.call_id})
        self._push_agent(agent)

    def on_closed(self, call_id: str) -> None:
        """Hub close listener: hide a call whose log closed without `call.ended` (its front end went away);
        it comes back if its front end does."""
        call = self.calls.pop(call_id, None)
        if call is None:
            return
        self._detached[call_id] = call
        while len(self._detached) > DETACHED_KEPT:
            self._detached.popitem(last=False)
        agent = self.agents[(call.tenant, call.agent_id)]
        agent.live_calls = max(0, agent.live_calls - 1)
        self._push(call.tenant, f"call:{call_id}", {"type": "call.removed", "call_id": call_id})
        self._push_agent(agent)

    def _reattach(self, call_id: str) -> CallSummary | None:
        call = self._detached.pop(call_id, None)
        if call is not None:
            self.calls[call_id] = call
            self.agents[(call.tenant, call.agent_id)].live_calls += 1
        return call

    def _push_call(self, call: CallSummary) -> None:
        if self._feeds:
            self._push(call.tenant, f"call:{call.call_id}", {"type": "call.update", "call": call.to_json(self.rules)})

    def _push_agent(self, agent: AgentExposure) -> None:
        if self._feeds:
            self._push(agent.tenant, f"agent:{agent.tenant}/{agent.agent_id}",
                       {"type": "agent.update", "agent": agent.to_json(self.rules)})

    def _push(self, tenant: str | None, key: str, message: dict[str, Any]) -> None:
        for feed in self._feeds:
            if feed.visible(tenant):
                feed.put(key, message)


async def serve_feed(ws: WebSocket, dashboard: Dashboard, visible: Visible = everyone) -> None:
    """Send the snapshot, then updates, until the supervisor disconnects."""
    with dashboard.feed(visible) as feed:
        await ws.send_json(dashboard.snapshot(visible))
        closed = asyncio.create_task(_until_closed(ws))
        try:
            while not closed.done():
                update = asyncio.create_task(feed.next())
                await asyncio.wait({update, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not update.done():
                    update.cancel()
                    break
                for message in update.result():
                    await ws.send_json(message)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            closed.cancel()


async def _until_closed(ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass
