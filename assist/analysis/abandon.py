"""Risk that the debtor is about to hang up, per ~5 s step (collections-domain.md §5.4): exit
phrases, minimal answers, silences, agent monologues, rising stress and falling sentiment."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assist.analysis.base import CallContext
from assist.analysis.stress import StressAnalyser
from assist.analysis.text import PhraseBook, normalise
from assist.analysis.wording import ReasonBook, in_language, reason_book
from assist.events import AbandonRisk, EventBase, Reason
from streaming.types import AudioFrame, Speaker, Utterance

if TYPE_CHECKING:
    from assist.rules_schema import AbandonRules


@dataclass(frozen=True, slots=True)
class _ExitHit:
    t: float
    group: str
    phrase: str


def _ramp(x: float, start: float, full: float) -> float:
    """0 at `start`, 1 at `full` (either direction), clipped."""
    return min(1.0, max(0.0, (x - start) / (full - start)))


class AbandonAnalyser:
    """Evaluates on on_tick (every step_s of call clock) and on final debtor utterances; emits
    AbandonRisk when the risk moves by emit_min_change or crosses the alert thresholds.
    `sentiment_trend` returns the debtor's recent sentiment in -1..1. `rules` and `words` come from the
    service's RuleSet (default: the packaged ones)."""

    def __init__(
        self,
        ctx: CallContext,
        stress: StressAnalyser | None = None,
        sentiment_trend: Callable[[], float] | None = None,
        rules: AbandonRules | None = None,
        words: ReasonBook | None = None,
    ) -> None:
        self.ctx = ctx
        self.words = words or reason_book()
        self.stress = stress
        self.sentiment_trend = sentiment_trend
        if rules is None:
            from assist.ruleset import packaged_rules

            rules = packaged_rules().abandon
        self.rules = rules
        groups = rules.exit_groups
        self.phrases = PhraseBook.from_rules({g: v.phrases for g, v in groups.items()})
        self._group_weight = {g: v.weight for g, v in groups.items()}
        self._exits: deque[_ExitHit] = deque()
        self._debtor_words: deque[int] = deque(maxlen=rules.cues.minimal_answers.last_turns)
        self._sentiment: deque[tuple[float, float]] = deque()
        self._last_debtor_end: float | None = None
        self._last_agent_end = 0.0
        self._monologue_start: float | None = None
        self._last_eval = float("-inf")
        self._emitted = 0.0
        self.risk = 0.0
        self.alerting = False

    def on_audio(self, frame: AudioFrame) -> list[EventBase]:
        return []

    def on_utterance(self, utt: Utterance) -> list[EventBase]:
        if utt.speaker is Speaker.AGENT:
            self._last_agent_end = max(self._last_agent_end, utt.end)
            if self._monologue_start is None:
                self._monologue_start = utt.start
            return []
        if utt.end - utt.start >= self.rules.cues.agent_monologue.debtor_gap_s:
            self._monologue_start = None
        if not utt.final:
            return []
        self._last_debtor_end = utt.end
        norm = normalise(utt.text)
        self._debtor_words.append(len(norm.split()))
        for group in self.phrases.phrases:
            for phrase in self.phrases.hits(norm, group):
                self._exits.append(_ExitHit(utt.end, group, phrase))
        return self._evaluate(utt.end)

    def on_tick(self, t: float) -> list[EventBase]:
        if t - self._last_eval < self.rules.step_s * 0.99:
            return []
        return self._evaluate(t)

    def _reason(self, code: str, **params: Any) -> Reason:
        return self.words.abandon[code].reason(code, **params)

    def _cues(self, now: float) -> list[tuple[float, Reason]]:
        """(weight * strength, reason) of every active cue."""
        cues, out = self.rules.cues, []
        memory = self.rules.exit_memory_s
        while self._exits and self._exits[0].t < now - memory:
            self._exits.popleft()
        for hit in self._exits:
            fade = 1.0 - (now - hit.t) / memory
            out.append((self._group_weight[hit.group] * fade, self._reason("exit_phrase", phrase=hit.phrase)))

        r = cues.minimal_answers
        if len(self._debtor_words) >= r.min_turns:
            short = sum(1 for n in self._debtor_words if n <= r.max_words)
            if short:
                ratio = short / len(self._debtor_words)
                out.append((r.weight * ratio, self._reason("minimal_answers", n=short, of=len(self._debtor_words))))

        silence = cues.debtor_silence
        if self._last_debtor_end is not None:
            silent = now - max(self._last_debtor_end, self._last_agent_end)
            x = _ramp(silent, silence.from_s, silence.full_s)
            if x > 0:
                out.append((silence.weight * x, self._reason("debtor_silence", seconds=silent)))

        monologue = cues.agent_monologue
        if self._monologue_start is not None:
            mono = self._last_agent_end - self._monologue_start
            if mono > monologue.above_s:
                out.append((monologue.weight, self._reason("agent_monologue", seconds=mono)))

        if self.stress is not None and self.stress.level is not None:
            rising = cues.stress_rising
            trend = self.stress.trend
            x = _ramp(trend, 0.0, rising.full_per_min)
            if x > 0:
                out.append((rising.weight * x, self._reason("stress_rising", trend=trend)))
            high = cues.stress_high
            x = _ramp(self.stress.level, high.from_, high.full)
            if x > 0:
                out.append((high.weight * x, self._reason("stress_high", level=self.stress.level)))

        if self.sentiment_trend is not None:
            s = float(self.sentiment_trend())
            d = cues.sentiment_drop
            self._sentiment.append((now, s))
            while len(self._sentiment) > 1 and self._sentiment[1][0] <= now - d.lookback_s:
                self._sentiment.popleft()
            drop = self._sentiment[0][1] - s
            x = _ramp(drop, 0.0, d.full_drop)
            if x > 0:
                out.append((d.weight * x, self._reason("sentiment_drop", drop=drop)))
            low = cues.sentiment_low
            x = _ramp(s, low.from_, low.full)
            if x > 0:
                out.append((low.weight * x, self._reason("sentiment_low", score=s)))
        return out

    def _evaluate(self, now: float) -> list[EventBase]:
        self._last_eval = now
        cues = self._cues(now)
        keep = 1.0
        for w, _ in cues:
            keep *= 1.0 - min(1.0, w)
        self.risk = round(1.0 - keep, 3)
        alert_rules = self.rules.alert
        crossed_up = not self.alerting and self.risk >= alert_rules.on_at
        crossed_down = self.alerting and self.risk < alert_rules.off_below
        if crossed_up:
            self.alerting = True
        elif crossed_down:
            self.alerting = False
        if not (crossed_up or crossed_down or abs(self.risk - self._emitted) >= self.rules.emit_min_change):
            return []
        self._emitted = self.risk
        reasons = [why for _, why in sorted(cues, key=lambda c: -c[0])]
        return [
            AbandonRisk(
                call_id=self.ctx.call_id,
                t=now,
                risk=self.risk,
                alert=crossed_up,
                reasons=[in_language(r, self.ctx.language) for r in reasons],
                reason_details=reasons,
            )
        ]
