"""Reads and writes of calls, events and QA results (sync; callers own the session)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, overload

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from assist.qa.calldata import CallData, Turn
from assist.qa.categorise import Category, categorise
from assist.qa.scorecard import Result, Scorecard, override, score_call
from assist.storage import post_call
from assist.storage.tables import Call, CallTag, Event, Override, QaResult, Utterance

if TYPE_CHECKING:
    from assist.ruleset import RuleSet

ANALYSIS_TYPES = ("compliance.warning", "prompt", "sentiment", "stress", "style", "abandon_risk")


@overload
def utc(dt: datetime) -> datetime: ...


@overload
def utc(dt: datetime | None) -> datetime | None: ...


def utc(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: read them back as UTC."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def ensure_call(s: Session, call_id: str, started_at: datetime, protocol: str = "",
                metadata: Mapping[str, Any] | None = None, language: str | None = None) -> Call:
    call = s.get(Call, call_id)
    if call is None:
        meta = dict(metadata or {})
        call = Call(id=call_id, started_at=started_at.astimezone(UTC), status="active", protocol=protocol,
                    agent_id=meta.get("agent_id"), language=language, meta=meta)
        s.add(call)
        s.flush()
    return call


def add_event(s: Session, call_id: str, payload: Mapping[str, Any]) -> bool:
    """Store one event payload (and its utterance row for transcript.final); False if already stored."""
    seq = int(payload["seq"])
    if s.scalar(select(exists().where(Event.call_id == call_id, Event.seq == seq))):
        return False
    at = payload.get("at")
    at = datetime.fromisoformat(at) if isinstance(at, str) else at or datetime.now(UTC)
    s.add(Event(call_id=call_id, seq=seq, type=payload["type"], t=float(payload.get("t", 0.0)), at=at.astimezone(UTC),
                payload=dict(payload)))
    if payload["type"] == "transcript.final":
        s.add(Utterance(call_id=call_id, seq=seq, speaker=payload["speaker"], utterance=payload["utterance"],
                        start=payload["start"], end=payload["end"], text=payload["text"],
                        words=list(payload.get("words", [])), language=payload["language"]))
    return True


def end_call(s: Session, call_id: str, status: str, reason: str, duration: float | None) -> Call:
    call = s.get_one(Call, call_id)
    call.status, call.end_reason, call.ended_at = status, reason, datetime.now(UTC)
    call.duration = duration
    return call


def event_payloads(s: Session, call_id: str, since: int = 0) -> list[dict[str, Any]] | None:
    """A stored call's event payloads after seq `since`, in order; None when there is no such call."""
    if s.get(Call, call_id) is None:
        return None
    return list(s.scalars(select(Event.payload).where(Event.call_id == call_id, Event.seq > since).order_by(Event.seq)))


def load_call_data(s: Session, call_id: str) -> CallData:
    """The stored call as the pure QA functions take it: its post-call transcript once one is done
    (assist/post_call.py), else the live finals."""
    call = s.get_one(Call, call_id)
    events = s.scalars(select(Event.payload).where(Event.call_id == call_id, Event.type.in_(ANALYSIS_TYPES))
                       .order_by(Event.seq))
    turns = post_call.turns(s, call_id)
    if turns is None:
        utts = s.scalars(select(Utterance).where(Utterance.call_id == call_id).order_by(Utterance.start, Utterance.seq))
        turns = tuple(Turn(u.speaker, u.start, u.end, u.text, u.language) for u in utts)
    duration = call.duration or max((t.end for t in turns), default=0.0)
    return CallData(call.id, turns, tuple(events), dict(call.meta), utc(call.started_at), duration,
                    call.status == "interrupted")


def _store_qa(s: Session, call: Call, card: Scorecard, category: Category | None = None) -> None:
    qa = s.get(QaResult, call.id)
    now = datetime.now(UTC)
    if qa is None:
        assert category is not None
        qa = QaResult(call_id=call.id, scorecard=card.to_dict(), category=category.to_dict(), computed_at=now)
        s.add(qa)
    else:
        qa.scorecard, qa.computed_at = card.to_dict(), now
        if category is not None:
            qa.category = category.to_dict()
    call.score, call.band, call.compliance_fail = card.score, card.band, card.compliance_fail
    if category is not None:
        call.contact, call.primary_category = category.contact, category.primary
        call.language = call.language or category.language
        s.execute(delete(CallTag).where(CallTag.call_id == call.id))
        for code in dict.fromkeys([category.contact, *(o.code for o in category.outcomes)]):
            s.add(CallTag(call_id=call.id, code=code))


def reviewed_results(s: Session, call_id: str) -> dict[str, Result]:
    """Each item's result as its latest reviewer override set it (the audit trail, replayed in order)."""
    rows = s.execute(select(Override.item_id, Override.new_result).where(Override.call_id == call_id)
                     .order_by(Override.id))
    return {item_id: result for item_id, result in rows}  # type: ignore[misc]


def score_and_store(s: Session, call_id: str, rules: RuleSet | None = None) -> dict[str, Any]:
    """Categorise and score the stored call by `rules` (the service's; default: the packaged ones), save the
    result; returns {"scorecard", "category"}.

    Scoring again (a call that resumes, a recovered call, new rules) keeps reviewers' overrides:
    the latest override of every item still on the card is applied to the fresh automatic result.
    """
    if rules is None:
        from assist.ruleset import packaged_rules

        rules = packaged_rules()
    data = load_call_data(s, call_id)
    category = categorise(data, rules.category_rules)
    card = score_call(data, category, rules)
    ids = {i.id for i in (*card.items, *card.gate)}
    for item_id, result in reviewed_results(s, call_id).items():
        if item_id in ids:
            card = override(card, item_id, result, rules.card.bands)
    _store_qa(s, s.get_one(Call, call_id), card, category)
    return {"scorecard": card.to_dict(), "category": category.to_dict()}


def unfinished_call_ids(s: Session) -> list[str]:
    return list(s.scalars(select(Call.id).where(Call.status == "active").order_by(Call.started_at)))


@dataclass(frozen=True)
class CallFilter:
    date_from: datetime | None = None
    date_to: datetime | None = None
    agent: str | None = None
    category: str | None = None
    band: str | None = None
    compliance_fail: bool | None = None
    limit: int = 100
    offset: int = 0
    tenant: str | None = None
    """Only this tenant's calls (metadata "tenant"); None: all (development mode)."""


def list_calls(s: Session, f: CallFilter) -> Sequence[Call]:
    q = select(Call)
    if f.tenant is not None:
        q = q.where(Call.meta["tenant"].as_string() == f.tenant)
    if f.date_from:
        q = q.where(Call.started_at >= f.date_from)
    if f.date_to:
        q = q.where(Call.started_at < f.date_to)
    if f.agent:
        q = q.where(Call.agent_id == f.agent)
    if f.band:
        q = q.where(Call.band == f.band)
    if f.compliance_fail is not None:
        q = q.where(Call.compliance_fail == f.compliance_fail)
    if f.category:
        q = q.where(exists().where(CallTag.call_id == Call.id, CallTag.code == f.category))
    return s.scalars(q.order_by(Call.started_at.desc(), Call.id).limit(f.limit).offset(f.offset)).all()


class NotFound(LookupError):
    pass


def override_item(s: Session, call_id: str, item_id: str, result: Result, reviewer: str, comment: str) -> Override:
    """Set one item's result as a reviewer; the score is recomputed and the change audited."""
    qa = s.get(QaResult, call_id)
    if qa is None:
        raise NotFound(f"call {call_id!r} has no scorecard")
    card = Scorecard.from_dict(qa.scorecard)
    try:
        old = card.item(item_id)
    except StopIteration:
        raise NotFound(f"no item {item_id!r} on call {call_id!r}") from None
    new_card = override(card, item_id, result)
    row = Override(call_id=call_id, item_id=item_id, reviewer=reviewer, at=datetime.now(UTC),
                   old_result=old.result, new_result=result, comment=comment, old_score=card.score,
                   new_score=new_card.score)
    s.add(row)
    _store_qa(s, s.get_one(Call, call_id), new_card)
    s.flush()
    return row
