"""Compliance rule packs: one YAML file per jurisdiction in assist/rules/compliance, edited by the
compliance team, validated here (pydantic: the files are an input boundary) with errors that name the
file, the rule id and the field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from assist.analysis.intent import IntentConfig, intent_config
from assist.analysis.matching import SLOT
from assist.languages import LANG_TAGS, Language

PACKS_DIR = Path(__file__).resolve().parent.parent / "rules" / "compliance"
SLOTS = ("name", "agency", "creditor", "amount", "date", "phone", "time", "person", "n")
_HHMM = re.compile(r"^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")

Severity = Literal["info", "warning", "critical"]
Speaker = Literal["agent", "debtor"]


class RulePackError(ValueError):
    """An invalid rule pack; the message names the file, rule id and field."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _check_phrases(value: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
    if value is None:
        return None
    for tag, phrases in value.items():
        if tag not in LANG_TAGS:
            raise ValueError(f"unknown language tag {tag!r} (use one of {', '.join(LANG_TAGS)})")
        for p in phrases:
            if not isinstance(p, str) or not p.strip():
                raise ValueError(f"{tag}: {p!r} is not a phrase (quote yes/no/on/off and numbers in YAML)")
            if re.search(r"[/()\[\]]", p):
                raise ValueError(f"{tag}: {p!r}: write alternatives as separate phrases, without / ( ) [ ]")
            for slot in SLOT.findall(p):
                if slot not in SLOTS:
                    raise ValueError(f"{tag}: {p!r}: unknown slot <{slot}> (use one of {', '.join(SLOTS)})")
    if not any(value.values()):
        raise ValueError("no phrases")
    return value


Phrases = Annotated[dict[str, list[Any]], Field(description="Language tag -> phrases.")]


class Title(_Model):
    en: str
    es: str


class Condition(_Model):
    """Holds when metadata at `field` (dotted path, e.g. account.time_barred) is one of `in`;
    `missing` is its value when the field is absent."""

    field: str
    in_: list[Any] = Field(alias="in", min_length=1)
    missing: bool = False


class _Rule(_Model):
    id: str = Field(pattern=r"^[A-Z]{2}-[A-Z0-9]+-\d{2}$")
    ref: str = Field("", description="Source list/table in collections-domain.md, e.g. L09 or §1.6.")
    title: Title
    severity: Severity
    speaker: Speaker = "agent"
    source: str = Field(min_length=3, description="Legal citation shown with the warning.")
    when: list[Condition] = Field([], description="Rule applies only if all hold.")
    unless: list[Condition] = Field([], description="Rule is off if all hold (e.g. the threat is true).")
    channels: list[Literal["voice", "text"]] = Field(
        ["voice", "text"], min_length=1, description="Where the rule applies: spoken calls, written conversations.")


class Window(_Model):
    """Permitted local hours per day type, 'HH:MM-HH:MM'; null = no calls that day."""

    weekday: str | None
    saturday: str | None
    sunday: str | None

    @field_validator("weekday", "saturday", "sunday")
    @classmethod
    def _hhmm(cls, v: str | None) -> str | None:
        if v is not None and not _HHMM.match(v):
            raise ValueError(f"{v!r} is not HH:MM-HH:MM")
        return v


class Ledger(_Model):
    """Fires when metadata['ledger'][field] is above `above` or below `below`."""

    field: str
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Ledger:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above/below")
        return self


class GateRule(_Rule):
    """Checked once at call start from metadata."""

    type: Literal["gate"]
    window: Window | None = None
    ledger: Ledger | None = None
    flags: list[str] = Field([], description="metadata['account'] flags; any true fires.")

    @model_validator(mode="after")
    def _one_check(self) -> GateRule:
        if sum(x is not None and x != [] for x in (self.window, self.ledger, self.flags)) != 1:
            raise ValueError("a gate needs exactly one of window/ledger/flags")
        return self


def _family_of(head: str | None) -> Any:
    """A validator: the family is None or one of the labels of intent.yaml's `head` (no head: None only);
    intent.yaml is the one in the validation context (the same rules folder), else the packaged one."""

    def check(value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if head is None:
            raise ValueError("only must_not_say and trigger rules have a family")
        config: IntentConfig = (info.context or {}).get("intent") or intent_config()
        labels = config.heads[head].labels  # type: ignore[index]
        if value not in labels:
            raise ValueError(f"{value!r} is not one of {', '.join(labels)} (assist/rules/intent.yaml heads.{head})")
        return value

    return field_validator("family")(check)


class _PhraseRule(_Rule):
    phrases: Phrases
    similarity: float | None = Field(None, ge=0.3, le=1.0, description="Overrides the pack's threshold.")
    semantic: bool = True
    family: str | None = Field(
        None, description="Meaning class a trained head also recognises (assist/rules/intent.yaml labels)."
    )

    _phrases = field_validator("phrases")(_check_phrases)
    _family = _family_of(None)


class Deadline(_Model):
    from_: Literal["start", "verified"] = Field(alias="from")
    seconds: float = Field(gt=0)


class MustSayRule(_PhraseRule):
    """The agent must say one of `phrases` (and one of `also`, if given) before the deadline."""

    type: Literal["must_say"]
    also: Phrases | None = None
    deadline: Deadline

    _also = field_validator("also")(_check_phrases)


class MustNotSayRule(_PhraseRule):
    """Prohibited language; a negator just before a phrase lowers the severity one step (L35)."""

    type: Literal["must_not_say"]

    _family = _family_of("agent")


class SequenceRule(_PhraseRule):
    """`phrases` (debt-disclosure tokens) must not come before the right party is verified: an agent
    `verify_prompts` phrase answered by a debtor `confirmations` phrase within `verify_window_s`,
    unless the answer has `third_party_cues`, or metadata identity_verified."""

    type: Literal["sequence"]
    semantic: bool = False
    verify_prompts: Phrases
    confirmations: Phrases
    third_party_cues: Phrases
    verify_window_s: float = Field(30.0, gt=0)

    _lists = field_validator("verify_prompts", "confirmations", "third_party_cues")(_check_phrases)


class Acknowledge(_Model):
    phrases: Phrases
    within_s: float = Field(gt=0)
    severity: Severity
    title: Title

    _phrases = field_validator("phrases")(_check_phrases)


class TriggerRule(_PhraseRule):
    """The debtor says one of `phrases` -> the agent must acknowledge within `acknowledge.within_s` and
    must not carry on collecting (pack `collection_phrases` or `forbidden_after`) for the rest of the call."""

    type: Literal["trigger"]
    speaker: Speaker = "debtor"
    acknowledge: Acknowledge
    forbidden_after: Phrases | None = None

    _family = _family_of("debtor")

    _forbidden = field_validator("forbidden_after")(_check_phrases)


Rule = Annotated[GateRule | MustSayRule | MustNotSayRule | SequenceRule | TriggerRule, Field(discriminator="type")]


class Semantic(_Model):
    threshold: float = Field(ge=0.3, le=1.0, description="Cosine similarity for a paraphrase to match.")
    min_tokens: int = Field(3, ge=1, description="Shorter sentences are matched by phrase only.")
    neutral: Phrases = Field(description="Ordinary call sentences: a paraphrase must beat the closest by `margin`.")
    margin: float = Field(0.05, ge=0, le=0.5)

    _neutral = field_validator("neutral")(_check_phrases)


class RulePack(_Model):
    jurisdiction: str = Field(pattern=r"^[a-z]{2}$")
    name: str
    version: int
    languages: list[Language] = Field(min_length=1)
    eu_mode: bool = Field(False, description="Calls under this pack run in EU mode: no agent emotion inference "
                          "(EU AI Act Art. 5(1)(f)); the setting eu_mode overrides it.")
    timezone: str | None = Field(None, description="Debtor timezone when metadata has none.")
    deadline_grace_s: float = Field(1.5, ge=0, description="ASR latency allowed after a deadline.")
    semantic: Semantic
    negators: Phrases
    collection_phrases: Phrases
    rules: list[Rule] = Field(min_length=1)
    _digest: int = PrivateAttr(0)

    _lists = field_validator("negators", "collection_phrases")(_check_phrases)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown IANA timezone {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> RulePack:
        ids = [r.id for r in self.rules]
        if dup := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"duplicate rule ids {dup}")
        return self

    def model_post_init(self, context: Any) -> None:
        self._digest = hash(self.model_dump_json())

    def __hash__(self) -> int:
        """By content (computed once): a pack keys its compiled phrase indexes (assist/analysis/packindex.py),
        shared by every RuleSet that holds the same pack."""
        return self._digest


def describe_pack_error(raw: Any, err: Any) -> tuple[str, str]:
    """('rule US-THR-01, field phrases.en.3', message) from a pydantic error location."""
    loc = list(err["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = raw.get("rules") if isinstance(raw, dict) else None
        rule = rules[loc[1]] if isinstance(rules, list) and loc[1] < len(rules) else None
        rid = rule.get("id") if isinstance(rule, dict) else None
        where = f"rule {rid or f'#{loc[1] + 1} (no id)'}, "
        loc = (
            loc[3:]
            if len(loc) > 2 and loc[2] in ("gate", "must_say", "must_not_say", "sequence", "trigger")
            else loc[2:]
        )
    if where and not loc and err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = ["type"]
    field = ".".join(str(p) for p in loc) or "(pack)"
    return f"{where}field {field}", err["msg"]


def parse_pack(path: Path) -> RulePack:
    """Read and validate one pack file; RulePackError names the file, rule id and field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RulePackError(f"{path}: not valid YAML: {exc}") from exc
    try:
        pack = RulePack.model_validate(raw)
    except ValidationError as exc:
        lines = "\n  ".join(": ".join(describe_pack_error(raw, e)) for e in exc.errors())
        raise RulePackError(f"{path}: invalid rule pack:\n  {lines}") from None
    if pack.jurisdiction != path.stem:
        raise RulePackError(f"{path}: field jurisdiction: {pack.jurisdiction!r} must match the file name")
    return pack


def load_rule_pack(jurisdiction: str) -> RulePack:
    """The packaged pack for a jurisdiction code (us, uk, es, mx, co, pe); the service takes its packs
    from its RuleSet (assist/ruleset.py) instead."""
    from assist.ruleset import packaged_rules

    return packaged_rules().pack(jurisdiction)


def validate_all_packs(directory: Path = PACKS_DIR) -> dict[str, RulePack]:
    """Validate every pack of a folder; raises RulePackError for the first invalid file."""
    packs = {p.stem: parse_pack(p) for p in sorted(directory.glob("*.yaml"))}
    if not packs:
        raise RulePackError(f"{directory}: no rule packs found")
    return packs
