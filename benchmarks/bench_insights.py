"""Insights at a contact centre's size: GET /api/insights (every view) and a coaching card over 100,000
stored calls on SQLite and on PostgreSQL, target under 1 s.

The history is SYNTHETIC (marked "synthetic": true in every call's metadata, ids "synthetic-..."): 200
agents in 10 teams, 4 campaigns, EN/ES, 180 days; scores, bands, outcomes, promises, stress, findings
and humanisation components drawn from a seeded generator and written in bulk (calls, qa_results,
call_tags, call_insights, call_humanisation, call_findings), as the recorder and assist/insights_facts.py would leave
them.
Each query runs through the real FastAPI route (auth in development mode) on a fresh database migrated to
head; PostgreSQL is a new database on 127.0.0.1:5432 (trust auth, user postgres or root), dropped after.

Usage: python -m benchmarks.bench_insights [--calls 100000] [--backends sqlite,postgresql] [--repeat 5]
Writes benchmarks/results/insights.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert, text

from assist.api_insights import router
from assist.insights_facts import periods
from assist.insights_humanise import HumanisationRules
from assist.storage.db import Database
from assist.storage.tables import Call as CallRow
from assist.storage.tables import (
    CallFinding,
    CallHumanisation,
    CallInsight,
    CallTag,
    QaResult,
)

OUT = Path(__file__).parent / "results" / "insights.json"
PG_USERS = ("postgres", "root")
START = datetime(2025, 1, 1, tzinfo=UTC)
CATEGORIES = ("promise_to_pay", "payment_plan", "refusal", "callback", "dispute", "hardship_income", "")
RULES = ("US-THR-01", "US-MM-01", "ES-AGGR-01", "ES-REC-01", "US-TIME-02", "ES-DNC-01", "US-3P-01", "ES-CRIM-01")
ITEMS = ("A1", "A2", "B1", "B2", "C2", "D1", "D3", "D5", "E1", "E2")
CHUNK = 5000


def _rows(i: int, rng: random.Random, now: datetime, components: list[str]) -> dict[str, list[dict[str, Any]]]:
    """One synthetic call's rows in every table."""
    cid = f"synthetic-{i:06d}"
    agent = f"agent-{rng.randrange(200):03d}"
    team, campaign = f"team-{int(agent[-3:]) % 10}", f"campaign-{rng.randrange(4)}"
    lang = "es" if rng.random() < 0.45 else "en"
    started = START + timedelta(seconds=rng.randrange(180 * 86400))
    day, week = periods(started)
    score = round(rng.uniform(40, 100), 1)
    band = "compliance_fail" if rng.random() < 0.06 else "meets_standard" if score >= 85 else "coaching"
    cat = rng.choice(CATEGORIES)
    promise = int(cat in ("promise_to_pay", "payment_plan"))
    stress = rng.choice((None, rng.uniform(0, 100)))
    parts = {c: {"value": rng.choice((None, 0.0, 50.0, 100.0, 100.0)), "weight": 10, "evidence": []}
             for c in components}
    values = [p["value"] for p in parts.values() if p["value"] is not None]
    meta = {"tenant": "bench", "synthetic": True, "agent_id": agent, "team": team, "campaign": campaign}
    base = {"call_id": cid, "tenant": "bench", "agent_id": agent, "started_at": started}
    findings = [{**base, "kind": "rule", "code": rng.choice(RULES), "severity": 3, "quote": "synthetic quote",
                 "speaker": "agent", "start": 12.0} for _ in range(rng.random() < 0.25)]
    findings += [{**base, "kind": "item", "code": rng.choice(ITEMS), "severity": 1, "quote": "synthetic quote",
                  "speaker": "agent", "start": 30.0} for _ in range(rng.randrange(3))]
    return {
        "calls": [{"id": cid, "started_at": started, "ended_at": started + timedelta(minutes=5), "status": "ended",
                   "protocol": "synthetic", "agent_id": agent, "language": lang, "meta": meta, "duration": 300.0,
                   "end_reason": "hangup", "score": score, "band": band, "compliance_fail": band == "compliance_fail",
                   "contact": "right_party", "primary_category": cat}],
        "qa": [{"call_id": cid, "scorecard": {"synthetic": True}, "category": {"synthetic": True}, "computed_at": now}],
        "tags": [{"call_id": cid, "code": c} for c in dict.fromkeys(("right_party", cat or "right_party"))],
        "insights": [{"call_id": cid, "tenant": "bench", "agent_id": agent, "team": team, "campaign": campaign,
                      "channel": "voice", "language": lang, "started_at": started, "day": day, "week": week,
                      "score": score, "band": band, "primary_category": cat, "promise": promise,
                      "promised_amount": round(rng.uniform(50, 900), 2) if promise else 0.0, "stress_peak": stress,
                      "hangup": int(not promise and rng.random() < 0.3), "hard": int((stress or 0) >= 70),
                      "abusive": int(rng.random() < 0.02),
                      "humanisation": round(sum(values) / len(values), 1) if values else None,
                      "computed_at": now + timedelta(seconds=1)}],
        "human": [{"call_id": cid, "parts": parts}],
        "findings": findings,
    }


TABLES = (("calls", CallRow), ("qa", QaResult), ("tags", CallTag), ("insights", CallInsight),
          ("human", CallHumanisation), ("findings", CallFinding))


def generate(db: Database, n: int, seed: int = 20) -> float:
    """Write `n` synthetic calls in bulk; returns the seconds it took."""
    rng, now = random.Random(seed), datetime.now(UTC)
    components = list(HumanisationRules.load().components)
    t0 = time.perf_counter()
    for lo in range(0, n, CHUNK):
        batch: dict[str, list[dict[str, Any]]] = {k: [] for k, _ in TABLES}
        for i in range(lo, min(n, lo + CHUNK)):
            for k, rows in _rows(i, rng, now, components).items():
                batch[k] += rows
        with db.engine.begin() as conn:
            for k, model in TABLES:
                if batch[k]:
                    conn.execute(insert(model), _mapped(model, batch[k]))
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))  # planner statistics, as autovacuum / a maintained SQLite would have
    return time.perf_counter() - t0


def _mapped(model: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ORM attribute names to column names (calls.meta is the "metadata" column)."""
    if model is CallRow:
        return [{("metadata" if k == "meta" else k): v for k, v in r.items()} for r in rows]
    return rows


QUERIES: dict[str, tuple[str, dict[str, str]]] = {
    "all_views_day": ("/api/insights", {}),
    "all_views_week": ("/api/insights", {"group": "week"}),
    "all_views_90_days_es": ("/api/insights", {"date_from": "2025-03-01T00:00:00Z", "date_to": "2025-06-01T00:00:00Z",
                                               "language": "es"}),
    "all_views_team": ("/api/insights", {"team": "team-3", "group": "week"}),
    "csv_breach_heatmap": ("/api/insights", {"format": "csv", "view": "breach_heatmap"}),
    "coaching_card": ("/api/insights/agents/agent-007/coaching", {}),
}


def time_queries(db: Database, repeat: int) -> dict[str, dict[str, float]]:
    app = FastAPI()
    app.state.db = db
    app.include_router(router)
    out = {}
    with TestClient(app) as client:
        for name, (path, params) in QUERIES.items():
            times = []
            for _ in range(repeat + 1):  # the first run (caches; the very first checks every call) is apart
                t0 = time.perf_counter()
                resp = client.get(path, params=params)
                times.append(time.perf_counter() - t0)
                assert resp.status_code == 200, resp.text
            first, times = times[0], times[1:]
            out[name] = {"median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4),
                         "first_s": round(first, 4)}
            print(f"  {name}: median {out[name]['median_s']:.3f} s, max {out[name]['max_s']:.3f} s", flush=True)
    return out


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/bench.db"


@contextmanager
def postgres_url() -> Iterator[str]:
    """A fresh database on the local server (the first of PG_USERS that connects), dropped afterwards."""
    for user in PG_USERS:
        admin = create_engine(f"postgresql+psycopg://{user}@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
        try:
            admin.connect().close()
            break
        except Exception:  # noqa: BLE001 - try the next user
            admin.dispose()
    else:
        raise RuntimeError("no PostgreSQL on 127.0.0.1:5432 for users " + ", ".join(PG_USERS))
    name = f"recobra_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://{user}@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


BACKENDS: dict[str, Callable[[], Any]] = {"sqlite": sqlite_url, "postgresql": postgres_url}


def run(backend: str, calls: int, repeat: int) -> dict[str, Any]:
    with BACKENDS[backend]() as url:
        db = Database(url)
        try:
            print(f"{backend}: generating {calls} synthetic calls", flush=True)
            seconds = generate(db, calls)
            queries = time_queries(db, repeat)
        finally:
            db.close()
    worst = max(q["max_s"] for q in queries.values())
    return {"calls": calls, "generate_s": round(seconds, 1), "queries": queries, "worst_s": worst,
            "under_1_s": worst < 1.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    results = {b: run(b, args.calls, args.repeat) for b in args.backends.split(",")}
    report = {"benchmark": "insights", "synthetic": True, "target_s": 1.0, "at": datetime.now(UTC).isoformat(),
              "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
              "backends": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({b: r["worst_s"] for b, r in results.items()}))


if __name__ == "__main__":
    main()
