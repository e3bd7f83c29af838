"""Prompt cards from the creditor's account facts (assist/rules/fact_prompts.yaml): acknowledge a recent
payment, the plan options the creditor allows, pause collection on a disputed debt. Cards are worked out
from the facts alone; `changed_cards` gives the ones a change of facts makes new or different, so a card
goes out when the call starts with facts and again only when account.updated changes what it says."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assist.analysis.text import load_rules
from assist.analysis.wording import Words
from assist.events import PromptCard


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumberFormat(_Data):
    decimal: str = Field(min_length=1, max_length=1)
    thousands: str = Field(min_length=1, max_length=1)
    date: str


class CardWords(_Data):
    title: Words
    say: dict[str, Words]
    avoid: dict[str, Words]
    suppressed_by: list[str] = []


class FactPromptBook(_Data):
    version: int
    recent_days: int = Field(ge=0)
    max_payments: int = Field(ge=1)
    number_formats: dict[str, NumberFormat]
    cards: dict[str, CardWords]


@lru_cache(maxsize=1)
def book() -> FactPromptBook:
    """assist/rules/fact_prompts.yaml, validated once."""
    return FactPromptBook.model_validate(load_rules("fact_prompts"))


@dataclass(frozen=True)
class FactCard:
    """One card in one language: what the agent reads."""

    card_id: str
    title: str
    say: tuple[str, ...]
    avoid: tuple[str, ...]


class Locale:
    """How the call's language (and country, where it differs) writes amounts, percentages and dates."""

    def __init__(self, language: str, jurisdiction: str = "") -> None:
        self.language = "es" if language.startswith("es") else "en"
        formats = book().number_formats
        self.fmt = formats.get(f"{self.language}-{jurisdiction}") or formats[self.language]

    def number(self, value: float, decimals: int) -> str:
        text = f"{value:,.{decimals}f}"
        return text.translate(str.maketrans(",.", self.fmt.thousands + self.fmt.decimal))

    def money(self, value: float, currency: str | None) -> str:
        return f"{self.number(value, 2)} {currency or ''}".strip()

    def percent(self, value: float) -> str:
        return self.number(value, 0 if float(value).is_integer() else 1)

    def date(self, iso: str) -> str:
        return dt.date.fromisoformat(iso).strftime(self.fmt.date)


def _card(card_id: str, loc: Locale, say: list[tuple[str, dict[str, Any]]],
          avoid: list[tuple[str, dict[str, Any]]]) -> FactCard:
    words = book().cards[card_id]

    def text(w: Words, params: dict[str, Any]) -> str:
        return w.render(**params)[loc.language]

    return FactCard(card_id, text(words.title, {}), tuple(text(words.say[k], p) for k, p in say),
                    tuple(text(words.avoid[k], p) for k, p in avoid))


def _payments(facts: Mapping[str, Any], loc: Locale, today: dt.date) -> FactCard | None:
    """The recent payments (newest first), each to be acknowledged; never to be asked for again."""
    b, currency = book(), facts.get("currency")
    recent = [p for p in facts.get("payments_since_extract") or []
              if 0 <= (today - dt.date.fromisoformat(p["date"])).days <= b.recent_days]
    recent = sorted(recent, key=lambda p: p["date"], reverse=True)[:b.max_payments]
    if not recent:
        return None
    say = [("today" if p["date"] == today.isoformat() else "earlier",
            {"amount": loc.money(p["amount"], currency), "date": loc.date(p["date"])}) for p in recent]
    paid = {"amount": " + ".join(loc.money(p["amount"], currency) for p in recent)}
    return _card("account_payment_received", loc, [*say, ("thanks", {})], [("again", paid)])


def _least_instalment(allowed: Mapping[str, Any], balance: float | None) -> float | None:
    """The creditor's minimum instalment, raised to what clears the balance within the longest term."""
    floor, months = allowed.get("min_instalment"), allowed.get("max_term_months")
    clearing = math.ceil(balance * 100 / months) / 100 if balance and months else None
    return max((v for v in (floor, clearing) if v is not None), default=None)


def _plan_options(facts: Mapping[str, Any], loc: Locale) -> FactCard | None:
    """The terms allowed_offers permits, unless a fact that stops offers is on file."""
    allowed, words = facts.get("allowed_offers") or {}, book().cards["account_plan_options"]
    if not allowed or any(facts.get(flag) is True for flag in words.suppressed_by):
        return None
    currency, balance = facts.get("currency"), facts.get("balance")
    months, discount = allowed.get("max_term_months"), allowed.get("max_discount_pct")
    least = _least_instalment(allowed, balance)
    params = {"months": months, "instalment": None if least is None else loc.money(least, currency),
              "discount": None if discount is None else loc.percent(discount)}
    say: list[tuple[str, dict[str, Any]]] = []
    if months is not None or least is not None:
        say.append(("term_instalment" if months and least else "term" if months else "instalment", params))
    if discount and balance:
        settle = loc.money(balance * (1 - discount / 100), currency)
        say.append(("settle", {**params, "settle": settle, "balance": loc.money(balance, currency)}))
    elif discount is not None:
        say.append(("discount", params))
    avoid = [(k, params) for k, v in (("term", months), ("instalment", least), ("discount", discount)) if v is not None]
    return _card("account_plan_options", loc, say, avoid) if say else None


def _dispute(facts: Mapping[str, Any], loc: Locale) -> FactCard | None:
    if facts.get("dispute_open") is not True:
        return None
    return _card("account_dispute", loc, [("pause", {}), ("record", {})], [("demand", {})])


def fact_cards(facts: Mapping[str, Any], language: str, jurisdiction: str = "",
               today: dt.date | None = None) -> list[FactCard]:
    """The cards the facts call for, in the call's language (a dispute first: it stops the others' asks)."""
    loc, today = Locale(language, jurisdiction), today or dt.datetime.now(dt.UTC).date()
    found = [_dispute(facts, loc), _payments(facts, loc, today), _plan_options(facts, loc)]
    return [card for card in found if card is not None]


def changed_cards(old: Mapping[str, Any], new: Mapping[str, Any], language: str, jurisdiction: str = "",
                  today: dt.date | None = None) -> list[FactCard]:
    """The cards of `new` facts that `old` facts did not already call for with the same words."""
    before = set(fact_cards(old, language, jurisdiction, today)) if old else set()
    return [card for card in fact_cards(new, language, jurisdiction, today) if card not in before]


def prompt_events(call_id: str, t: float, cards: list[FactCard], language: str) -> list[PromptCard]:
    """The cards as the `prompt` events the overlay shows (no evidence: they come from the facts)."""
    lang = Locale(language).language
    return [PromptCard(call_id=call_id, t=t, card_id=c.card_id, title=c.title, language=lang, say=list(c.say),
                       avoid=list(c.avoid)) for c in cards]
