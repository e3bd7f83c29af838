"""The creditor's facts about a call's account: the typed body integrators send, JSON merge patches,
what changed (in words, EN/ES) and how the facts reach the call's CallContext."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assist.analysis.base import CallContext
from assist.analysis.wording import Words
from assist.events import Reason

Money = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]
FACTS_KEY = "account_facts"
"""Where the facts live in CallContext.metadata (analysers read them there)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Payment(_Strict):
    amount: Money
    date: dt.date


class ReceivedPayment(Payment):
    channel: str | None = Field(None, max_length=32, description="card, bank_transfer, cash...")


class Plan(_Strict):
    status: Literal["none", "proposed", "active", "broken", "completed"]
    instalment: Money | None = None
    next_due: dt.date | None = None


class AllowedOffers(_Strict):
    min_instalment: Money | None = None
    max_term_months: int | None = Field(None, ge=1, le=600)
    max_discount_pct: float | None = Field(None, ge=0, le=100)


class AccountFacts(_Strict):
    """What the creditor's systems know about the account now; every field optional."""

    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. USD, EUR, MXN.")
    balance: Money | None = None
    amount_past_due: Money | None = None
    creditor: str | None = Field(None, max_length=128)
    original_creditor: str | None = Field(None, max_length=128)
    last_payment: Payment | None = None
    payments_since_extract: list[ReceivedPayment] = Field([], max_length=100)
    plan: Plan | None = None
    dispute_open: bool | None = None
    litigation_authorised: bool | None = None
    time_barred: bool | None = None
    cease_contact_on_file: bool | None = None
    attorney_on_file: bool | None = None
    vulnerability: list[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]] = Field([], max_length=20)
    allowed_offers: AllowedOffers | None = None


def dump(facts: AccountFacts) -> dict[str, Any]:
    """The facts as JSON values, without the fields left unset (None or empty)."""
    return facts.model_dump(mode="json", exclude_defaults=True)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge, null removes a field, anything else replaces."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


@lru_cache(maxsize=1)
def change_words() -> dict[str, Words]:
    """The change descriptions of assist/rules/account_rules.yaml, by code."""
    from assist.ruleset import packaged_rules

    return dict(packaged_rules().account_rules.changes)


@lru_cache(maxsize=1)
def field_labels() -> dict[str, dict[str, str]]:
    """Each AccountFacts field's label by language (account_rules.yaml `fields`)."""
    from assist.ruleset import packaged_rules

    labels = {f: w.render() for f, w in packaged_rules().account_rules.fields.items()}
    if missing := set(AccountFacts.model_fields) - set(labels):
        raise ValueError(f"account_rules.yaml: fields {sorted(missing)} have no label")
    return labels


def _updated(field: str) -> Reason:
    template = change_words()["updated"]
    text = {lang: getattr(template, lang).format(field=label) for lang, label in field_labels()[field].items()}
    return Reason(code="updated", params={"field": field}, text=text)


def _money(value: float | None, currency: str | None) -> str:
    return "-" if value is None else f"{value:.2f} {currency or ''}".strip()


def _payment_change(p: Mapping[str, Any], currency: str | None, today: dt.date) -> Reason:
    code = "payment_received_today" if p["date"] == today.isoformat() else "payment_received"
    return change_words()[code].reason(code, amount=_money(p["amount"], currency), date=p["date"],
                                       channel=p.get("channel") or "")


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any],
                     today: dt.date | None = None) -> tuple[list[str], list[Reason]]:
    """(top-level fields that changed, what changed in words) between two `dump`s of facts."""
    today = today or dt.datetime.now(dt.UTC).date()
    words, currency = change_words(), new.get("currency")
    changed = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
    out: list[Reason] = []
    for field in changed:
        value = new.get(field)
        if field == "payments_since_extract":
            out += [_payment_change(p, currency, today) for p in value or [] if p not in (old.get(field) or [])]
        elif field in ("balance", "amount_past_due"):
            out.append(words[field].reason(field, amount=_money(value, currency),
                                           was=_money(old.get(field), old.get("currency") or currency)))
        elif isinstance(value, bool) or (value is None and isinstance(old.get(field), bool)):
            code = f"{field}.{'on' if value else 'off'}"
            out.append(words[code].reason(code))
        elif field == "plan" and value:
            out.append(words["plan"].reason("plan", status=value["status"],
                                            instalment=_money(value.get("instalment"), currency)))
        else:
            out.append(_updated(field))
    return changed, out


def legacy_metadata(facts: Mapping[str, Any], account: Mapping[str, Any] | None) -> dict[str, Any]:
    """The call metadata's `account` map with the facts the rule packs and prompt cards read
    (account.litigation_authorized, time_barred, last_payment) taken from `facts`."""
    out = dict(account or {})
    for src, dst in (("litigation_authorised", "litigation_authorized"), ("time_barred", "time_barred"),
                     ("last_payment", "last_payment")):
        if facts.get(src) is not None:
            out[dst] = facts[src]
    return out


def apply_to_context(ctx: CallContext, facts: Mapping[str, Any]) -> None:
    """Put the facts where analysers read them. The metadata map is replaced whole, never changed in
    place: analysers read it from another thread, and events share its inner maps."""
    md = ctx.metadata
    ctx.metadata = {**md, FACTS_KEY: dict(facts), "account": legacy_metadata(facts, md.get("account"))}
