"""What the compliance analyser found in an utterance: phrase and meaning hits with their negation, the
findings they make, and the debtor triggers awaiting acknowledgement (assist/analysis/compliance.py)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from assist.analysis.matching import Match, Tokens, is_negated, outside_conditions
from assist.analysis.packindex import CONDITIONALS, HEDGES, NEGATORS, NOT_PAYING
from assist.events import Evidence
from streaming.types import Speaker

LOWER = {"critical": "warning", "warning": "info", "info": "info"}
RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Hit:
    """Where a phrase list matched in an utterance."""

    speaker: Speaker
    quote: str
    start: float
    end: float
    negated: bool
    hedged: bool = False  # the negator is a hedge ("I'm not saying ..."): still a threat, one step lower

    @property
    def evidence(self) -> Evidence:
        return Evidence(speaker=self.speaker, quote=self.quote, start=self.start, end=self.end)


@dataclass(frozen=True)
class Negation:
    """An utterance's negators and hedges; negators of a condition ("if you don't ...") or of paying
    ("not paying is a crime") are left out: they do not negate the threat that follows."""

    tokens: Tokens
    negators: list[Match]
    hedges: list[Match]

    @classmethod
    def of(cls, tokens: Tokens, found: Mapping[Hashable, list[Match]]) -> Negation:
        unpaid = found.get(NOT_PAYING, [])
        negators = [
            m for m in outside_conditions(tokens, found.get(NEGATORS, []), found.get(CONDITIONALS, []))
            if not any(p.start <= m.start < p.end for p in unpaid)
        ]
        return cls(tokens, negators, found.get(HEDGES, []))

    def match(self, m: Match) -> tuple[bool, bool]:
        """(negated, hedged) for a phrase match."""
        return is_negated(self.tokens, m, self.negators), is_negated(self.tokens, m, self.hedges)

    def span(self, a: int, b: int) -> tuple[bool, bool]:
        """(negated, hedged) for a sentence or clause [a, b)."""
        return any(a <= m.start < b for m in self.negators), any(a <= m.start < b for m in self.hedges)


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: str
    hit: Hit


@dataclass
class Trigger:
    hit: Hit
    acked: bool = False


def after(hits: list[Hit], trig: Trigger) -> list[Hit]:
    """The un-negated hits said after the trigger."""
    return [h for h in hits if h.start >= trig.hit.start and not h.negated]
