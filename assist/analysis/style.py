"""Negotiation-style index of the agent, -1 too passive .. +1 too aggressive, with reasons
(collections-domain.md §5.2). Non-emotional agent metrics: allowed in EU mode."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assist.analysis.base import CallContext
from assist.analysis.prosody import AudioBuffer, Baseline, loudness_db
from assist.analysis.stress import StressAnalyser
from assist.analysis.text import PhraseBook, normalise
from assist.analysis.wording import ReasonBook, in_language, reason_book, with_suffix
from assist.events import EventBase, NegotiationStyle, Reason
from streaming.types import AudioFrame, Speaker, Utterance

if TYPE_CHECKING:
    from assist.rules_schema import StyleRules

_PRESSURE_TERMS = ("imperatives", "pressure", "demand_repetition", "blame")


_Term = tuple[float, Reason]  # (weight, why)


@dataclass(frozen=True)
class _Turn:
    """One final utterance with what the style terms need from it."""

    speaker: Speaker
    start: float
    end: float
    words: int
    hits: Mapping[str, list[str]]
    minimal: bool
    amount: bool
    rate_z: float = math.nan
    loudness_z: float = math.nan

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class _Window:
    """The turns of the rolling window, split by speaker, with each side's speech in it."""

    seconds: float
    since: float
    turns: list[_Turn]
    agent: list[_Turn]
    debtor: list[_Turn]
    agent_s: float
    debtor_s: float

    @classmethod
    def of(cls, turns: deque[_Turn], now: float, seconds: float) -> _Window:
        since = now - seconds
        inside = [t for t in turns if t.end > since]
        agent = [t for t in inside if t.speaker is Speaker.AGENT]
        debtor = [t for t in inside if t.speaker is Speaker.DEBTOR]

        def spoken(side: list[_Turn]) -> float:
            return sum(min(t.end, now) - max(t.start, since) for t in side)

        return cls(seconds, since, inside, agent, debtor, spoken(agent), spoken(debtor))

    def count(self, category: str) -> int:
        """Phrase hits of `category` in the agent's turns."""
        return sum(len(t.hits[category]) for t in self.agent)


@dataclass
class _CallState:
    """What persists beyond the window: call-level flags and sequential counters."""

    first_agent_t: float | None = None
    asked: bool = False
    capacity_known: bool = False
    refused: bool = False
    demands_since_refusal: int = 0
    empathy_due_in: int | None = None
    empathy_gaps: deque[float] = field(default_factory=deque)
    over_offer_t: float | None = None


class StyleAnalyser:
    """Emits a NegotiationStyle after each final utterance of either speaker. `stress` (the debtor's
    StressAnalyser) makes pressure weigh more while the debtor is distressed. `rules` (style.yaml) and
    `words` come from the service's RuleSet (default: the packaged ones)."""

    def __init__(
        self,
        ctx: CallContext,
        stress: StressAnalyser | None = None,
        rules: StyleRules | None = None,
        words: ReasonBook | None = None,
    ) -> None:
        if rules is None:
            from assist.ruleset import packaged_rules

            rules = packaged_rules().style
        self.ctx = ctx
        self.stress = stress
        self.rules = rules
        self.words = words or reason_book()
        self.phrases = PhraseBook.from_rules(rules.phrases.model_dump())
        agg = rules.aggressive
        self._baseline = Baseline(
            {"speech_rate": agg.speech_rate.scale, "loudness_db": agg.loudness.scale},
            warmup_s=rules.agent_baseline_s,
            drift_per_s=0.0,  # the agent's reference is their opening minute, not a moving target
        )
        self._audio = AudioBuffer()
        self._turns: deque[_Turn] = deque()
        self._call = _CallState()
        self._now = 0.0

    def on_audio(self, frame: AudioFrame) -> list[EventBase]:
        if frame.speaker is Speaker.AGENT:
            self._audio.push(frame)
        return []

    def on_tick(self, t: float) -> list[EventBase]:
        return []

    def on_utterance(self, utt: Utterance) -> list[EventBase]:
        if not utt.final:
            return []
        turn = self._turn(utt)
        self._now = max(self._now, utt.end)
        self._turns.append(turn)
        self._update_sequence(turn)
        while self._turns and self._turns[0].end < self._now - 2 * self.rules.window_s:
            self._turns.popleft()
        return [self.evaluate()]

    # -- per turn -------------------------------------------------------------------------------

    def _turn(self, utt: Utterance) -> _Turn:
        norm = normalise(utt.text)
        words = len(norm.split())
        hits = {cat: self.phrases.hits(norm, cat) for cat in self.phrases.phrases}
        minimal = words <= self.rules.contingency.minimal_answer_words
        amount = any(ch.isdigit() for ch in norm)
        if utt.speaker is not Speaker.AGENT or utt.end - utt.start < self.rules.min_turn_s:
            return _Turn(utt.speaker, utt.start, utt.end, words, hits, minimal, amount)
        values = {
            "speech_rate": words / (utt.end - utt.start) if words else math.nan,
            "loudness_db": loudness_db(self._audio.slice(utt.start, utt.end)),
        }
        z = self._baseline.z(values) if self._baseline.seconds >= self.rules.min_baseline_s else {}
        self._baseline.update(values, utt.end - utt.start)
        return _Turn(
            utt.speaker,
            utt.start,
            utt.end,
            words,
            hits,
            minimal,
            amount,
            rate_z=z.get("speech_rate", math.nan),
            loudness_z=z.get("loudness_db", math.nan),
        )

    def _update_sequence(self, turn: _Turn) -> None:
        c, gap, h = self._call, self.rules.aggressive.empathy_gap, turn.hits
        if turn.speaker is Speaker.DEBTOR:
            distressed = bool(h["debtor_distress"]) or (self._stress_level() or 0.0) > gap.debtor_stress_above
            if h["debtor_distress"]:
                c.refused = True  # demands keep counting until the agent offers an option
            if distressed and c.empathy_due_in is None:
                c.empathy_due_in = gap.within_turns
            if turn.amount or h["options"]:
                c.capacity_known = True
            return
        if c.first_agent_t is None:
            c.first_agent_t = turn.start
        if h["best_offer"] and not c.capacity_known and c.over_offer_t is None:
            c.over_offer_t = turn.end
        if h["capacity_question"]:
            c.capacity_known = True
        if h["ask_payment"]:
            c.asked = True
        if h["options"]:
            c.refused, c.demands_since_refusal = False, 0
        elif c.refused and (h["ask_payment"] or h["imperatives"] or h["pressure"]):
            c.demands_since_refusal += 1
        if c.empathy_due_in is not None:
            if h["empathy"]:
                c.empathy_due_in = None
            else:
                c.empathy_due_in -= 1
                if c.empathy_due_in == 0:
                    c.empathy_gaps.append(turn.end)
                    c.empathy_due_in = None

    def _stress_level(self) -> float | None:
        return self.stress.level if self.stress is not None else None

    # -- window terms -----------------------------------------------------------------------------

    def evaluate(self) -> NegotiationStyle:
        """The index over the current window, with the terms that made it."""
        w = _Window.of(self._turns, self._now, self.rules.window_s)
        agg, pas = self._weighted_aggressive(w), self._passive_terms(w)
        agg_total = min(1.0, sum(v for v, _ in agg.values()))
        threats = [p for t in w.agent for p in t.hits["threats"]]
        if threats:
            floor = self.rules.aggressive.threat_floor
            agg_total = max(agg_total, floor)
            agg["threats"] = (floor, self._reason("threats", phrase=threats[-1]))
        index = round(agg_total - min(1.0, sum(v for v, _ in pas.values())), 3)
        terms = [(v, k, r) for k, (v, r) in agg.items()] + [(-v, k, r) for k, (v, r) in pas.items()]
        terms.sort(key=lambda x: -abs(x[0]))
        return NegotiationStyle(
            call_id=self.ctx.call_id,
            t=self._now,
            index=index,
            band=self._band(index),
            reasons=[in_language(r, self.ctx.language) for _, _, r in terms],
            reason_details=[r for _, _, r in terms],
            components={k: round(v, 3) for v, k, _ in terms},
        )

    def _band(self, index: float) -> str:
        bands = self.rules.bands
        if index < bands.passive_below:
            return "too_passive"
        return "too_aggressive" if index > bands.aggressive_above else "balanced"

    def _weighted_aggressive(self, w: _Window) -> dict[str, _Term]:
        """The aggressive terms, pressure weighed by the debtor's state (contingency)."""
        agg = self._talk_terms(w) | self._aggressive_terms(w)
        mult, suffix = self._contingency(w.debtor)
        if suffix is None:
            return agg
        for name in _PRESSURE_TERMS:
            if name in agg:
                weight, reason = agg[name]
                agg[name] = (weight * mult, with_suffix(reason, self.words.style_suffixes[suffix], suffix))
        return agg

    def _reason(self, code: str, **params: Any) -> Reason:
        return self.words.style[code].reason(code, **params)

    def _talk_terms(self, w: _Window) -> dict[str, _Term]:
        """Talk share (both directions), monologue, interruptions and floor grabbing."""
        agg, pas, out = self.rules.aggressive, self.rules.passive, {}
        minutes = w.seconds / 60
        if w.agent_s + w.debtor_s >= self.rules.min_window_speech_s:
            share = w.agent_s / (w.agent_s + w.debtor_s)
            if share > agg.talk_share.above:
                out["talk_share"] = (agg.talk_share.weight, self._reason("talk_share", share=share, minutes=minutes))
            if share < pas.low_talk_share.below:
                out["low_talk_share"] = (pas.low_talk_share.weight,
                                         self._reason("low_talk_share", share=share, minutes=minutes))
        mono = self._longest_monologue(w.turns)
        if mono > agg.monologue.above_s:
            out["monologue"] = (agg.monologue.weight, self._reason("monologue", seconds=mono))
        n_int = self._interruptions(w.agent, w.debtor)
        if n_int:
            r = agg.interruptions
            out["interruptions"] = (r.weight * min(1.0, n_int / minutes / r.full_per_min),
                                    self._reason("interruptions", n=n_int))
        grab = agg.floor_grabbing
        tfos = self._turn_offsets(w.agent, w.debtor, grab.max_gap_s)
        if len(tfos) >= grab.min_turns:
            fast = sum(1 for g in tfos if g < grab.below_s) / len(tfos)
            if fast >= grab.min_fraction:
                out["floor_grabbing"] = (grab.weight, self._reason("floor_grabbing", fraction=fast))
        return out

    def _aggressive_terms(self, w: _Window) -> dict[str, _Term]:
        """Rate and loudness against the agent's baseline, imperatives, pressure, blame, repeated
        demands and unacknowledged distress."""
        agg = self.rules.aggressive
        out = self._prosody_terms(w)
        words, n_imp = sum(t.words for t in w.agent), w.count("imperatives")
        if n_imp and words:
            per100 = 100 * n_imp / words
            out["imperatives"] = (agg.imperatives.weight * min(1.0, per100 / agg.imperatives.full_per_100_words),
                                  self._reason("imperatives", n=n_imp, per100=per100))
        for name, r in (("pressure", agg.pressure), ("blame", agg.blame)):
            if n := w.count(name):
                out[name] = (min(r.max, r.per_hit * n), self._reason(name, n=n))
        c = self._call
        if c.demands_since_refusal >= agg.demand_repetition.min_count:
            out["demand_repetition"] = (agg.demand_repetition.weight,
                                        self._reason("demand_repetition", n=c.demands_since_refusal))
        if gaps := sum(1 for g in c.empathy_gaps if g > w.since):
            out["empathy_gap"] = (agg.empathy_gap.weight * min(1.0, gaps), self._reason("empathy_gap", n=gaps))
        return out

    def _prosody_terms(self, w: _Window) -> dict[str, _Term]:
        """Speech rate and loudness: the agent's duration-weighted z-scores against their own baseline."""
        out = {}
        for name, attr, r in (("speech_rate", "rate_z", self.rules.aggressive.speech_rate),
                              ("loudness", "loudness_z", self.rules.aggressive.loudness)):
            zs = [(getattr(t, attr), t.duration) for t in w.agent if math.isfinite(getattr(t, attr))]
            if zs:
                z = sum(v * d for v, d in zs) / max(sum(d for _, d in zs), 1e-9)
                part = r.weight * min(1.0, max(0.0, (z - r.z_from) / r.z_span))
                if part > 0:
                    out[name] = (part, self._reason(name, z=z))
        return out

    def _passive_terms(self, w: _Window) -> dict[str, _Term]:
        """No request for payment, an early biggest offer, a vague close, apologies and hedging (low
        talk share is in _talk_terms)."""
        pas, c, out = self.rules.passive, self._call, {}
        if c.first_agent_t is not None and not c.asked and self._now - c.first_agent_t >= pas.no_ask.after_s:
            out["no_ask"] = (pas.no_ask.weight, self._reason("no_ask", minutes=(self._now - c.first_agent_t) / 60))
        if c.over_offer_t is not None:
            out["early_over_offer"] = (pas.early_over_offer.weight,
                                       self._reason("early_over_offer", minutes=c.over_offer_t / 60))
        if w.count("vague_close"):
            out["vague_close"] = (pas.vague_close.weight, self._reason("vague_close"))
        n_apol = w.count("apologies")
        if n_apol > pas.apologies.above:
            out["apologies"] = (pas.apologies.weight, self._reason("apologies", n=n_apol))
        if n_hedge := w.count("hedging"):
            out["hedging"] = (min(pas.hedging.max, pas.hedging.per_hit * n_hedge),
                              self._reason("hedging", n=n_hedge))
        return out

    def _contingency(self, debtor: list[_Turn]) -> tuple[float, str | None]:
        """Multiplier of the pressure terms from the debtor's state (Gibson & Fichman), and the name
        of the reason suffix that says why (None: unchanged)."""
        r = self.rules.contingency
        level = self._stress_level()
        if level is not None and level > r.distress_above:
            return r.distressed_multiplier, "distressed"
        calm = level is None or level < r.calm_below
        if debtor and calm and sum(t.minimal for t in debtor) / len(debtor) >= r.nonresponsive_min_ratio:
            return r.nonresponsive_multiplier, "nonresponsive"
        return 1.0, None

    def _longest_monologue(self, turns: list[_Turn]) -> float:
        gap = self.rules.aggressive.monologue.debtor_gap_s
        longest, start, end = 0.0, None, None
        for t in sorted(turns, key=lambda t: t.start):
            if t.speaker is Speaker.AGENT:
                start = t.start if start is None else start
                end = t.end if end is None else max(end, t.end)
                longest = max(longest, end - start)
            elif t.duration >= gap:
                start = end = None
        return longest

    def _interruptions(self, agent: list[_Turn], debtor: list[_Turn]) -> int:
        """Agent onsets inside a debtor turn that overlap it by min_overlap_s and hold the floor
        hold_s past its end; backchannels (short or backchannel-only turns) excluded."""
        r = self.rules.aggressive.interruptions
        n = 0
        for a in agent:
            if a.duration <= r.backchannel_max_s or (a.minimal and a.hits["backchannels"]):
                continue
            for d in debtor:
                if d.start < a.start and d.end - a.start >= r.min_overlap_s and a.end >= d.end + r.hold_s:
                    n += 1
                    break
        return n

    @staticmethod
    def _turn_offsets(agent: list[_Turn], debtor: list[_Turn], max_gap_s: float) -> list[float]:
        """For each agent turn following a debtor turn (by less than `max_gap_s`): agent start minus that
        debtor turn's end."""
        out = []
        for a in agent:
            before = [d for d in debtor if d.start < a.start]
            if before:
                prev = max(before, key=lambda d: d.start)
                if a.start - prev.end < max_gap_s:
                    out.append(a.start - prev.end)
        return out
