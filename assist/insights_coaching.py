"""An agent's coaching card: the scorecard items and rules that fail most over the period with their
strongest quotes (and the recording moment where a recording exists), the supervisors' notes, and how the
agent's calls changed since the latest note."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assist.insights import CI, InsightFilter
from assist.qa.card import default_card
from assist.storage.repository import utc
from assist.storage.tables import CallFinding, CoachingNote, Recording

TOP = 5
QUOTES = 3
TREND_WINDOW = timedelta(days=30)


def _quotes(s: Session, f: InsightFilter, kind: str, code: str) -> list[dict[str, Any]]:
    q = (select(CallFinding.call_id, CallFinding.quote, CallFinding.speaker, CallFinding.start, CallFinding.severity,
                CallFinding.started_at, Recording.status)
         .join(CI, CI.call_id == CallFinding.call_id)
         .outerjoin(Recording, Recording.call_id == CallFinding.call_id)
         .where(CallFinding.kind == kind, CallFinding.code == code, CallFinding.quote != "", *f.where())
         .order_by(CallFinding.severity.desc(), CallFinding.started_at.desc()).limit(QUOTES))
    out = []
    for r in s.execute(q):
        moment = None
        if r.status == "complete" and r.start is not None:
            moment = {"url": f"/api/calls/{r.call_id}/recording", "start": r.start}
        out.append({"call_id": r.call_id, "quote": r.quote, "speaker": r.speaker, "start": r.start,
                    "severity": r.severity, "at": utc(r.started_at), "recording": moment})
    return out


def top_failures(s: Session, f: InsightFilter, kind: str) -> list[dict[str, Any]]:
    """The `kind` ("item" or "rule") codes failing most often for the filter's agent, with quotes."""
    q = (select(CallFinding.code, func.count().label("fails"),
                func.count(func.distinct(CallFinding.call_id)).label("calls"))
         .join(CI, CI.call_id == CallFinding.call_id).where(CallFinding.kind == kind, *f.where())
         .group_by(CallFinding.code).order_by(func.count().desc(), CallFinding.code).limit(TOP))
    titles = default_card().titles
    return [{"code": r.code, "title": dict(titles.get(r.code, {})), "fails": r.fails, "calls": r.calls,
             "quotes": _quotes(s, f, kind, r.code)}
            for r in s.execute(q)]


def _window(s: Session, f: InsightFilter) -> dict[str, Any]:
    calls, score, human = s.execute(select(func.count(), func.avg(CI.score), func.avg(CI.humanisation))
                                    .where(*f.where())).one()
    fails = s.scalar(select(func.count()).select_from(CallFinding).join(CI, CI.call_id == CallFinding.call_id)
                     .where(*f.where()))
    return {"calls": calls, "avg_score": None if score is None else round(score, 1),
            "humanisation": None if human is None else round(human, 1),
            "fails_per_call": round(fails / calls, 2) if calls else None}


def notes(s: Session, tenant: str | None, agent: str) -> list[dict[str, Any]]:
    q = (select(CoachingNote).where(CoachingNote.agent_id == agent)
         .order_by(CoachingNote.at.desc(), CoachingNote.id.desc()))
    if tenant is not None:
        q = q.where(CoachingNote.tenant == tenant)
    return [{"id": n.id, "author": n.author, "at": utc(n.at), "text": n.text} for n in s.scalars(q)]


def add_note(s: Session, tenant: str | None, agent: str, author: str, text: str) -> dict[str, Any]:
    note = CoachingNote(tenant=tenant or "", agent_id=agent, author=author, at=datetime.now(UTC), text=text)
    s.add(note)
    s.flush()
    return {"id": note.id, "author": note.author, "at": utc(note.at), "text": note.text}


def since_last_note(s: Session, f: InsightFilter, last: datetime | None) -> dict[str, Any] | None:
    """The agent's calls in the `TREND_WINDOW` before the latest note against those since it."""
    if last is None:
        return None
    base = replace(f, date_from=None, date_to=None)
    return {"note_at": last,
            "before": _window(s, replace(base, date_from=last - TREND_WINDOW, date_to=last)),
            "since": _window(s, replace(base, date_from=last))}


def coaching_card(s: Session, f: InsightFilter) -> dict[str, Any]:
    """The card for `f.agent` over `f`'s period."""
    assert f.agent
    written = notes(s, f.tenant, f.agent)
    return {"agent": f.agent, "period": _window(s, f), "items": top_failures(s, f, "item"),
            "rules": top_failures(s, f, "rule"), "notes": written,
            "since_last_note": since_last_note(s, f, written[0]["at"] if written else None)}
