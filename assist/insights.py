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
from assist.storage.tables import CallFinding, CallHumanisation, CallInsight, CallTag

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


def _period_stats(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    """One scan for every per-period view: calls, score, compliance fails, promises, humanisation."""
    period = (CI.week if f.group == "week" else CI.day).label("period")
    q = (select(period, func.count().label("calls"), func.avg(CI.score).label("avg_score"),
                func.sum(case((CI.band == "compliance_fail", 1), else_=0)).label("compliance_fails"),
                func.sum(CI.promise).label("promises"), func.sum(CI.promised_amount).label("promised_amount"),
                func.avg(CI.humanisation).label("humanisation"))
         .where(*f.where()).group_by(period).order_by(period))
    return _round(_rows(s, q))


def _agent_stats(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    """One scan for every per-agent view: calls, hard and abusive calls, humanisation."""
    q = (select(CI.agent_id.label("agent"), func.count().label("calls"), func.sum(CI.hard).label("hard_calls"),
                func.sum(CI.abusive).label("abusive_calls"), func.avg(CI.humanisation).label("humanisation"))
         .where(*f.where()).group_by(CI.agent_id).order_by(CI.agent_id))
    return _round(_rows(s, q))


def _pick(rows: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    return [{k: r[k] for k in keys} for r in rows]


def score_trend(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _pick(stats, "period", "calls", "avg_score", "compliance_fails")


def promise_trend(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "promise_rate": round(r["promises"] / r["calls"], 3) if r["calls"] else None}
            for r in _pick(stats, "period", "calls", "promises", "promised_amount")]


def humanisation_trend(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _pick(stats, "period", "calls", "humanisation")


def agent_exposure(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per agent: calls, hard and abusive calls handled (facts about the calls, never the agent's emotion)."""
    return _pick(stats, "agent", "calls", "hard_calls", "abusive_calls")


def humanisation_agents(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _pick(stats, "agent", "calls", "humanisation")


def humanisation_components(s: Session, f: InsightFilter) -> list[dict[str, Any]]:
    """Per agent, each component's average (read from every call's JSON: asked for on its own)."""
    names = HumanisationRules.load().components
    parts = CallHumanisation.parts
    q = (select(CI.agent_id.label("agent"), func.count().label("calls"),
                *(func.avg(parts[(n, "value")].as_float()).label(n) for n in names))
         .join(CallHumanisation, CallHumanisation.call_id == CI.call_id)
         .where(*f.where()).group_by(CI.agent_id).order_by(CI.agent_id))
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


Rows = list[dict[str, Any]]
SCANS: dict[str, Callable[[Session, InsightFilter], Rows]] = {"periods": _period_stats, "agents": _agent_stats}
SHAPED: dict[str, tuple[str, Callable[[Rows], Rows]]] = {
    "score_trend": ("periods", score_trend),
    "promise_trend": ("periods", promise_trend),
    "humanisation_trend": ("periods", humanisation_trend),
    "agent_exposure": ("agents", agent_exposure),
    "humanisation_agents": ("agents", humanisation_agents),
}
QUERIES: dict[str, Callable[[Session, InsightFilter], Rows]] = {
    "breaches_by_rule": breaches_by_rule,
    "breach_heatmap": breach_heatmap,
    "outcome_mix": outcome_mix,
    "category_mix": category_mix,
    "stress_hangups": stress_hangups,
    "humanisation_components": humanisation_components,
}
VIEWS = (*SHAPED, *QUERIES)
DEFAULT_VIEWS = tuple(v for v in VIEWS if v != "humanisation_components")


def insights(s: Session, f: InsightFilter, views: tuple[str, ...] = DEFAULT_VIEWS) -> dict[str, Rows]:
    """The named views; views sharing a scan (per period, per agent) share one query."""
    scans: dict[str, Rows] = {}
    out = {}
    for name in views:
        if name in SHAPED:
            scan, shape = SHAPED[name]
            if scan not in scans:
                scans[scan] = SCANS[scan](s, f)
            out[name] = shape(scans[scan])
        else:
            out[name] = QUERIES[name](s, f)
    return out
