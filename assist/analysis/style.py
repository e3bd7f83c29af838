"""Negotiation-style index of the agent, -1 too passive .. +1 too aggressive, with reasons
(collections-domain.md §5.2). Non-emotional agent metrics: allowed in EU mode."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assist.analysis.base import CallContext
from assist.analysis.prosody import AudioBuffer, Baseline, loudness_db
from assist.analysis.stress import StressAnalyser
from assist.analysis.text import PhraseBook, load_rules, normalise
from assist.events import EventBase, NegotiationStyle
from streaming.types import AudioFrame, Speaker, Utterance

_PRESSURE_TERMS = ("imperatives", "pressure", "demand_repetition", "blame")
_MIN_BASELINE_S = 5.0  # agent speech before rate/loudness z-scores are trusted


def _plural(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


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
    StressAnalyser) makes pressure weigh more while the debtor is distressed."""

    def __init__(
        self, ctx: CallContext, stress: StressAnalyser | None = None, rules: Mapping[str, Any] | None = None
    ) -> None:
        self.ctx = ctx
        self.stress = stress
        self.rules = rules or load_rules("style")
        self.phrases = PhraseBook.from_rules(self.rules["phrases"])
        agg = self.rules["aggressive"]
        self._baseline = Baseline(
            {"speech_rate": agg["speech_rate"]["scale"], "loudness_db": agg["loudness"]["scale"]},
            warmup_s=self.rules["agent_baseline_s"],
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
        while self._turns and self._turns[0].end < self._now - 2 * self.rules["window_s"]:
            self._turns.popleft()
        return [self.evaluate()]

    # -- per turn -------------------------------------------------------------------------------

    def _turn(self, utt: Utterance) -> _Turn:
        norm = normalise(utt.text)
        words = len(norm.split())
        hits = {cat: self.phrases.hits(norm, cat) for cat in self.phrases.phrases}
        minimal = words <= self.rules["contingency"]["minimal_answer_words"]
        amount = any(ch.isdigit() for ch in norm)
        if utt.speaker is not Speaker.AGENT or utt.end - utt.start < 0.5:
            return _Turn(utt.speaker, utt.start, utt.end, words, hits, minimal, amount)
        values = {
            "speech_rate": words / (utt.end - utt.start) if words else math.nan,
            "loudness_db": loudness_db(self._audio.slice(utt.start, utt.end)),
        }
        z = self._baseline.z(values) if self._baseline.seconds >= _MIN_BASELINE_S else {}
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
        c, agg, h = self._call, self.rules["aggressive"], turn.hits
        if turn.speaker is Speaker.DEBTOR:
            distressed = (
                bool(h["debtor_distress"]) or (self._stress_level() or 0.0) > agg["empathy_gap"]["debtor_stress_above"]
            )
            if h["debtor_distress"]:
                c.refused = True  # demands keep counting until the agent offers an option
            if distressed and c.empathy_due_in is None:
                c.empathy_due_in = agg["empathy_gap"]["within_turns"]
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
        window = self.rules["window_s"]
        since = self._now - window
        turns = [t for t in self._turns if t.end > since]
        agent = [t for t in turns if t.speaker is Speaker.AGENT]
        debtor = [t for t in turns if t.speaker is Speaker.DEBTOR]
        agg_rules, pas_rules = self.rules["aggressive"], self.rules["passive"]
        agg: dict[str, tuple[float, str]] = {}
        pas: dict[str, tuple[float, str]] = {}

        def count(cat: str) -> int:
            return sum(len(t.hits[cat]) for t in agent)

        a_s = sum(min(t.end, self._now) - max(t.start, since) for t in agent)
        d_s = sum(min(t.end, self._now) - max(t.start, since) for t in debtor)
        minutes = f"{window / 60:g} min"
        if a_s + d_s >= self.rules["min_window_speech_s"]:
            share = a_s / (a_s + d_s)
            if share > agg_rules["talk_share"]["above"]:
                agg["talk_share"] = (
                    agg_rules["talk_share"]["weight"],
                    f"agent talked {share:.0%} of the last {minutes}",
                )
            if share < pas_rules["low_talk_share"]["below"]:
                pas["low_talk_share"] = (
                    pas_rules["low_talk_share"]["weight"],
                    f"agent talked only {share:.0%} of the last {minutes}",
                )

        mono = self._longest_monologue(turns)
        if mono > agg_rules["monologue"]["above_s"]:
            agg["monologue"] = (agg_rules["monologue"]["weight"], f"agent monologue of {mono:.0f} s")

        n_int = self._interruptions(agent, debtor)
        if n_int:
            r = agg_rules["interruptions"]
            per_min = n_int / (window / 60)
            agg["interruptions"] = (
                r["weight"] * min(1.0, per_min / r["full_per_min"]),
                _plural(n_int, "interruption") + " of the debtor",
            )

        r = agg_rules["floor_grabbing"]
        tfos = self._turn_offsets(agent, debtor)
        if len(tfos) >= r["min_turns"]:
            fast = sum(1 for g in tfos if g < r["below_s"]) / len(tfos)
            if fast >= r["min_fraction"]:
                agg["floor_grabbing"] = (r["weight"], f"agent answered {fast:.0%} of turns before the debtor finished")

        for name, label in (("speech_rate", "faster"), ("loudness", "louder")):
            attr = "rate_z" if name == "speech_rate" else "loudness_z"
            zs = [(getattr(t, attr), t.duration) for t in agent if math.isfinite(getattr(t, attr))]
            if zs:
                z = sum(v * d for v, d in zs) / max(sum(d for _, d in zs), 1e-9)
                r = agg_rules[name]
                part = r["weight"] * min(1.0, max(0.0, (z - r["z_from"]) / r["z_span"]))
                if part > 0:
                    agg[name] = (part, f"agent speaking {label} than own baseline ({z:+.1f} SD)")

        words = sum(t.words for t in agent)
        n_imp = count("imperatives")
        if n_imp and words:
            per100 = 100 * n_imp / words
            r = agg_rules["imperatives"]
            agg["imperatives"] = (
                r["weight"] * min(1.0, per100 / r["full_per_100_words"]),
                _plural(n_imp, "imperative") + f" ({per100:.1f} per 100 words)",
            )
        for name, noun in (("pressure", "pressure phrase"), ("blame", "blaming or rhetorical phrase")):
            n = count(name)
            if n:
                r = agg_rules[name]
                agg[name] = (min(r["max"], r["per_hit"] * n), _plural(n, noun))
        c = self._call
        r = agg_rules["demand_repetition"]
        if c.demands_since_refusal >= r["min_count"]:
            agg["demand_repetition"] = (
                r["weight"],
                f"payment demanded {c.demands_since_refusal} times after a refusal without a new option",
            )
        gaps = sum(1 for g in c.empathy_gaps if g > since)
        if gaps:
            agg["empathy_gap"] = (
                agg_rules["empathy_gap"]["weight"] * min(1.0, gaps),
                _plural(gaps, "debtor distress cue") + " not acknowledged",
            )

        mult, why = self._contingency(debtor)
        for name in _PRESSURE_TERMS:
            if name in agg and mult != 1.0:
                agg[name] = (agg[name][0] * mult, agg[name][1] + why)

        if (
            c.first_agent_t is not None
            and not c.asked
            and self._now - c.first_agent_t >= pas_rules["no_ask"]["after_s"]
        ):
            pas["no_ask"] = (
                pas_rules["no_ask"]["weight"],
                f"no request for payment after {(self._now - c.first_agent_t) / 60:.0f} min",
            )
        if c.over_offer_t is not None:
            pas["early_over_offer"] = (
                pas_rules["early_over_offer"]["weight"],
                f"biggest discount offered at {c.over_offer_t / 60:.0f} min, before asking what the debtor can pay",
            )
        if count("vague_close"):
            pas["vague_close"] = (pas_rules["vague_close"]["weight"], "vague close without a date or amount")
        n_apol = count("apologies")
        if n_apol > pas_rules["apologies"]["above"]:
            pas["apologies"] = (
                pas_rules["apologies"]["weight"],
                _plural(n_apol, "apology for calling", "apologies for calling"),
            )
        n_hedge = count("hedging")
        if n_hedge:
            r = pas_rules["hedging"]
            pas["hedging"] = (min(r["max"], r["per_hit"] * n_hedge), _plural(n_hedge, "hedge"))

        threats = [p for t in agent for p in t.hits["threats"]]
        agg_total = min(1.0, sum(v for v, _ in agg.values()))
        if threats:
            agg_total = max(agg_total, agg_rules["threat_floor"])
            agg["threats"] = (agg_rules["threat_floor"], f'threat: "{threats[-1]}"')
        pas_total = min(1.0, sum(v for v, _ in pas.values()))
        index = round(agg_total - pas_total, 3)
        bands = self.rules["bands"]
        band = (
            "too_passive"
            if index < bands["passive_below"]
            else "too_aggressive"
            if index > bands["aggressive_above"]
            else "balanced"
        )
        terms = [(v, k, why) for k, (v, why) in agg.items()] + [(-v, k, why) for k, (v, why) in pas.items()]
        terms.sort(key=lambda x: -abs(x[0]))
        return NegotiationStyle(
            call_id=self.ctx.call_id,
            t=self._now,
            index=index,
            band=band,
            reasons=[why for _, _, why in terms],
            components={k: round(v, 3) for v, k, _ in terms},
        )

    def _contingency(self, debtor: list[_Turn]) -> tuple[float, str]:
        """Multiplier of the pressure terms from the debtor's state (Gibson & Fichman)."""
        r = self.rules["contingency"]
        level = self._stress_level()
        if level is not None and level > r["distress_above"]:
            return r["distressed_multiplier"], " while the debtor is distressed"
        calm = level is None or level < r["calm_below"]
        if debtor and calm and sum(t.minimal for t in debtor) / len(debtor) >= r["nonresponsive_min_ratio"]:
            return r["nonresponsive_multiplier"], " (debtor not responding)"
        return 1.0, ""

    def _longest_monologue(self, turns: list[_Turn]) -> float:
        gap = self.rules["aggressive"]["monologue"]["debtor_gap_s"]
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
        r = self.rules["aggressive"]["interruptions"]
        n = 0
        for a in agent:
            if a.duration <= r["backchannel_max_s"] or (a.minimal and a.hits["backchannels"]):
                continue
            for d in debtor:
                if d.start < a.start and d.end - a.start >= r["min_overlap_s"] and a.end >= d.end + r["hold_s"]:
                    n += 1
                    break
        return n

    @staticmethod
    def _turn_offsets(agent: list[_Turn], debtor: list[_Turn]) -> list[float]:
        """For each agent turn following a debtor turn: agent start minus that debtor turn's end."""
        out = []
        for a in agent:
            before = [d for d in debtor if d.start < a.start]
            if before:
                prev = max(before, key=lambda d: d.start)
                if a.start - prev.end < 3.0:
                    out.append(a.start - prev.end)
        return out
