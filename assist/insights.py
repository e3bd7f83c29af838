"""The insights views: every one a GROUP BY over the per-call facts (assist/insights_facts.py), filtered by
tenant, time, agent, team, campaign, language and channel, trends grouped by day or ISO week."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from assist.insights_humanise import HumanisationRules
from assist.storage.tables import CallFinding, CallInsight, CallTag

Group = Literal["day", "week"]
CI = CallInsight


@dataclass(frozen=True)
class InsightFilter:
    tenant: str | None = None
    """Only this tenant's calls; None: all (development mode)."""
    date_from: datetime | None = None
    date_to: datetime | None = None
    agent: str | None = None
    team: str | None = None
    campaign: str | None = None
    language: str | None = None
    channel: str | None = None
    group: Group = "day"

    def where(self) -> list[Any]:
        conds: list[Any] = [] if self.tenant is None else [CI.tenant == self.tenant]
        if self.date_from:
            conds.append(CI.started_at >= self.date_from)
        if self.date_to:
            conds.append(CI.started_at < self.date_to)
        for column, value in ((CI.agent_id, self.agent), (CI.team, self.team), (CI.campaign, self.campaign),
                              (CI.language, self.language), (CI.channel, self.channel)):
            if value:
                conds.append(column == value)
        return conds


def _rows(s: Session, q: Select) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in s.execute(q)]


def _round(rows: list[dict[str, Any]], digits: int = 1) -> list[dict[str, Any]]:
    return [{k: round(v, digits) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def _trend(s: Session, f: InsightFilter, *columns: Any) -> list[dict[str, Any]]:
    period = (CI.week if f.group == "week" else CI.day).label("period")
    q = select(period, func.count().label("calls"), *columns).where(*f.where()).group_by(period).order_by(period)
    return _round(_rows(s, q))


def score_trend(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    return _trend(s, f, func.avg(CI.score).label("avg_score"),
                  func.sum(case((CI.band == "compliance_fail", 1), else_=0)).label("compliance_fails"))


def promise_trend(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    rows = _trend(s, f, func.sum(CI.promise).label("promises"), func.sum(CI.promised_amount).label("promised_amount"))
    return [{**r, "promise_rate": round(r["promises"] / r["calls"], 3) if r["calls"] else None} for r in rows]


def humanisation_trend(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    return _trend(s, f, func.avg(CI.humanisation).label("humanisation"), *_component_columns())


def _component_columns() -> list[Any]:
    names = HumanisationRules.load().components
    return [func.avg(CI.humanisation_parts[(name, "value")].as_float()).label(name) for name in names]


def humanisation_agents(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    q = (select(CI.agent_id.label("agent"), func.count().label("calls"), func.avg(CI.humanisation).label("humanisation"),
                *_component_columns()).where(*f.where()).group_by(CI.agent_id).order_by(CI.agent_id))
    return _round(_rows(s, q))


def _findings(f: InsightFilter) -> list[Any]:
    return [CallFinding.kind == "rule", *f.where()]


def breaches_by_rule(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    q = (select(CallFinding.code.label("rule"), func.count().label("breaches"),
                func.count(func.distinct(CallFinding.call_id)).label("calls"))
         .join(CI, CI.call_id == CallFinding.call_id).where(*_findings(f))
         .group_by(CallFinding.code).order_by(func.count().desc(), CallFinding.code))
    return _rows(s, q)


def breach_heatmap(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    """(agent, rule, breaches) cells."""
    q = (select(CI.agent_id.label("agent"), CallFinding.code.label("rule"), func.count().label("breaches"))
         .join(CI, CI.call_id == CallFinding.call_id).where(*_findings(f))
         .group_by(CI.agent_id, CallFinding.code).order_by(CI.agent_id, CallFinding.code))
    return _rows(s, q)


def outcome_mix(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    q = (select(CallTag.code.label("code"), func.count().label("calls")).join(CI, CI.call_id == CallTag.call_id)
         .where(*f.where()).group_by(CallTag.code).order_by(func.count().desc(), CallTag.code))
    return _rows(s, q)


def category_mix(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    q = (select(CI.primary_category.label("category"), func.count().label("calls")).where(*f.where())
         .group_by(CI.primary_category).order_by(func.count().desc(), CI.primary_category))
    return _rows(s, q)


STRESS_BANDS = ((70.0, "high"), (40.0, "elevated"), (0.0, "low"))


def stress_hangups(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    """Calls by peak debtor stress band: how many ended in a hang-up without agreement, how many in a promise."""
    band = case(*((CI.stress_peak >= low, name) for low, name in STRESS_BANDS), else_="unknown").label("stress")
    q = (select(band, func.count().label("calls"), func.sum(CI.hangup).label("hangups"),
                func.sum(CI.promise).label("promises")).where(*f.where()).group_by(band))
    order = {name: i for i, (_, name) in enumerate(STRESS_BANDS)}
    rows = sorted(_rows(s, q), key=lambda r: order.get(r["stress"], len(order)))
    return [{**r, "hangup_rate": round(r["hangups"] / r["calls"], 3)} for r in rows]


def agent_exposure(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    """Per agent: calls, hard calls and abusive calls handled (facts about the calls, never the agent's emotion)."""
    q = (select(CI.agent_id.label("agent"), func.count().label("calls"), func.sum(CI.hard).label("hard_calls"),
                func.sum(CI.abusive).label("abusive_calls")).where(*f.where())
         .group_by(CI.agent_id).order_by(CI.agent_id))
    return _rows(s, q)


VIEWS: dict[str, Callable[[Session, InsightFilter], list[dict[str, Any]]]] = {
    "score_trend": score_trend,
    "breaches_by_rule": breaches_by_rule,
    "breach_heatmap": breach_heatmap,
    "outcome_mix": outcome_mix,
    "category_mix": category_mix,
    "promise_trend": promise_trend,
    "stress_hangups": stress_hangups,
    "agent_exposure": agent_exposure,
    "humanisation_trend": humanisation_trend,
    "humanisation_agents": humanisation_agents,
}


def insights(s: Session, f: InsightFilter, views: tuple[str, ...] = tuple(VIEWS)) -> dict[str, list[dict[str, Any]]]:
    return {name: VIEWS[name](s, f) for name in views}
