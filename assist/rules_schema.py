"""Schemas of the rules files that had none (style, stress, abandon, categories, scorecard, summary,
metadata, number_words, account_rules): pydantic, unknown keys refused, so that a typo stops the service
at start-up (assist/ruleset.py) instead of surfacing mid-call."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assist.analysis.wording import Words
from assist.languages import LANGUAGES, Language

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


# -- categories.yaml -----------------------------------------------------------------------------


class _Cued(Strict):
    """An entry whose phrases sit beside its other keys, one list per language (en: [...], es: [...])."""

    speaker: Literal["agent", "debtor", "any"]
    phrases: Phrases = {}

    @model_validator(mode="before")
    @classmethod
    def _gather(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            raw = dict(raw)
            raw["phrases"] = {lang: raw.pop(lang) for lang in LANGUAGES if lang in raw}
        return raw


class ContactCue(_Cued):
    pass


class OutcomeCue(_Cued):
    needs: list[Literal["amount", "date", "method", "time"]] = []
    subtypes: dict[Code, Phrases] = {}


class CategoryFile(Strict):
    """categories.yaml: contact types and outcome tags (collections-domain.md §3)."""

    version: int
    contact_window_turns: int = Field(ge=1)
    contact: dict[Literal["voicemail", "wrong_number", "right_party", "third_party"], ContactCue]
    priority: list[Code]
    outcomes: dict[Code, OutcomeCue] = Field(min_length=1)
    window_turns: int = Field(ge=0)
    payment_methods: dict[Code, Phrases]
    titles: dict[Code, Words]

    @model_validator(mode="after")
    def _known_codes(self) -> CategoryFile:
        if unknown := sorted(set(self.priority) - set(self.outcomes)):
            raise ValueError(f"priority names codes that are not outcomes: {unknown}")
        if missing := sorted(set(self.outcomes) - set(self.priority)):
            raise ValueError(f"outcomes missing from priority: {missing}")
        subtypes = {s for o in self.outcomes.values() for s in o.subtypes}
        codes = {*self.contact, *self.outcomes, *subtypes, *self.payment_methods}
        if untitled := sorted(codes - set(self.titles)):
            raise ValueError(f"codes without a title: {untitled}")
        return self


# -- scorecard.yaml ------------------------------------------------------------------------------


class ScoreItem(BaseModel):
    """One weighted item; `check` names the function of assist/qa/scorecard.py that judges it, and the
    other keys are that check's parameters (assist/ruleset.py checks both)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    section: Code
    points: float = Field(gt=0)
    title: Words
    check: Code
    channels: list[Literal["voice", "text"]] = Field(["voice", "text"], min_length=1)

    @property
    def params(self) -> dict[str, float]:
        return dict(self.model_extra or {})


class ScoreBands(Strict):
    meets: float = Field(ge=0, le=100)
    coaching: float = Field(ge=0, le=100)


GROUPS = ("legal_stop", "agreement", "hardship", "objection", "vulnerable")
"""The outcome groups the scorecard's checks ask about."""


class ScorecardFile(Strict):
    """scorecard.yaml: the QA scorecard (collections-domain.md §2.2)."""

    version: int
    bands: ScoreBands
    sections: dict[Code, Words]
    items: dict[Annotated[str, Field(pattern=r"^[A-Z]\d+$")], ScoreItem] = Field(min_length=1)
    why: dict[Code, Words]
    terms: dict[Code, Words]
    groups: dict[Literal[GROUPS], list[Code]]  # type: ignore[valid-type]
    phrases: dict[Code, Phrases]

    @model_validator(mode="after")
    def _consistent(self) -> ScorecardFile:
        if missing := sorted(set(GROUPS) - set(self.groups)):
            raise ValueError(f"groups missing: {missing}")
        if unknown := sorted({i.section for i in self.items.values()} - set(self.sections)):
            raise ValueError(f"items name sections without a title: {unknown}")
        return self


# -- summary.yaml, metadata.yaml, number_words.yaml, account_rules.yaml --------------------------


class SummaryRules(Strict):
    """summary.yaml: the after-call summary's lines."""

    version: int
    sections: list[Code]
    objections: list[Code]
    hardship: list[Code]
    lines: dict[Code, Words]


class MetadataRules(Strict):
    """metadata.yaml: the call metadata kept at ingest (everything else is dropped)."""

    keys: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")]] = Field(min_length=1)
    nested: list[str] = []


Digits = Annotated[str, Field(pattern=r"^\d{1,2}$")]


class NumberWordsFile(Strict):
    """number_words.yaml: spoken numbers, so that numbers read out as words are redacted like digits."""

    digits: dict[Language, dict[str, Digits]]
    tens: dict[Language, dict[str, Annotated[str, Field(pattern=r"^\d$")]]]
    hundreds: dict[Language, dict[str, Annotated[str, Field(pattern=r"^\d$")]]]
    multipliers: dict[Language, dict[str, Annotated[int, Field(ge=1)]]]
    joiners: dict[Language, list[str]]
    repeat: dict[Language, dict[str, Annotated[int, Field(ge=2)]]]


class AccountRule(Strict):
    severity: Literal["warning", "critical"]
    title: Words
    citation: dict[str, str]

    @field_validator("citation")
    @classmethod
    def _fallback(cls, v: dict[str, str]) -> dict[str, str]:
        if "*" not in v:
            raise ValueError("needs a '*' citation (used where the jurisdiction has none)")
        return v


class AccountRulesFile(Strict):
    """account_rules.yaml: what the agent says checked against the creditor's live account facts."""

    version: int
    tolerance: float = Field(ge=0)
    cues: dict[Literal["owed", "demand", "offer", "monthly"], Phrases]
    offer_units: dict[Literal["months", "percent"], list[Phrase]]
    rules: dict[Annotated[str, Field(pattern=r"^[A-Z]+-[A-Z]+-\d{2}$")], AccountRule]
    offer_details: dict[Code, Words]
    changes: dict[str, Words]
    fields: dict[Code, Words]
