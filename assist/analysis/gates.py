"""Call metadata checks for compliance rule packs: which rules apply to the account (`when`/`unless`
conditions) and whether a gate rule (calling window, frequency ledger, account flags) is breached."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from assist.analysis.rulepacks import Condition, GateRule


def lookup(metadata: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """(present, value) at a dotted path of the call metadata."""
    node: Any = metadata
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _holds(cond: Condition, metadata: Mapping[str, Any]) -> bool:
    present, value = lookup(metadata, cond.field)
    if not present:
        return cond.missing
    return _fold(value) in [_fold(v) for v in cond.in_]


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def applies(when: Iterable[Condition], unless: list[Condition], metadata: Mapping[str, Any]) -> bool:
    """All `when` conditions hold and not all `unless` conditions do."""
    return all(_holds(c, metadata) for c in when) and not (unless and all(_holds(c, metadata) for c in unless))


def _window_breach(rule: GateRule, md: Mapping[str, Any], default_tz: str | None) -> str | None:
    tz = md.get("debtor_timezone") or default_tz
    if not tz or rule.window is None:
        return None
    started = datetime.fromisoformat(md["started_at"]) if md.get("started_at") else datetime.now(UTC)
    local = started.astimezone(ZoneInfo(tz))
    day = (
        "sunday"
        if md.get("public_holiday") or local.weekday() == 6
        else "saturday"
        if local.weekday() == 5
        else "weekday"
    )
    allowed = getattr(rule.window, day)
    hhmm = local.strftime("%H:%M")
    if allowed is None or not allowed[:5] <= hhmm < allowed[6:]:
        return f"{local:%a %H:%M} {tz}"
    return None


def gate_breach(rule: GateRule, md: Mapping[str, Any], default_tz: str | None) -> str | None:
    """What breaches the gate, for the title; None when it holds or cannot be checked."""
    if rule.window is not None:
        return _window_breach(rule, md, default_tz)
    if rule.ledger is not None:
        present, value = lookup(md, f"ledger.{rule.ledger.field}")
        if not present or value is None:
            return None
        lo, hi = rule.ledger.below, rule.ledger.above
        breached = (hi is not None and value > hi) or (lo is not None and value < lo)
        return f"{rule.ledger.field} = {value}" if breached else None
    on = [f for f in rule.flags if lookup(md, f"account.{f}")[1] is True]
    return ", ".join(on) if on else None
