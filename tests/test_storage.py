"""Storage on SQLite and PostgreSQL: migrations, the recorder's writes, interrupted calls, redaction."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, func, select, text

from assist.events import TranscriptFinal
from assist.privacy import Redactor
from assist.qa.script import Script
from assist.storage.db import Database, upgrade_database
from assist.storage.recorder import Recorder
from assist.storage.tables import Base, Call, Event, Utterance

CALLS = Path(__file__).parent / "data" / "qa_calls"
PG_ADMIN = os.environ.get("RECOBRA_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards (skip if the server is down)."""
    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        admin.connect().close()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        if os.environ.get("RECOBRA_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL required but unreachable at {PG_ADMIN}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}")
    name = f"recobra_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'recobra.db'}"
    else:
        yield from _postgres_url()


def latest_revision() -> str:
    """The single head of the migration chain (by file name: 0001_..., 0002_...)."""
    versions = Path(upgrade_database.__code__.co_filename).parent / "migrations" / "versions"
    return max(p.name.split("_", 1)[0] for p in versions.glob("[0-9]*_*.py"))


def test_migrations_create_the_models_schema_and_are_idempotent(db_url: str) -> None:
    upgrade_database(db_url)
    upgrade_database(db_url)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert conn.scalar(text("select version_num from alembic_version")) == latest_revision()
    engine.dispose()
    assert diff == []


def test_recorder_stores_every_event_and_scores_at_end(db_url: str) -> None:
    script = Script.load(CALLS / "en_promise_to_pay.yaml")

    async def run() -> dict | None:
        recorder = Recorder(db_url)
        await recorder.start()
        result = await script.store(recorder, "call-1")
        await recorder.record(script.live_events("call-1")[3])  # a duplicate seq is ignored
        await recorder.close()
        return result

    result = asyncio.run(run())
    assert result is not None
    assert result["category"]["primary"] == "promise_to_pay"
    assert result["scorecard"]["score"] == script.expect["score"]
    db = Database(db_url)
    with db.session() as s:
        n_events = s.scalar(select(func.count()).select_from(Event).where(Event.call_id == "call-1"))
        utts = s.scalars(select(Utterance).where(Utterance.call_id == "call-1").order_by(Utterance.seq)).all()
        call = s.get_one(Call, "call-1")
        assert n_events == len(script.live_events("call-1"))
        assert [u.text for u in utts] == [t[3] for t in script.turns]
        assert utts[0].words[0]["text"] == "Good"
        assert (call.status, call.agent_id, call.band) == ("ended", "agent-7", "meets_standard")
    db.close()


def test_interrupted_call_is_kept_and_scored_on_recovery(db_url: str) -> None:
    script = Script.load(CALLS / "es_plan_hardship.yaml")

    async def crash_then_recover() -> list[str]:
        first = Recorder(db_url)
        await first.start()
        await script.store(first, "call-2", ended=False)
        await first.close()  # the service stops: no call.ended
        second = Recorder(db_url)
        await second.start()
        ids = await second.recover_interrupted()
        assert await second.recover_interrupted() == []
        await second.close()
        return ids

    assert asyncio.run(crash_then_recover()) == ["call-2"]
    db = Database(db_url)
    with db.session() as s:
        call = s.get_one(Call, "call-2")
        assert call.status == "interrupted"
        assert call.primary_category == "payment_plan"
        assert call.score is not None
        n_utts = s.scalar(select(func.count()).select_from(Utterance).where(Utterance.call_id == "call-2"))
        assert n_utts == len(script.turns)
    db.close()


def test_transcripts_are_redacted_in_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    final = TranscriptFinal(call_id="c", seq=2, speaker="debtor", utterance=1, start=1.0, end=4.0, language="en",
                            text="my card is 4111 1111 1111 1111", words=[
                                {"text": w, "start": 1.0 + i * 0.5, "end": 1.5 + i * 0.5, "probability": 0.9}
                                for i, w in enumerate(["my", "card", "is", "4111", "1111", "1111", "1111"])])

    async def run(redactor: Redactor) -> None:
        recorder = Recorder(url, redactor)
        await recorder.start()
        await recorder.record(final)
        await recorder.close()

    asyncio.run(run(Redactor()))
    db = Database(url)
    with db.session() as s:
        utt = s.scalars(select(Utterance)).one()
        event = s.scalars(select(Event)).one()
        assert utt.text == "my card is [CARD]"
        assert [w["text"] for w in utt.words] == ["my", "card", "is", "[CARD]", "[CARD]", "[CARD]", "[CARD]"]
        assert "4111" not in str(event.payload)
    db.close()
