"""The QA REST API against SQLite and PostgreSQL, fed by the recorder with scripted EN/ES calls."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assist.api_qa import router
from assist.qa.script import Script
from assist.storage import repository as repo
from assist.storage.recorder import Recorder
from assist.storage.tables import QaResult
from tests.test_storage import db_url  # noqa: F401 - db_url is a fixture (SQLite + PostgreSQL)

CALLS = Path(__file__).parent / "data" / "qa_calls"
LOADED = ("en_promise_to_pay", "en_threat_refusal", "es_plan_hardship", "es_dispute_cease")


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:  # noqa: F811
    async def load() -> Recorder:
        recorder = Recorder(db_url)
        await recorder.start()
        for name in LOADED:
            await Script.load(CALLS / f"{name}.yaml").store(recorder, name)
        return recorder

    recorder = asyncio.run(load())
    app = FastAPI()
    app.state.db = recorder.db
    app.include_router(router)
    with TestClient(app) as c:
        yield c
    asyncio.run(recorder.close())


def _ids(resp) -> set[str]:  # type: ignore[no-untyped-def]
    assert resp.status_code == 200, resp.text
    return {c["id"] for c in resp.json()}


def test_list_and_filters(client: TestClient) -> None:
    assert _ids(client.get("/api/calls")) == set(LOADED)
    assert _ids(client.get("/api/calls", params={"agent": "agent-7"})) == {"en_promise_to_pay"}
    assert _ids(client.get("/api/calls", params={"compliance_fail": True})) == {"en_threat_refusal"}
    assert _ids(client.get("/api/calls", params={"band": "meets_standard"})) == {"en_promise_to_pay",
                                                                                "es_plan_hardship"}
    assert _ids(client.get("/api/calls", params={"category": "hardship_unemployment"})) == {
        "en_promise_to_pay", "es_plan_hardship"}
    assert _ids(client.get("/api/calls", params={"category": "dispute"})) == {"es_dispute_cease"}
    assert _ids(client.get("/api/calls", params={"date_from": "2025-05-01T00:00:00Z"})) == {
        "es_plan_hardship", "es_dispute_cease"}
    assert _ids(client.get("/api/calls", params={"date_to": "2025-05-01T00:00:00Z", "limit": 1})) == {
        "en_threat_refusal"}
    assert client.get("/api/calls", params={"band": "excellent"}).status_code == 422


def test_call_detail_has_transcript_events_and_evidence(client: TestClient) -> None:
    resp = client.get("/api/calls/en_threat_refusal")
    assert resp.status_code == 200
    body = resp.json()
    script = Script.load(CALLS / "en_threat_refusal.yaml")
    assert [u["text"] for u in body["utterances"]] == [t[3] for t in script.turns]
    assert [e["seq"] for e in body["events"]] == list(range(1, len(script.live_events("x")) + 1))
    gate = body["scorecard"]["gate"]
    assert gate[0]["result"] == "fail" and gate[0]["evidence"][0]["start"] == 6.5
    # the standing warnings are those the gate failed on (plus any non-critical ones)
    critical = [w for w in body["warnings"] if w["payload"]["severity"] == "critical"]
    assert [w["payload"]["evidence"]["start"] for w in critical] == [g["evidence"][0]["start"] for g in gate]
    assert all(w["type"] == "compliance.warning" and w["payload"]["status"] == "confirmed" for w in body["warnings"])
    assert body["category"]["primary"] == "refusal"
    assert client.get("/api/calls/nope").status_code == 404


def test_override_audits_and_recomputes(client: TestClient) -> None:
    before = client.get("/api/calls/en_promise_to_pay").json()["scorecard"]
    resp = client.post("/api/calls/en_promise_to_pay/scorecard/items/D3/override",
                       json={"result": "na", "reviewer": "qa.lead", "comment": "Agent had to read the script."})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["override"]["old_result"], out["override"]["new_result"]) == ("fail", "na")
    assert out["override"]["old_score"] == before["score"] == 96.5
    assert out["scorecard"]["score"] == out["override"]["new_score"] == 100.0
    detail = client.get("/api/calls/en_promise_to_pay").json()
    assert detail["call"]["score"] == 100.0
    assert [(o["reviewer"], o["item_id"]) for o in detail["overrides"]] == [("qa.lead", "D3")]
    gate_id = client.get("/api/calls/en_threat_refusal").json()["scorecard"]["gate"][0]["id"]
    cleared = client.post(f"/api/calls/en_threat_refusal/scorecard/items/{gate_id}/override",
                          json={"result": "pass", "reviewer": "compliance", "comment": "Quoted a customer."})
    assert cleared.json()["scorecard"]["compliance_fail"] is False
    assert _ids(client.get("/api/calls", params={"compliance_fail": True})) == set()
    assert client.post("/api/calls/en_promise_to_pay/scorecard/items/Z9/override",
                       json={"result": "na", "reviewer": "a", "comment": "b"}).status_code == 404


def test_csv_export(client: TestClient) -> None:
    resp = client.get("/api/calls.csv", params={"category": "right_party"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert {r["id"] for r in rows} == set(LOADED)
    by_id = {r["id"]: r for r in rows}
    assert by_id["en_promise_to_pay"]["score"] == "96.5"
    assert by_id["en_threat_refusal"]["band"] == "compliance_fail"


def test_overrides_survive_a_rescore(db_url: str) -> None:  # noqa: F811
    """A call scored again (its stream resumed and ended again) keeps the reviewers' overrides."""
    script = Script.load(CALLS / "en_promise_to_pay.yaml")

    async def run() -> tuple[dict, dict, dict]:
        recorder = Recorder(db_url)
        await recorder.start()
        first = await script.store(recorder, "c1")
        with recorder.db.session() as s:
            repo.override_item(s, "c1", "D3", "na", "qa.lead", "Scripted disclosure, talk share not fair.")
            repo.override_item(s, "c1", "A1", "fail", "qa.lead", "Company name was wrong.")
            repo.override_item(s, "c1", "A1", "pass", "qa.lead", "Checked the recording: it was right.")
        again = await recorder.call_ended(script.live_events("c1")[-1])
        with recorder.db.session() as s:
            stored = s.get_one(QaResult, "c1").scorecard
        await recorder.close()
        return first, again, stored

    first, again, stored = asyncio.run(run())
    assert first is not None
    assert first["scorecard"]["score"] == 96.5
    results = {i["id"]: i["result"] for i in again["scorecard"]["items"]}
    assert (results["D3"], results["A1"]) == ("na", "pass")
    assert again["scorecard"]["score"] == stored["score"] == 100.0
    assert stored == again["scorecard"]
