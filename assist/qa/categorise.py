"""Call categorisation: contact type x outcome tags, with promise/callback details (EN/ES)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assist.analysis.text import PhraseBook, normalise
from assist.qa.calldata import CallData, Turn
from assist.qa.extract import find_amounts, find_dates, find_time

if TYPE_CHECKING:
    from assist.rules_schema_qa import CategoryFile, OutcomeCue

CONTACT_ORDER = ("voicemail", "wrong_number", "right_party", "third_party")


@dataclass(frozen=True)
class Cue:
    """Why a tag was given: the phrase found and where."""

    phrase: str
    speaker: str
    quote: str
    start: float
    end: float


@dataclass(frozen=True)
class Outcome:
    code: str
    cue: Cue
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Category:
    """`contact` is one of CONTACT_ORDER; `outcomes` in call order; `primary` by the rules' priority."""

    contact: str
    contact_cue: Cue | None
    outcomes: tuple[Outcome, ...]
    primary: str | None
    language: str
    titles: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # code -> language -> title

    def has(self, code: str) -> bool:
        return any(o.code == code for o in self.outcomes)

    def get(self, code: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        def cue(c: Cue | None) -> dict[str, Any] | None:
            return None if c is None else c.__dict__.copy()

        return {
            "contact": self.contact,
            "contact_cue": cue(self.contact_cue),
            "primary": self.primary,
            "language": self.language,
            "outcomes": [{"code": o.code, "cue": cue(o.cue), "details": dict(o.details)} for o in self.outcomes],
            "titles": {k: dict(v) for k, v in self.titles.items()},
        }


@dataclass(frozen=True)
class CategoryRules:
    """categories.yaml, phrases normalised once."""

    contact: PhraseBook
    outcomes: PhraseBook
    subtypes: Mapping[str, PhraseBook]
    methods: PhraseBook
    speakers: Mapping[str, str]
    needs: Mapping[str, tuple[str, ...]]
    priority: tuple[str, ...]
    contact_window: int
    window: int
    titles: Mapping[str, Mapping[str, str]]  # code -> language -> title

    @classmethod
    def from_spec(cls, spec: CategoryFile) -> CategoryRules:
        def langs(entry: OutcomeCue) -> dict[str, list[str]]:
            """An entry's phrases by language; an entry with subtypes also gets all of theirs."""
            merged: dict[str, list[str]] = {lang: list(phrases) for lang, phrases in entry.phrases.items()}
            for sub in entry.subtypes.values():
                for lang, phrases in sub.items():
                    merged.setdefault(lang, []).extend(phrases)
            return merged

        return cls(
            contact=PhraseBook.from_rules({k: v.phrases for k, v in spec.contact.items()}),
            outcomes=PhraseBook.from_rules({k: langs(v) for k, v in spec.outcomes.items()}),
            subtypes={k: PhraseBook.from_rules(v.subtypes) for k, v in spec.outcomes.items() if v.subtypes},
            methods=PhraseBook.from_rules(spec.payment_methods),
            speakers={k: v.speaker for cues in (spec.contact, spec.outcomes) for k, v in cues.items()},
            needs={k: tuple(v.needs) for k, v in spec.outcomes.items()},
            priority=tuple(spec.priority),
            contact_window=spec.contact_window_turns,
            window=spec.window_turns,
            titles={k: v.render() for k, v in spec.titles.items()},
        )


def default_rules() -> CategoryRules:
    """The packaged categories (the service categorises with its RuleSet's `category_rules`)."""
    from assist.ruleset import packaged_rules

    return packaged_rules().category_rules


def _cue(phrase: str, turn: Turn) -> Cue:
    return Cue(phrase, turn.speaker, turn.text, turn.start, turn.end)


def _speaks(turn: Turn, who: str) -> bool:
    return who == "any" or turn.speaker == who


def _subtype(book: PhraseBook, norm: str) -> str | None:
    return next((k for k in book.phrases if book.any(norm, k)), None)


def _method(rules: CategoryRules, norm: str) -> str | None:
    hits = [(len(p), m) for m in rules.methods.phrases for p in rules.methods.hits(norm, m)]
    return max(hits)[1] if hits else None


def _commitment(call: CallData, rules: CategoryRules, idx: int) -> dict[str, Any]:
    """Amount, date, method and time mentioned near turn `idx`: the debtor's nearest turns first."""
    ref = call.started_at.date() if call.started_at else None
    lo, hi = max(0, idx - rules.window), min(len(call.turns), idx + rules.window + 1)
    order = sorted(range(lo, hi), key=lambda i: (call.turns[i].speaker != "debtor", abs(i - idx), -i))
    details: dict[str, Any] = {}
    for i in order:
        turn = call.turns[i]
        amounts = find_amounts(turn.text)
        dates = find_dates(turn.text, ref)
        if amounts and "amount" not in details:
            details["amount"], details["currency"] = amounts[-1].value, amounts[-1].currency
        if dates and "date" not in details:
            details["date_text"] = dates[-1].text
            details["date"] = dates[-1].value.isoformat() if dates[-1].value else None
        if "method" not in details and (method := _method(rules, turn.norm)):
            details["method"] = method
        if "time" not in details and (time := find_time(turn.text)):
            details["time"] = time
    return details


def _contact(call: CallData, rules: CategoryRules) -> tuple[str, Cue | None]:
    debtor = call.of("debtor")[: rules.contact_window]
    if not debtor:
        return "voicemail", None
    for code in CONTACT_ORDER:
        for turn in debtor:
            if hits := rules.contact.hits(turn.norm, code):
                return code, _cue(hits[0], turn)
    return "right_party", None


def categorise(call: CallData, rules: CategoryRules | None = None) -> Category:
    """Contact type and outcome tags of a stored call; a pure function of its turns."""
    rules = rules or default_rules()
    contact, contact_cue = _contact(call, rules)
    outcomes: dict[str, Outcome] = {}
    if contact in ("right_party", "third_party"):
        for idx, turn in enumerate(call.turns):
            for code in rules.outcomes.phrases:
                if code in outcomes or not _speaks(turn, rules.speakers[code]):
                    continue
                hits = rules.outcomes.hits(turn.norm, code)
                if not hits:
                    continue
                details: dict[str, Any] = {}
                if code in rules.subtypes:
                    details["kind"] = _subtype(rules.subtypes[code], turn.norm)
                if code in ("promise_to_pay", "callback", "payment_plan", "partial_payment", "settled"):
                    details.update(_commitment(call, rules, idx))
                if any(details.get(n) is None for n in rules.needs[code]):
                    continue
                outcomes[code] = Outcome(code, _cue(hits[0], turn), details)
    ordered = tuple(sorted(outcomes.values(), key=lambda o: o.cue.start))
    primary = next((c for c in rules.priority if c in outcomes), None)
    codes = {contact, *outcomes} | {o.details[k] for o in ordered for k in ("kind", "method") if o.details.get(k)}
    titles = {c: rules.titles[c] for c in sorted(codes) if c in rules.titles}
    return Category(contact, contact_cue, ordered, primary, call.language, titles)


def categorise_text(text: str, speaker: str = "debtor", rules: CategoryRules | None = None) -> set[str]:
    """Outcome tags whose cues occur in one piece of text (for single-utterance evaluation)."""
    rules = rules or default_rules()
    norm = normalise(text)
    return {
        c for c in rules.outcomes.phrases if rules.speakers[c] in (speaker, "any") and rules.outcomes.any(norm, c)
    }
