"""Per-call facts for the insights views, kept in step with the QA results: a call scored (or re-scored
by a reviewer's override) since its facts were written gets them rewritten on the next insights request.
Each call is read once here; every view then aggregates these rows in SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from assist.analysis.text import PhraseBook
from assist.dashboard import WellbeingRules
from assist.insights_humanise import humanisation
from assist.qa.calldata import CallData
from assist.storage import repository as repo
from assist.storage.tables import (
    Call,
    CallFinding,
    CallHumanisation,
    CallInsight,
    QaResult,
)

log = structlog.get_logger(__name__)
PROMISE_CODES = ("promise_to_pay", "payment_plan", "partial_payment", "settled")
SEVERITY = {"info": 1, "warning": 2, "critical": 3}
BATCH = 500
CHECK_MARGIN = timedelta(seconds=60)
"""A request looks again at calls scored up to this long before the previous request's check began (a
scoring transaction that commits late is still seen)."""


def periods(at: datetime) -> tuple[str, str]:
    """(day "2025-03-12", ISO week "2025-W11") of a UTC time."""
    year, week, _ = at.isocalendar()
    return at.strftime("%Y-%m-%d"), f"{year}-W{week:02d}"


def _exposure(data: CallData, rules: WellbeingRules, abuse: PhraseBook) -> tuple[float | None, bool, bool]:
    """(peak debtor stress, hard call, abusive debtor): exposure facts about the debtor's side only."""
    stress = [float(e["level"]) for e in data.events_of("stress") if e.get("speaker", "debtor") == "debtor"]
    sentiment = [float(e["score"]) for e in data.events_of("sentiment") if e.get("speaker") == "debtor"]
    alert = any(e.get("alert") for e in data.events_of("abandon_risk"))
    abusive = sum(abuse.any(t.norm, "abusive") for t in data.of("debtor")) >= rules.abusive_call.min_utterances
    hard = rules.hard_call
    peak = max(stress, default=None)
    is_hard = ((peak is not None and peak >= hard.debtor_stress_at_least)
               or (bool(sentiment) and min(sentiment) <= hard.debtor_sentiment_at_most)
               or (hard.abandon_alert and alert) or (hard.abusive and abusive))
    return peak, is_hard, abusive


def _findings(call: Call, card: Mapping[str, Any], warnings: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    base = {"call_id": call.id, "tenant": call.meta.get("tenant") or "", "agent_id": call.agent_id or "",
            "started_at": call.started_at}
    rows = []
    for item in (*card.get("gate", ()), *card.get("items", ())):
        if item.get("result") == "fail":
            quote = (item.get("evidence") or [{}])[0]
            rows.append({**base, "kind": "item", "code": item["id"],
                         "severity": 3 if item.get("section") == "gate" else 1, "quote": quote.get("quote", ""),
                         "speaker": quote.get("speaker", ""), "start": quote.get("start")})
    for w in warnings:
        ev = w.get("evidence") or {}
        rows.append({**base, "kind": "rule", "code": str(w.get("rule_id")),
                     "severity": SEVERITY.get(str(w.get("severity")), 0),
                     "quote": ev.get("quote", ""), "speaker": ev.get("speaker", ""), "start": ev.get("start")})
    return rows


def call_facts(s: Session, call_id: str, rules: WellbeingRules, abuse: PhraseBook) -> tuple[dict, dict, list[dict]]:
    """The insight row, the humanisation components and the finding rows of one scored call."""
    call = s.get_one(Call, call_id)
    qa = s.get_one(QaResult, call_id)
    data = repo.load_call_data(s, call_id)
    warnings = data.standing_warnings()
    outcomes = {o["code"]: o.get("details", {}) for o in qa.category.get("outcomes", ())}
    promised = [float(d.get("amount") or 0) for c, d in outcomes.items() if c in PROMISE_CODES]
    peak, hard, abusive = _exposure(data, rules, abuse)
    human = humanisation(qa.scorecard, warnings, data.events_of("style"))
    started = repo.utc(call.started_at)
    day, week = periods(started.astimezone(UTC))
    meta = call.meta
    row = {"call_id": call.id, "tenant": meta.get("tenant") or "", "agent_id": call.agent_id or "",
           "team": str(meta.get("team") or ""), "campaign": str(meta.get("campaign") or ""),
           "channel": str(meta.get("channel") or call.protocol or ""), "language": call.language or data.language,
           "started_at": started, "day": day, "week": week, "score": call.score, "band": call.band or "",
           "primary_category": call.primary_category or "", "promise": int(bool(promised)),
           "promised_amount": sum(promised), "stress_peak": peak,
           "hangup": int("hang" in (call.end_reason or "") and not promised), "hard": int(hard),
           "abusive": int(abusive), "humanisation": human["index"], "computed_at": datetime.now(UTC)}
    return row, human["components"], _findings(call, qa.scorecard, warnings)


def stale_calls(s: Session, limit: int, since: datetime | None = None) -> list[str]:
    """Scored calls whose facts are missing or older than their QA result (only those scored after
    `since`, when given: an index range instead of every call)."""
    q = (select(QaResult.call_id).outerjoin(CallInsight, CallInsight.call_id == QaResult.call_id)
         .where(or_(CallInsight.call_id.is_(None), CallInsight.computed_at < QaResult.computed_at)).limit(limit))
    if since is not None:
        q = q.where(QaResult.computed_at > since)
    return list(s.scalars(q))


def refresh(s: Session, limit: int = BATCH, since: datetime | None = None) -> int:
    """Write the facts of up to `limit` stale calls; returns how many (call again while it returns `limit`)."""
    ids = stale_calls(s, limit, since)
    if not ids:
        return 0
    rules = WellbeingRules.load()
    abuse = PhraseBook.from_rules({"abusive": rules.abusive_call.phrases})
    s.execute(delete(CallInsight).where(CallInsight.call_id.in_(ids)))
    s.execute(delete(CallFinding).where(CallFinding.call_id.in_(ids)))
    s.execute(delete(CallHumanisation).where(CallHumanisation.call_id.in_(ids)))
    for call_id in ids:
        row, parts, findings = call_facts(s, call_id, rules, abuse)
        s.add(CallInsight(**row))
        s.add(CallHumanisation(call_id=call_id, parts=parts))
        s.add_all(CallFinding(**f) for f in findings)
    s.flush()
    log.info("insights.refreshed", calls=len(ids))
    return len(ids)


def refresh_all(s: Session, since: datetime | None = None) -> int:
    """Refresh every stale call (scored after `since`, when given); returns how many."""
    total = 0
    while (n := refresh(s, BATCH, since)) == BATCH:
        total += n
    return total + n
