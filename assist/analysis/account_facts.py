"""What the agent says checked against the creditor's live account facts (assist/rules/account_rules.yaml):
an amount owed that differs from the facts, a demand for an amount already paid or for a disputed or
time-barred debt, an offer outside the creditor's mandate, and a cease-contact or attorney on file
(critical, as soon as the facts are known)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assist.account import FACTS_KEY
from assist.analysis.base import CallContext
from assist.analysis.fact_prompts import Locale, fact_cards, prompt_events
from assist.analysis.text import PhraseBook, normalise
from assist.analysis.wording import Words
from assist.events import ComplianceWarning, EventBase, Evidence
from assist.qa.extract import find_amounts
from assist.spoken_numbers import spoken_as_digits
from streaming.types import AudioFrame, Speaker, Utterance

if TYPE_CHECKING:
    from assist.rules_schema_qa import AccountRulesFile

GATES = {"cease_contact_on_file": "ACC-CEASE-01", "attorney_on_file": "ACC-ATTY-01"}


@dataclass(frozen=True)
class AccountRule:
    id: str
    severity: str
    title: Words
    citation: Mapping[str, str]

    def cite(self, jurisdiction: str) -> str:
        return self.citation.get(jurisdiction) or self.citation["*"]


@dataclass(frozen=True)
class AccountRules:
    tolerance: float
    cues: PhraseBook
    rules: Mapping[str, AccountRule]
    units: Mapping[str, re.Pattern[str]]
    """months / percent: a number said before one of the unit's words (normalised text, digits)."""
    offer_details: Mapping[str, Words]

    @classmethod
    def from_spec(cls, spec: AccountRulesFile) -> AccountRules:
        """account_rules.yaml as validated by assist/ruleset.py, compiled."""
        rules = {rid: AccountRule(rid, r.severity, r.title, dict(r.citation)) for rid, r in spec.rules.items()}
        return cls(spec.tolerance, PhraseBook.from_rules(dict(spec.cues.items())), rules,
                   {unit: _unit(words) for unit, words in spec.offer_units.items()}, dict(spec.offer_details))


def _unit(words: list[str]) -> re.Pattern[str]:
    return re.compile(rf"\b(\d+(?:\.\d+)?) (?:{'|'.join(re.escape(normalise(w)) for w in words)})\b")


def account_rules() -> AccountRules:
    """The packaged account rules, compiled once (the service hands the analyser its RuleSet's)."""
    from assist.ruleset import packaged_rules

    return packaged_rules().account_book


def _money(value: float, currency: str | None) -> str:
    return f"{value:.2f} {currency or ''}".strip()


class AccountFactsAnalyser:
    """Warnings from the account facts in `ctx.metadata` (assist/account.py puts them there, live)."""

    def __init__(self, ctx: CallContext, book: AccountRules | None = None) -> None:
        self.ctx = ctx
        self.book = book or account_rules()
        self._seen: object = None
        self._gated: set[str] = set()
        self._cards_language: str | None = None

    def on_audio(self, frame: AudioFrame) -> list[EventBase]:
        return self._standing(frame.t)

    def on_tick(self, t: float) -> list[EventBase]:
        return self._standing(t)

    def on_utterance(self, utt: Utterance) -> list[EventBase]:
        out = self._standing(utt.start)
        facts = self.ctx.metadata.get(FACTS_KEY)
        if not facts or not utt.final or utt.speaker is not Speaker.AGENT:
            return out
        norm = normalise(utt.text)
        amounts = [(norm.find(normalise(a.text)), a.value) for a in find_amounts(utt.text)]
        if owed := self._after_cue(norm, "owed", amounts):
            out += self._amount_owed(utt, facts, owed[0])
        if (demanded := self._after_cue(norm, "demand", amounts)) or self.book.cues.any(norm, "demand"):
            out += self._demand(utt, facts, demanded)
        if facts.get("allowed_offers") and self.book.cues.any(norm, "offer"):
            out += self._offer(utt, facts, [v for _, v in amounts])
        return out

    def _after_cue(self, norm: str, cue: str, amounts: list[tuple[int, float]]) -> list[float]:
        """The amounts said after the first of the cue's phrases, nearest first."""
        at = [f" {norm} ".find(f" {p} ") for p in self.book.cues.hits(norm, cue)]
        start = min(at, default=-1)
        return [value for pos, value in sorted(amounts) if start >= 0 and pos >= start]

    def _standing(self, t: float) -> list[EventBase]:
        """What the facts call for whatever is said: the gates, and the fact cards again in the call's
        language when it was detected or switched after they were shown (in the language of the time)."""
        return self._gates(t) + self._cards_in_language(t)

    def _cards_in_language(self, t: float) -> list[EventBase]:
        facts = self.ctx.metadata.get(FACTS_KEY)
        if not facts:
            return []
        language = Locale(self.ctx.language).language
        shown, self._cards_language = self._cards_language, language
        if shown is None or shown == language:
            return []
        return list(prompt_events(self.ctx.call_id, t, fact_cards(facts, language, self.ctx.jurisdiction), language))

    def _gates(self, t: float) -> list[EventBase]:
        """Cease-contact and attorney on file: once, as soon as facts saying so are in the context."""
        facts = self.ctx.metadata.get(FACTS_KEY)
        if facts is self._seen or not facts:
            return []
        self._seen = facts
        due = [rule_id for flag, rule_id in GATES.items() if facts.get(flag) is True and rule_id not in self._gated]
        self._gated.update(due)
        return [self._warn(rule_id, t, None) for rule_id in due]

    def _matches(self, said: float, values: list[Any]) -> bool:
        return any(isinstance(v, int | float) and abs(said - v) <= self.book.tolerance for v in values)

    def _amount_owed(self, utt: Utterance, facts: Mapping[str, Any], said: float) -> list[EventBase]:
        """The first amount after "you owe" / "usted debe" against the balance and amount past due."""
        owed = [facts.get("balance"), facts.get("amount_past_due")]
        if not any(isinstance(v, int | float) for v in owed):
            return []
        if self._matches(said, [*owed, (facts.get("plan") or {}).get("instalment")]):
            return []
        currency = facts.get("currency")
        on_file = " / ".join(_money(v, currency) for v in dict.fromkeys(owed) if v is not None)
        return [self._warn("ACC-AMT-01", utt.end, utt, said=_money(said, currency), owed=on_file)]

    def _demand(self, utt: Utterance, facts: Mapping[str, Any], amounts: list[float]) -> list[EventBase]:
        out: list[EventBase] = []
        if facts.get("dispute_open") is True:
            out.append(self._warn("ACC-DISP-01", utt.end, utt))
        if facts.get("time_barred") is True:
            out.append(self._warn("ACC-TB-01", utt.end, utt))
        paid = [p["amount"] for p in facts.get("payments_since_extract") or []]
        currency = facts.get("currency")
        for said in amounts:
            if self._matches(said, paid) or facts.get("balance") == 0:
                out.append(self._warn("ACC-PAID-01", utt.end, utt, said=_money(said, currency),
                                      paid=", ".join(_money(p, currency) for p in paid) or _money(0, currency)))
                break
        return out

    def _offer(self, utt: Utterance, facts: Mapping[str, Any], amounts: list[float]) -> list[EventBase]:
        """Terms proposed outside allowed_offers: a longer term, a larger discount, a smaller instalment."""
        allowed, currency = facts["allowed_offers"], facts.get("currency")
        text = (spoken_as_digits(utt.text) or (utt.text,))[0]
        norm = normalise(text.replace(",", "."))
        percents = [float(p) for p in re.findall(r"(\d+(?:[.,]\d+)?)\s*%", text)]
        said = {"term": [float(m) for m in self.book.units["months"].findall(norm)],
                "discount": percents + [float(p) for p in self.book.units["percent"].findall(norm)],
                "instalment": amounts if self.book.cues.any(norm, "monthly") else []}
        limits = {"term": (allowed.get("max_term_months"), max, float.__gt__),
                  "discount": (allowed.get("max_discount_pct"), max, float.__gt__),
                  "instalment": (allowed.get("min_instalment"), min, float.__lt__)}
        out: list[EventBase] = []
        for kind, (limit, pick, beyond) in limits.items():
            if limit is None or not said[kind] or not beyond(pick(said[kind]), float(limit)):
                continue
            value = pick(said[kind])
            fmt = (lambda v: _money(v, currency)) if kind == "instalment" else (lambda v: f"{v:g}")
            detail = self.book.offer_details[kind].render(said=fmt(value), allowed=fmt(float(limit)))
            out.append(self._warn("ACC-OFFER-01", utt.end, utt, detail=detail))
        return out

    def _warn(self, rule_id: str, t: float, utt: Utterance | None, **params: Any) -> ComplianceWarning:
        rule = self.book.rules[rule_id]
        params = {k: v.get(self.ctx.language, v.get("en")) if isinstance(v, dict) else v for k, v in params.items()}
        titles = rule.title.render(**params)
        evidence = None if utt is None else Evidence(speaker=utt.speaker, quote=utt.text, start=utt.start, end=utt.end)
        return ComplianceWarning(
            call_id=self.ctx.call_id, t=t, rule_id=rule_id, severity=rule.severity,
            title=titles.get(self.ctx.language, titles["en"]), citation=rule.cite(self.ctx.jurisdiction),
            jurisdiction=self.ctx.jurisdiction, speaker=None if utt is None else utt.speaker, evidence=evidence,
        )
