"""The insights API on SQLite and PostgreSQL, fed by the recorder with scripted EN/ES calls of two tenants:
views and filters, CSV export, the humanisation index, coaching cards and notes, tenant isolation."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assist.api_insights import router
from assist.auth import Authenticator, AuthMiddleware
from assist.qa.script import Script
from assist.storage import repository as repo
from assist.storage.recorder import Recorder
from tests.tenancy import bearer, tenant_settings
from tests.test_storage import db_url  # noqa: F401 - db_url is a fixture (SQLite + PostgreSQL)

CALLS = Path(__file__).parent / "data" / "qa_calls"
ACME = {"en_promise_to_pay": "north", "en_threat_refusal": "north", "es_plan_hardship": "sur",
        "es_dispute_cease": "sur"}
GLOBEX = ("en_vulnerability",)
SUP = bearer("acme", "supervisor")
QA = bearer("acme", "qa")


def _script(name: str, tenant: str, team: str = "", **meta: object) -> Script:
    script = Script.load(CALLS / f"{name}.yaml")
    return replace(script, metadata={**script.metadata, "tenant": tenant, "team": team, "campaign": "spring",
                                     "channel": "voice", **meta})


class Env:
    def __init__(self, client: TestClient, recorder: Recorder) -> None:
        self.client, self.recorder = client, recorder

    def get(self, path: str, headers: dict[str, str] = SUP, **params: object):  # type: ignore[no-untyped-def]
        resp = self.client.get(f"/api/insights{path}", params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        return resp


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[Env]:  # noqa: F811
    async def load() -> Recorder:
        recorder = Recorder(db_url)
        await recorder.start()
        for name, team in ACME.items():
            await _script(name, "acme", team).store(recorder, name)
        for name in GLOBEX:
            await _script(name, "globex").store(recorder, name)
        return recorder

    recorder = asyncio.run(load())
    app = FastAPI()
    app.state.db = recorder.db

    async def owner(call_id: str) -> tuple[bool, str | None]:
        return False, None

    app.add_middleware(AuthMiddleware, auth=Authenticator(tenant_settings(tmp_path)), owner=owner)
    app.include_router(router)
    with TestClient(app) as c:
        yield Env(c, recorder)
    asyncio.run(recorder.close())


def test_views_group_and_filter(env: Env) -> None:
    body = env.get("", group="week").json()
    views = body["views"]
    assert sum(r["calls"] for r in views["score_trend"]) == 4  # acme only, never globex's call
    assert [r["period"] for r in views["score_trend"]] == ["2025-W11", "2025-W19"]
    assert {r["rule"] for r in views["breaches_by_rule"]} >= {"US-THR-01"}
    assert {"agent": "agent-3", "rule": "US-THR-01", "breaches": 1} in views["breach_heatmap"]
    promised = sum(r["promised_amount"] for r in views["promise_trend"])
    assert sum(r["promises"] for r in views["promise_trend"]) == 2 and promised > 150
    assert {r["code"] for r in views["outcome_mix"]} >= {"promise_to_pay", "dispute", "payment_plan"}
    assert {r["agent"] for r in views["agent_exposure"]} == {"agent-7", "agent-3", "agente-12", "agente-4"}
    assert all("emotion" not in key for r in views["agent_exposure"] for key in r)
    assert body["humanisation"]["components"]["empathy"]["title"]["es"] == "Empatía ante las dificultades"
    es = env.get("", language="es").json()["views"]["score_trend"]
    assert sum(r["calls"] for r in es) == 2
    assert sum(r["calls"] for r in env.get("", team="north").json()["views"]["category_mix"]) == 2
    assert env.get("", agent="agent-3").json()["views"]["agent_exposure"] == [
        {"agent": "agent-3", "calls": 1, "hard_calls": 0, "abusive_calls": 0}]
    days = env.get("", date_from="2025-05-01T00:00:00Z", view="score_trend").json()["views"]
    assert list(days) == ["score_trend"] and all(r["period"] >= "2025-05-01" for r in days["score_trend"])
    assert env.client.get("/api/insights", params={"group": "month"}, headers=SUP).status_code == 422


def test_csv_every_view_neutralises_formulas(env: Env) -> None:
    formula = '=HYPERLINK("http://x")'
    asyncio.run(_script("en_wrong_number", "acme", agent_id=formula).store(env.recorder, "formula"))
    for view in env.get("").json()["views"]:
        resp = env.get("", headers=QA, format="csv", view=view)
        assert resp.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(resp.text)))
        assert rows[0] and len(rows) >= 2, view
        assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row), view
    rows = list(csv.DictReader(io.StringIO(env.get("", format="csv", view="agent_exposure").text)))
    assert {"agent": "'" + formula, "calls": "1", "hard_calls": "0", "abusive_calls": "0"} in rows
    assert env.client.get("/api/insights", params={"format": "csv"}, headers=SUP).status_code == 422


def test_humanisation_per_call_with_evidence(env: Env) -> None:
    good = env.get("/calls/en_promise_to_pay/humanisation").json()
    assert good["index"] >= 90 and good["title"]["es"] == "Índice de humanización"
    assert good["components"]["empathy"]["evidence"][0]["source"] == "item"
    bad = env.get("/calls/en_threat_refusal/humanisation").json()
    assert bad["index"] < good["index"]
    pressure = bad["components"]["no_pressure"]
    assert any(e["source"] == "rule" and e["id"] == "US-THR-01" and e["quote"]["quote"] for e in pressure["evidence"])
    spanish = env.get("/calls/es_plan_hardship/humanisation").json()
    assert spanish["index"] is not None and spanish["components"]["options"]["title"]["en"]
    agents = {r["agent"]: r for r in env.get("", view="humanisation_agents").json()["views"]["humanisation_agents"]}
    assert agents["agent-3"]["humanisation"] < agents["agent-7"]["humanisation"]


def test_override_refreshes_the_facts(env: Env) -> None:
    before = env.get("", agent="agent-7").json()["views"]["score_trend"][0]["avg_score"]
    with env.recorder.db.session() as s:
        repo.override_item(s, "en_promise_to_pay", "A1", "fail", "lead", "no name given")
    after = env.get("", agent="agent-7").json()["views"]["score_trend"][0]["avg_score"]
    assert after < before


def test_coaching_card_notes_and_trend(env: Env) -> None:
    card = env.get("/agents/agent-3/coaching").json()
    assert card["rules"][0]["code"] == "US-THR-01" and card["rules"][0]["quotes"][0]["quote"]
    assert card["items"] and card["items"][0]["title"]["es"]
    assert card["since_last_note"] is None and card["notes"] == []
    resp = env.client.post("/api/insights/agents/agent-3/coaching/notes", headers=SUP,
                           json={"text": "Sin amenazas: ofrecer opciones.", "author": "someone-else"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["author"] == "supervisor@acme"  # from the token, never from the body
    now = datetime.now(UTC) + timedelta(seconds=1)
    asyncio.run(replace(_script("en_threat_refusal", "acme"), started_at=now).store(env.recorder, "after-note"))
    card = env.get("/agents/agent-3/coaching").json()
    assert card["notes"][0]["text"] == "Sin amenazas: ofrecer opciones."
    assert card["since_last_note"]["since"]["calls"] == 1
    globex = env.get("/agents/agent-3/coaching", headers=bearer("globex", "supervisor")).json()
    assert globex["notes"] == [] and globex["period"]["calls"] == 0


def test_tenants_see_only_their_calls(env: Env) -> None:
    globex = bearer("globex", "qa")
    views = env.get("", headers=globex).json()["views"]
    assert sum(r["calls"] for r in views["score_trend"]) == 1
    assert env.client.get("/api/insights/calls/en_promise_to_pay/humanisation", headers=globex).status_code == 404
    assert env.client.get("/api/insights").status_code == 401
    agent = bearer("acme", "agent", "en_promise_to_pay")
    assert env.client.get("/api/insights", headers=agent).status_code == 403
