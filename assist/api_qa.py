"""REST API for the QA team: list and filter calls, call detail, item overrides, CSV export.

Needs `app.state.db`: an `assist.storage.db.Database` (e.g. the one `Recorder.start()` returns).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from assist.auth import principal_of
from assist.qa.calldata import standing_warnings
from assist.storage import repository as repo
from assist.storage.db import Database
from assist.storage.tables import (
    Call,
    Event,
    Override,
    PostCallTranscript,
    QaResult,
    Utterance,
)

router = APIRouter(prefix="/api", tags=["qa"])

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: object) -> object:
    """Only RFC 3339 date-times with an offset (no bare numbers or dates), as UTC."""
    if isinstance(value, str):
        if not _RFC3339.match(value):
            raise ValueError("expected an RFC 3339 date-time with offset, e.g. 2025-05-01T00:00:00Z")
        try:
            return datetime.fromisoformat(value.replace("z", "Z")).astimezone(UTC)
        except OverflowError:
            raise ValueError("date-time out of range") from None
    return value


DateTimeParam = Annotated[datetime | None, BeforeValidator(_rfc3339)]
Band = Literal["meets_standard", "coaching", "below_standard", "compliance_fail", "not_scored"]


def get_session(request: Request) -> Iterator[Session]:
    """A session on `request.app.state.db`, committed when the request succeeds."""
    db: Database = request.app.state.db
    with db.session() as s:
        yield s


SessionDep = Annotated[Session, Depends(get_session)]


class CallSummary(BaseModel):
    id: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    agent_id: str | None
    language: str | None
    duration: float | None
    score: float | None
    band: str | None
    compliance_fail: bool | None
    contact: str | None
    primary_category: str | None
    channel: str = Field("voice", description="voice, or the written conversation's chat, whatsapp, sms or email.")

    @classmethod
    def of(cls, c: Call) -> CallSummary:
        return cls(id=c.id, started_at=repo.utc(c.started_at), ended_at=repo.utc(c.ended_at), status=c.status,
                   agent_id=c.agent_id, language=c.language, duration=c.duration, score=c.score, band=c.band,
                   compliance_fail=c.compliance_fail, contact=c.contact, primary_category=c.primary_category,
                   channel=(c.meta or {}).get("channel", "voice"))


class WordOut(BaseModel):
    text: str
    start: float
    end: float
    probability: float = 1.0


class UtteranceOut(BaseModel):
    seq: int
    speaker: str
    start: float
    end: float
    text: str
    language: str
    words: list[WordOut]


class EventOut(BaseModel):
    seq: int
    type: str
    t: float
    payload: dict[str, Any]


class OverrideOut(BaseModel):
    item_id: str
    reviewer: str
    at: datetime
    old_result: str
    new_result: str
    comment: str
    old_score: float | None
    new_score: float | None

    @classmethod
    def of(cls, o: Override) -> OverrideOut:
        return cls(item_id=o.item_id, reviewer=o.reviewer, at=repo.utc(o.at), old_result=o.old_result,
                   new_result=o.new_result, comment=o.comment, old_score=o.old_score, new_score=o.new_score)


class PostCallOut(BaseModel):
    """The call's recording transcribed again after the call (assist/post_call.py)."""

    status: Literal["pending", "running", "done", "failed", "skipped"]
    reason: str | None = Field(description="Why it failed or was skipped: no_recording, recording_purged, "
                               "recording_unreadable, language_unsupported, attempts, predates, error.")
    detail: str | None
    progress: float = Field(description="Share of the recording's speech segments transcribed (0-1).")
    attempts: int
    settings: dict[str, Any] = Field(description="Models per language, beam and segmentation used.")
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    utterances: list[UtteranceOut]

    @classmethod
    def of(cls, p: PostCallTranscript) -> PostCallOut:
        return cls(status=p.status, reason=p.reason, detail=p.detail, progress=p.progress, attempts=p.attempts,
                   settings=p.settings, queued_at=repo.utc(p.queued_at), started_at=repo.utc(p.started_at),
                   finished_at=repo.utc(p.finished_at), utterances=p.utterances)


class CallDetail(BaseModel):
    call: CallSummary
    metadata: dict[str, Any]
    utterances: list[UtteranceOut] = Field(description="The live finals.")
    transcript: Literal["live", "post_call"] = Field(
        description="The transcript the scorecard and category were computed from: post_call once it is done.")
    post_call: PostCallOut | None = Field(description="None until the call has ended and been queued.")
    events: list[EventOut]
    warnings: list[EventOut] = Field(description="The compliance warnings that stand at the end of the call: the "
                                     "latest status of each (rule, evidence), confirmed ones only.")
    scorecard: dict[str, Any] | None = Field(description="Gate and items, each with result, why and evidence.")
    category: dict[str, Any] | None
    overrides: list[OverrideOut]


class OverrideIn(BaseModel):
    result: Literal["pass", "fail", "na"]
    reviewer: str | None = Field(None, min_length=1, max_length=128, description="Development mode only: with "
                                 "tenants the reviewer is who the access token names (its subject, else role@tenant).")
    comment: str = Field(min_length=1, max_length=4000)


class OverrideResult(BaseModel):
    override: OverrideOut
    scorecard: dict[str, Any]


def _filter(
    request: Request,
    date_from: DateTimeParam = None,
    date_to: DateTimeParam = None,
    agent: str | None = None,
    category: str | None = Query(None, description="A contact type or outcome code, e.g. promise_to_pay."),
    band: Band | None = None,
    compliance_fail: bool | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> repo.CallFilter:
    return repo.CallFilter(date_from, date_to, agent, category, band, compliance_fail, limit, offset,
                           principal_of(request).tenant)


FilterDep = Annotated[repo.CallFilter, Depends(_filter)]


@router.get("/calls", response_model=list[CallSummary])
def list_calls(s: SessionDep, f: FilterDep) -> list[CallSummary]:
    return [CallSummary.of(c) for c in repo.list_calls(s, f)]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A value as a CSV cell a spreadsheet will not run: text starting = + - @ tab or CR gets a leading '
    (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


CSV_COLUMNS = ("id", "started_at", "ended_at", "status", "agent_id", "language", "duration", "score", "band",
               "compliance_fail", "contact", "primary_category")


@router.get("/calls.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_csv(s: SessionDep, f: FilterDep) -> Response:
    """The filtered call list as CSV, one row per call."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for c in repo.list_calls(s, f):
        row = CallSummary.of(c).model_dump(mode="json")
        writer.writerow([csv_cell(row[k]) for k in CSV_COLUMNS])
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="calls.csv"'})


@router.get("/calls/{call_id}", response_model=CallDetail, responses={404: {"description": "No such call"}})
def call_detail(call_id: str, s: SessionDep) -> CallDetail:
    call = s.get(Call, call_id)
    if call is None:
        raise HTTPException(404, f"no call {call_id!r}")
    utts = s.scalars(select(Utterance).where(Utterance.call_id == call_id).order_by(Utterance.start, Utterance.seq))
    events = s.scalars(select(Event).where(Event.call_id == call_id).order_by(Event.seq))
    overrides = s.scalars(select(Override).where(Override.call_id == call_id).order_by(Override.id))
    qa = s.get(QaResult, call_id)
    post = s.get(PostCallTranscript, call_id)
    events_out = [EventOut(seq=e.seq, type=e.type, t=e.t, payload=e.payload) for e in events]
    return CallDetail(
        call=CallSummary.of(call),
        metadata=call.meta,
        utterances=[UtteranceOut(seq=u.seq, speaker=u.speaker, start=u.start, end=u.end, text=u.text,
                                 language=u.language, words=u.words) for u in utts],
        transcript="post_call" if post is not None and post.status == "done" else "live",
        post_call=PostCallOut.of(post) if post is not None else None,
        events=events_out,
        warnings=standing_warnings(events_out, lambda e: e.payload),
        scorecard=qa.scorecard if qa else None,
        category=qa.category if qa else None,
        overrides=[OverrideOut.of(o) for o in overrides],
    )


@router.post("/calls/{call_id}/scorecard/items/{item_id}/override", response_model=OverrideResult,
             responses={400: {"description": "The body is not valid JSON"},
                        404: {"description": "No such call, scorecard or item"}})
def override_item(call_id: str, item_id: str, body: OverrideIn, s: SessionDep, request: Request) -> OverrideResult:
    """A reviewer sets one item (or gate check) to pass / fail / n.a. with a comment; score recomputed."""
    principal = principal_of(request)
    if principal.tenant is not None:
        reviewer = principal.subject or f"{principal.role}@{principal.tenant}"
    else:  # development mode: nobody is signed in, the body's name is all there is
        reviewer = body.reviewer or "unnamed (development mode)"
    try:
        row = repo.override_item(s, call_id, item_id, body.result, reviewer, body.comment)
    except repo.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    qa = s.get_one(QaResult, call_id)
    return OverrideResult(override=OverrideOut.of(row), scorecard=qa.scorecard)
