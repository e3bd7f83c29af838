"""The after-call summary: a structured wrap-up note in the call's language (outcome, what was agreed,
objections, hardship, compliance issues, account facts, next steps), built only from what the categoriser,
the analysers and the account facts found. Every line names its source: the utterance a cue was heard in,
or the event (seq) it came from. Texts are data: assist/rules/summary.yaml."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from assist.events import AccountUpdated, ComplianceWarning, EventBase, QaScore
from assist.qa.calldata import standing_warnings

NEXT_STEPS = {"promise_to_pay": "next_promise", "payment_plan": "next_promise", "dispute": "next_dispute",
              "cease_contact": "next_cease", "callback": "next_callback"}


@lru_cache(maxsize=1)
def _rules() -> dict[str, Any]:
    from assist.ruleset import packaged_rules

    return dict(packaged_rules().summary)


def _text(code: str, language: str, **params: Any) -> str:
    rendered = _rules()["lines"][code].render(**params)
    return rendered.get(language, rendered["en"])


def _cue_source(outcome: Mapping[str, Any]) -> dict[str, Any]:
    cue = outcome["cue"]
    return {"kind": "utterance", **{k: cue[k] for k in ("speaker", "quote", "start", "end")}}


def _money(amount: Any, currency: Any, unknown: str) -> str:
    return unknown if amount is None else f"{float(amount):.2f} {currency or ''}".strip()


class _Note:
    """The lines being written, in one language."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.lines: list[dict[str, Any]] = []
        self.unknown = _text("unknown", language)

    def add(self, section: str, code: str, source: dict[str, Any], **params: Any) -> None:
        params = {k: self.unknown if v is None else v for k, v in params.items()}
        self.lines.append({"section": section, "code": code, "text": _text(code, self.language, **params),
                           "source": source})


def _outcomes(note: _Note, category: Mapping[str, Any]) -> None:
    titles = category.get("titles", {})

    def title(code: str) -> str:
        return titles.get(code, {}).get(note.language) or code

    rules = _rules()
    by_code = {o["code"]: o for o in category.get("outcomes", [])}
    if (primary := category.get("primary")) in by_code:
        note.add("outcome", "outcome", _cue_source(by_code[primary]), title=title(str(primary)))
    for code, o in by_code.items():
        d, src = o.get("details", {}), _cue_source(o)
        amount = _money(d.get("amount"), d.get("currency"), note.unknown)
        if code in ("promise_to_pay", "payment_plan", "callback"):
            note.add("agreed", code, src, amount=amount, date=d.get("date") or d.get("date_text"),
                     method=title(d["method"]) if d.get("method") else None)
        elif code in rules["objections"]:
            note.add("objections", "objection", src, title=title(d.get("kind") or code))
        elif code in rules["hardship"]:
            note.add("hardship", "hardship", src, title=title(code))
        if code in NEXT_STEPS:
            note.add("next_steps", NEXT_STEPS[code], src, amount=amount, date=d.get("date") or d.get("date_text"))


def after_call_summary(events: Iterable[EventBase]) -> dict[str, Any]:
    """{"language", "lines": [{"section", "code", "text", "source"}]} of an ended call's event log."""
    events = list(events)
    qa = next((e for e in reversed(events) if isinstance(e, QaScore)), None)
    category = qa.category if qa else {}
    note = _Note(category.get("language") or "en")
    _outcomes(note, category)
    payloads = {e.seq: e.model_dump(mode="json") for e in events if isinstance(e, ComplianceWarning)}
    for w in standing_warnings(payloads.values(), lambda p: p):
        note.add("compliance", "compliance", {"kind": "event", "seq": w["seq"]}, rule_id=w["rule_id"],
                 title=w["title"])
    facts = next((e for e in reversed(events) if isinstance(e, AccountUpdated)), None)
    for i, p in enumerate(facts.facts.get("payments_since_extract", []) if facts else []):
        assert facts is not None
        source = {"kind": "fact", "seq": facts.seq, "field": f"payments_since_extract.{i}"}
        amount = _money(p["amount"], facts.facts.get("currency"), note.unknown)
        note.add("facts", "payment_on_file", source, amount=amount, date=p["date"])
    order = {s: i for i, s in enumerate(_rules()["sections"])}
    return {"language": note.language, "lines": sorted(note.lines, key=lambda line: order[line["section"]])}
