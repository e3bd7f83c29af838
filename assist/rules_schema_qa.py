"""Schemas of the after-call and data rules files (categories, scorecard, summary, metadata, number_words,
account_rules): pydantic, unknown keys refused (assist/ruleset.py loads them at start-up)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assist.analysis.wording import Words
from assist.languages import LANGUAGES, Language
from assist.rules_schema import Code, Phrase, Phrases, Strict

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
