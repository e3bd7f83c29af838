"""QA scorecard data: item results with evidence and why, the card's totals and band, and the card's
rules (assist/rules/scorecard.yaml) typed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from assist.analysis.text import PhraseBook
from assist.analysis.wording import Words
from assist.qa.calldata import Turn

if TYPE_CHECKING:
    from assist.rules_schema_qa import ScorecardFile, ScoreItem

Result = Literal["pass", "fail", "na"]
RESULTS: tuple[Result, ...] = ("pass", "fail", "na")


@dataclass(frozen=True)
class Quote:
    speaker: str
    quote: str
    start: float
    end: float

    @classmethod
    def of(cls, turn: Turn) -> Quote:
        return cls(turn.speaker, turn.text, turn.start, turn.end)


@dataclass(frozen=True)
class ItemScore:
    """One scorecard item (or a gate check, section "gate", 0 points)."""

    id: str
    section: str
    title: str
    points: float
    result: Result
    why: str
    evidence: tuple[Quote, ...] = ()
    titles: Mapping[str, str] = field(default_factory=dict)  # the title in each language (`title`: the call's)
    whys: Mapping[str, str] = field(default_factory=dict)  # `why` in each language (`why`: the call's)

    @property
    def earned(self) -> float:
        return self.points if self.result == "pass" else 0.0


@dataclass(frozen=True)
class Scorecard:
    """`score` is None when no item applies; `band` is compliance_fail whenever the gate fails; `bands` are
    the thresholds it was banded with (kept, so that a reviewer's override is banded the same way)."""

    items: tuple[ItemScore, ...]
    gate: tuple[ItemScore, ...]
    score: float | None
    band: str
    compliance_fail: bool
    sections: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    section_titles: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # section -> language -> title
    bands: Mapping[str, float] = field(default_factory=dict)

    def item(self, item_id: str) -> ItemScore:
        return next(i for i in (*self.items, *self.gate) if i.id == item_id)

    def to_dict(self) -> dict[str, Any]:
        def item(i: ItemScore) -> dict[str, Any]:
            return {**{k: getattr(i, k) for k in ("id", "section", "title", "points", "result", "why")},
                    "evidence": [q.__dict__.copy() for q in i.evidence], "titles": dict(i.titles),
                    "whys": dict(i.whys)}

        return {"score": self.score, "band": self.band, "compliance_fail": self.compliance_fail,
                "sections": {k: dict(v) for k, v in self.sections.items()},
                "section_titles": {k: dict(v) for k, v in self.section_titles.items()}, "bands": dict(self.bands),
                "gate": [item(i) for i in self.gate], "items": [item(i) for i in self.items]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], bands: Mapping[str, float] | None = None) -> Scorecard:
        """A stored scorecard, banded by `bands`, else the ones it was stored with, else the packaged ones."""
        def item(d: Mapping[str, Any]) -> ItemScore:
            ev = tuple(Quote(**q) for q in d.get("evidence", ()))
            return ItemScore(d["id"], d["section"], d["title"], float(d["points"]), d["result"], d["why"], ev,
                             d.get("titles", {}), d.get("whys", {}))

        return summarise([item(d) for d in raw["items"]], [item(d) for d in raw["gate"]],
                         bands or raw.get("bands"), raw.get("section_titles", {}))


def summarise(items: Iterable[ItemScore], gate: Iterable[ItemScore], bands: Mapping[str, float] | None = None,
              section_titles: Mapping[str, Mapping[str, str]] | None = None) -> Scorecard:
    """Score, band and section totals from item results (used again after a reviewer's override)."""
    items, gate = tuple(items), tuple(gate)
    bands = bands or default_card().bands
    sections: dict[str, dict[str, float]] = {}
    for i in items:
        s = sections.setdefault(i.section, {"earned": 0.0, "applicable": 0.0})
        if i.result != "na":
            s["earned"] += i.earned
            s["applicable"] += i.points
    applicable = sum(s["applicable"] for s in sections.values())
    score = round(100 * sum(s["earned"] for s in sections.values()) / applicable, 1) if applicable else None
    failed = any(g.result == "fail" for g in gate)
    if failed:
        band = "compliance_fail"
    elif score is None:
        band = "not_scored"
    else:
        band = ("meets_standard" if score >= bands["meets"]
                else "coaching" if score >= bands["coaching"] else "below_standard")
    return Scorecard(items, gate, score, band, failed, sections, section_titles or {}, dict(bands))


@dataclass(frozen=True)
class CardRules:
    """scorecard.yaml (validated by assist/ruleset.py), phrases compiled."""

    items: Mapping[str, ScoreItem]
    phrases: PhraseBook
    bands: Mapping[str, float]
    groups: Mapping[str, frozenset[str]]
    titles: Mapping[str, Mapping[str, str]]  # item id -> language -> title
    section_titles: Mapping[str, Mapping[str, str]]  # section -> language -> title
    whys: Mapping[str, Words]  # why an item got its result, by code
    terms: Mapping[str, Words]  # words the whys list

    @classmethod
    def from_spec(cls, spec: ScorecardFile) -> CardRules:
        return cls(
            spec.items, PhraseBook.from_rules(spec.phrases), spec.bands.model_dump(),
            {k: frozenset(v) for k, v in spec.groups.items()},
            {k: v.title.render() for k, v in spec.items.items()}, {k: v.render() for k, v in spec.sections.items()},
            spec.why, spec.terms,
        )


def default_card() -> CardRules:
    """The packaged scorecard (the service scores with its RuleSet's `card`)."""
    from assist.ruleset import packaged_rules

    return packaged_rules().card
