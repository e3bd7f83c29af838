"""Vocal stress of the debtor: prosody of each final utterance against the speaker's own baseline
in this call, combined into a 0-100 level with a trend (collections-domain.md §5.3)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from assist.analysis.base import CallContext
from assist.analysis.prosody import AudioBuffer, Baseline, combine, extract
from assist.events import EventBase, StressLevel
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker, Utterance

if TYPE_CHECKING:
    from assist.rules_schema import StressFile


@dataclass(frozen=True)
class StressRules:
    """assist/rules/stress.yaml, typed."""

    speakers: tuple[Speaker, ...]
    weights: Mapping[str, float]
    scales: Mapping[str, float]
    min_baseline_s: float
    warmup_s: float
    drift_per_s: float
    gain: float
    center: float
    smoothing: float
    trend_window_s: float

    @classmethod
    def load(cls, spec: StressFile | None = None) -> StressRules:
        """`spec` from the service's RuleSet; default: the packaged stress.yaml."""
        if spec is None:
            from assist.ruleset import packaged_rules

            spec = packaged_rules().stress
        feats, base, level = spec.features, spec.baseline, spec.level
        return cls(
            speakers=tuple(Speaker(s) for s in spec.speakers),
            weights={k: v.weight for k, v in feats.items()},
            scales={k: v.scale for k, v in feats.items()},
            min_baseline_s=base.min_s,
            warmup_s=base.warmup_s,
            drift_per_s=base.drift_per_s,
            gain=level.gain,
            center=level.center,
            smoothing=level.smoothing,
            trend_window_s=spec.trend_window_s,
        )

    def level(self, combined_z: float) -> float:
        """Combined z-score -> 0..100."""
        return 100.0 / (1.0 + math.exp(-self.gain * (combined_z - self.center)))


class _SpeakerState:
    def __init__(self, rules: StressRules) -> None:
        self.audio = AudioBuffer()
        self.baseline = Baseline(rules.scales, rules.warmup_s, rules.drift_per_s)
        self.level: float | None = None
        self.history: deque[tuple[float, float]] = deque()

    def trend(self, window_s: float) -> float:
        """Least-squares slope of the level over the last `window_s`, per minute."""
        if len(self.history) < 2:
            return 0.0
        t, y = np.array(self.history).T
        if t[-1] - t[0] < 1.0:
            return 0.0
        return float(np.polyfit(t, y, 1)[0] * 60.0)


class StressAnalyser:
    """Emits a StressLevel per final utterance of each analysed speaker (debtor by default; the
    agent only when stress.yaml lists it and never in EU mode). `level` / `trend` give the debtor's
    current value (None / 0.0 until the baseline is long enough)."""

    def __init__(self, ctx: CallContext, rules: StressRules | None = None) -> None:
        self.ctx = ctx
        self.rules = rules or StressRules.load()
        speakers = [s for s in self.rules.speakers if not (ctx.eu_mode and s is Speaker.AGENT)]
        self._state = {s: _SpeakerState(self.rules) for s in speakers}

    @property
    def level(self) -> float | None:
        state = self._state.get(Speaker.DEBTOR)
        return state.level if state else None

    @property
    def trend(self) -> float:
        state = self._state.get(Speaker.DEBTOR)
        return state.trend(self.rules.trend_window_s) if state else 0.0

    def on_audio(self, frame: AudioFrame) -> list[EventBase]:
        state = self._state.get(frame.speaker)
        if state:
            state.audio.push(frame)
        return []

    def on_tick(self, t: float) -> list[EventBase]:
        return []

    def on_utterance(self, utt: Utterance) -> list[EventBase]:
        state = self._state.get(utt.speaker)
        if not utt.final or state is None:
            return []
        samples = state.audio.slice(utt.start, utt.end)
        feats = extract(samples, utt.words).as_dict()
        if not math.isfinite(feats["loudness_db"]):
            return []
        z = state.baseline.z(feats)
        ready = state.baseline.seconds >= self.rules.min_baseline_s
        state.baseline.update(feats, len(samples) / SAMPLE_RATE)
        if not ready:
            return []
        combined = combine(z, self.rules.weights)
        raw = self.rules.level(combined)
        a = self.rules.smoothing
        state.level = raw if state.level is None else (1 - a) * state.level + a * raw
        state.history.append((utt.end, state.level))
        while state.history and state.history[0][0] < utt.end - self.rules.trend_window_s:
            state.history.popleft()
        features = {k: round(v, 4) for k, v in feats.items() if math.isfinite(v)}
        features |= {f"z_{k}": round(v, 3) for k, v in z.items()}
        features["combined_z"] = round(combined, 3)
        return [
            StressLevel(
                call_id=self.ctx.call_id,
                t=utt.end,
                speaker=utt.speaker,
                level=round(state.level, 1),
                trend=round(state.trend(self.rules.trend_window_s), 2),
                features=features,
            )
        ]


def population_scores(features: list[Mapping[str, float]], rules: StressRules) -> list[float]:
    """Combined z of each recording against the set's per-feature median: the score when no
    speaker baseline exists (different speakers, one clip each), e.g. for evaluation."""
    medians = {}
    for name in rules.weights:
        values = sorted(f[name] for f in features if math.isfinite(f.get(name, math.nan)))
        if values:
            medians[name] = values[len(values) // 2]
    return [
        combine(
            {k: (f[k] - m) / rules.scales[k] for k, m in medians.items() if math.isfinite(f.get(k, math.nan))},
            rules.weights,
        )
        for f in features
    ]
