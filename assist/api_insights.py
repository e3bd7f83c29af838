"""REST API for supervisors and QA leads: insights over time (GET /api/insights, JSON or CSV per view),
a call's humanisation index, and per-agent coaching cards with notes.

Facts of calls scored since the last request are written first (assist/insights_facts.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from assist import insights_facts
from assist.api_qa import DateTimeParam, SessionDep, csv_cell
from assist.auth import principal_of
from assist.insights import DEFAULT_VIEWS, VIEWS, Group, InsightFilter, insights
from assist.insights_coaching import add_note, coaching_card, notes
from assist.insights_humanise import HumanisationRules
from assist.storage.db import Database
from assist.storage.tables import CallHumanisation, CallInsight

router = APIRouter(prefix="/api/insights", tags=["insights"])
log = structlog.get_logger(__name__)
READERS = ("dev", "supervisor", "qa")
View = Literal[tuple(VIEWS)]  # type: ignore[valid-type]


def _reader(request: Request) -> str | None:
    """The tenant of a supervisor or QA token (None in development mode); others are refused."""
    principal = principal_of(request)
    if principal.role not in READERS:
        raise HTTPException(403, "insights are for supervisor and qa tokens")
    return principal.tenant


def _filter(
    request: Request,
    date_from: DateTimeParam = None,
    date_to: DateTimeParam = None,
    agent: str | None = Query(None, max_length=128),
    team: str | None = Query(None, max_length=64),
    campaign: str | None = Query(None, max_length=64),
    language: str | None = Query(None, max_length=8),
    channel: str | None = Query(None, max_length=32),
    group: Group = "day",
) -> InsightFilter:
    return InsightFilter(_reader(request), date_from, date_to, agent, team, campaign, language, channel, group)


FilterDep = Annotated[InsightFilter, Depends(_filter)]


def _fresh(request: Request) -> None:
    """Write the facts of calls scored since this process last looked (every call the first time), in a
    transaction of its own (a request doing the same at once may win: its facts are as good)."""
    db: Database = request.app.state.db
    started = datetime.now(UTC) - insights_facts.CHECK_MARGIN
    try:
        with db.session() as s:
            insights_facts.refresh_all(s, getattr(request.app.state, "insights_checked", None))
    except IntegrityError:
        log.info("insights.refresh_raced")
        return
    request.app.state.insights_checked = started


def _csv(rows: list[dict[str, Any]], name: str) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    writer.writerow(columns)
    for r in rows:
        writer.writerow([csv_cell(r.get(k)) for k in columns])
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="insights-{name}.csv"'})


@router.get("", responses={200: {"content": {"text/csv": {}}}})
def get_insights(s: SessionDep, f: FilterDep, request: Request, format: Literal["json", "csv"] = "json",
                 view: Annotated[View | None,  # type: ignore[valid-type]  # a Literal built from VIEWS at import
                                 Query(description="One view only (required with format=csv).")] = None,
                 ) -> Any:
    """Every view (or one) over the filtered calls: {"filters", "views": {name: rows}}; CSV per view."""
    _fresh(request)
    if format == "csv":
        if view is None:
            raise HTTPException(422, f"format=csv needs view=, one of {', '.join(VIEWS)}")
        return _csv(insights(s, f, (view,))[view], view)
    names = (view,) if view else DEFAULT_VIEWS
    rules = HumanisationRules.load()
    return {"filters": {k: v for k, v in f.__dict__.items() if k != "tenant"},
            "humanisation": {"title": rules.title.model_dump(),
                             "components": {k: {"title": c.title.model_dump(), "weight": c.weight}
                                            for k, c in rules.components.items()}},
            "views": insights(s, f, names)}


@router.get("/calls/{call_id}/humanisation", responses={404: {"description": "No such scored call"}})
def call_humanisation(call_id: str, s: SessionDep, request: Request) -> dict[str, Any]:
    """One call's humanisation index, each component with its weight and the evidence that set it."""
    tenant = _reader(request)
    _fresh(request)
    row = s.get(CallInsight, call_id)
    if row is None or (tenant is not None and row.tenant != tenant):
        raise HTTPException(404, f"no scored call {call_id!r}")
    rules = HumanisationRules.load()
    stored = s.get_one(CallHumanisation, call_id).parts
    parts = {k: {**v, "title": rules.components[k].title.model_dump()} if k in rules.components else v
             for k, v in stored.items()}
    return {"call_id": call_id, "index": row.humanisation, "title": rules.title.model_dump(), "components": parts}


@router.get("/agents/{agent_id}/coaching")
def get_coaching(agent_id: str, s: SessionDep, f: FilterDep, request: Request) -> dict[str, Any]:
    """The agent's coaching card over the period (the other filters apply too)."""
    _fresh(request)
    f = InsightFilter(**{**f.__dict__, "agent": agent_id})
    return coaching_card(s, f)


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)
    author: str | None = Field(None, min_length=1, max_length=128, description="Development mode only: with "
                               "tenants the author is who the access token names (its subject, else role@tenant).")


@router.post("/agents/{agent_id}/coaching/notes", status_code=201)
def post_note(agent_id: str, body: NoteIn, request: Request) -> dict[str, Any]:
    """A coaching note for the agent; author and time from the token and the clock. Committed before the
    answer goes out (a card read right after shows it)."""
    tenant = _reader(request)
    principal = principal_of(request)
    if tenant is not None:
        author = principal.subject or f"{principal.role}@{tenant}"
    else:
        author = body.author or "dev"
    db: Database = request.app.state.db
    with db.session() as s:
        return add_note(s, tenant, agent_id, author, body.text)


@router.get("/agents/{agent_id}/coaching/notes")
def get_notes(agent_id: str, s: SessionDep, request: Request) -> list[dict[str, Any]]:
    return notes(s, _reader(request), agent_id)
