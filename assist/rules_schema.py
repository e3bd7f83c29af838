"""Schemas of the live analysers' rules files (style, stress, abandon; the after-call ones are in
assist/rules_schema_qa.py): pydantic, unknown keys refused, so that a typo stops the service at start-up
(assist/ruleset.py) instead of surfacing mid-call."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from assist.languages import Language

Phrase = Annotated[str, Field(min_length=1)]
Phrases = dict[Language, list[Phrase]]
"""Language -> cue phrases (quote yes/no/on/off in YAML: they are read as true/false)."""
Weight = Annotated[float, Field(ge=0, le=1)]
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- style.yaml ----------------------------------------------------------------------------------


class TalkShare(Strict):
    above: Weight
    weight: Weight


class Monologue(Strict):
    above_s: float = Field(gt=0)
    weight: Weight
    debtor_gap_s: float = Field(ge=0, description="A debtor turn this long ends the agent's monologue.")


class Interruptions(Strict):
    weight: Weight
    full_per_min: float = Field(gt=0)
    min_overlap_s: float = Field(ge=0)
    hold_s: float = Field(ge=0)
    backchannel_max_s: float = Field(ge=0)


class FloorGrabbing(Strict):
    weight: Weight
    below_s: float
    min_turns: int = Field(ge=1)
    min_fraction: Weight
    max_gap_s: float = Field(gt=0, description="An agent turn starting later than this after the debtor's is "
                             "not a reply (no turn offset).")


class ZScore(Strict):
    weight: Weight
    z_from: float
    z_span: float = Field(gt=0)
    scale: float = Field(gt=0, description="Typical within-speaker spread (prior of the z-score).")


class Rate(Strict):
    weight: Weight
    full_per_100_words: float = Field(gt=0)


class PerHit(Strict):
    per_hit: Weight
    max: Weight


class DemandRepetition(Strict):
    weight: Weight
    min_count: int = Field(ge=1)


class EmpathyGap(Strict):
    weight: Weight
    within_turns: int = Field(ge=1)
    debtor_stress_above: float = Field(ge=0, le=100)


class Aggressive(Strict):
    talk_share: TalkShare
    monologue: Monologue
    interruptions: Interruptions
    floor_grabbing: FloorGrabbing
    speech_rate: ZScore
    loudness: ZScore
    imperatives: Rate
    pressure: PerHit
    demand_repetition: DemandRepetition
    empathy_gap: EmpathyGap
    blame: PerHit
    threat_floor: Weight


class Weighted(Strict):
    weight: Weight


class NoAsk(Strict):
    weight: Weight
    after_s: float = Field(gt=0)


class Apologies(Strict):
    weight: Weight
    above: int = Field(ge=0)


class LowTalkShare(Strict):
    weight: Weight
    below: Weight


class Passive(Strict):
    no_ask: NoAsk
    early_over_offer: Weighted
    vague_close: Weighted
    apologies: Apologies
    hedging: PerHit
    low_talk_share: LowTalkShare


class Contingency(Strict):
    distress_above: float = Field(ge=0, le=100)
    distressed_multiplier: float = Field(gt=0)
    calm_below: float = Field(ge=0, le=100)
    nonresponsive_min_ratio: Weight
    nonresponsive_multiplier: float = Field(gt=0)
    minimal_answer_words: int = Field(ge=0)


class StylePhrases(Strict):
    imperatives: Phrases
    pressure: Phrases
    threats: Phrases
    blame: Phrases
    ask_payment: Phrases
    capacity_question: Phrases
    options: Phrases
    best_offer: Phrases
    empathy: Phrases
    debtor_distress: Phrases
    apologies: Phrases
    hedging: Phrases
    vague_close: Phrases
    backchannels: Phrases


class Bands(Strict):
    passive_below: float = Field(ge=-1, le=0)
    aggressive_above: float = Field(ge=0, le=1)


class StyleRules(Strict):
    """style.yaml: the negotiation-style index (collections-domain.md §5.2)."""

    version: int
    window_s: float = Field(gt=0)
    bands: Bands
    agent_baseline_s: float = Field(gt=0)
    min_baseline_s: float = Field(ge=0, description="Agent speech before rate/loudness z-scores are trusted.")
    min_turn_s: float = Field(gt=0, description="Shorter agent turns are not measured for rate and loudness.")
    min_window_speech_s: float = Field(ge=0)
    aggressive: Aggressive
    passive: Passive
    contingency: Contingency
    phrases: StylePhrases


# -- stress.yaml ---------------------------------------------------------------------------------

FEATURES = ("f0_median_st", "f0_range_st", "loudness_db", "alpha_ratio_db", "spectral_flux", "speech_rate",
            "pause_ratio", "jitter", "hnr_db")
"""The prosodic features assist/analysis/prosody.py measures."""


class Feature(Strict):
    weight: float = Field(ge=-1, le=1)
    scale: float = Field(gt=0)


class StressBaseline(Strict):
    min_s: float = Field(ge=0)
    warmup_s: float = Field(gt=0)
    drift_per_s: float = Field(ge=0, le=1)


class StressLevelRules(Strict):
    gain: float = Field(gt=0)
    center: float
    smoothing: Weight


class StressFile(Strict):
    """stress.yaml: debtor vocal stress (collections-domain.md §5.3)."""

    version: int
    speakers: list[Literal["debtor", "agent"]] = Field(min_length=1)
    baseline: StressBaseline
    features: dict[Literal[FEATURES], Feature] = Field(min_length=1)  # type: ignore[valid-type]
    level: StressLevelRules
    trend_window_s: float = Field(gt=0)


# -- abandon.yaml --------------------------------------------------------------------------------


class MinimalAnswers(Strict):
    weight: Weight
    last_turns: int = Field(ge=1)
    min_turns: int = Field(ge=1)
    max_words: int = Field(ge=0)


class Ramp(Strict):
    """0 at `from`, full at `full` (either direction)."""

    weight: Weight
    from_: float = Field(alias="from")
    full: float

    @model_validator(mode="after")
    def _apart(self) -> Ramp:
        if self.full == self.from_:
            raise ValueError("from and full must differ")
        return self


class Silence(Strict):
    weight: Weight
    from_s: float = Field(ge=0)
    full_s: float = Field(gt=0)


class AgentMonologue(Strict):
    weight: Weight
    above_s: float = Field(gt=0)
    debtor_gap_s: float = Field(ge=0)


class StressRising(Strict):
    weight: Weight
    full_per_min: float = Field(gt=0)


class SentimentDrop(Strict):
    weight: Weight
    lookback_s: float = Field(gt=0)
    full_drop: float = Field(gt=0)


class AbandonCues(Strict):
    minimal_answers: MinimalAnswers
    debtor_silence: Silence
    agent_monologue: AgentMonologue
    stress_rising: StressRising
    stress_high: Ramp
    sentiment_low: Ramp
    sentiment_drop: SentimentDrop


class Alert(Strict):
    on_at: Weight
    off_below: Weight


class ExitGroup(Strict):
    weight: Weight
    phrases: Phrases


class AbandonRules(Strict):
    """abandon.yaml: the hang-up risk (collections-domain.md §5.4)."""

    version: int
    alert: Alert
    emit_min_change: Weight
    step_s: float = Field(gt=0)
    exit_memory_s: float = Field(gt=0)
    cues: AbandonCues
    exit_groups: dict[Code, ExitGroup] = Field(min_length=1)
