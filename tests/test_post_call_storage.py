"""The post-call transcript queue on SQLite and PostgreSQL: the migration, queueing ended calls, claims
between front ends, work put back after a restart or a lost node, and scoring from the done transcript."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from assist.storage import nodes
from assist.storage import post_call as queue
from assist.storage import repository as repo
from assist.storage.db import MIGRATIONS, Database, make_engine
from assist.storage.tables import PostCallTranscript
from tests.test_storage import db_url  # noqa: F401 - the SQLite / PostgreSQL fixture

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _ended(db: Database, *call_ids: str) -> None:
    with db.session() as s:
        for call_id in call_ids:
            repo.ensure_call(s, call_id, NOW, "plain", {}, "en")
            s.flush()
            repo.end_call(s, call_id, "ended", "end", 10.0)


def test_upgrade_marks_calls_that_ended_before_it_skipped(db_url: str) -> None:  # noqa: F811
    engine = make_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
        for call_id, status in (("old-ended", "ended"), ("old-live", "active")):
            conn.execute(text("INSERT INTO calls (id, started_at, status, protocol, metadata) "
                              "VALUES (:id, :at, :status, 'plain', '{}')"),
                         {"id": call_id, "at": NOW, "status": status})
    engine.dispose()
    db = Database(db_url)
    with db.session() as s:
        rows = {r.call_id: r for r in s.scalars(select(PostCallTranscript))}
    db.close()
    assert set(rows) == {"old-ended"}
    assert (rows["old-ended"].status, rows["old-ended"].reason) == ("skipped", "predates")
    assert rows["old-ended"].utterances == [] and rows["old-ended"].settings == {}


def test_ended_calls_are_queued_claimed_once_and_put_back_after_a_restart(db_url: str) -> None:  # noqa: F811
    db = Database(db_url)
    _ended(db, "c1", "c2", "c3")
    with db.session() as s:
        repo.ensure_call(s, "live", NOW)
        assert queue.queue_ended(s) == 3
    with db.session() as s:
        assert queue.queue_ended(s) == 0  # each call once, however often a runner looks
        nodes.renew(s, "node-b", 30.0)
    with db.session() as s:
        a = queue.claim(s, "node-a")
    with db.session() as s:
        b = queue.claim(s, "node-b")
        lost = queue.claim(s, "node-gone")
    assert a and b and lost and len({a, b, lost}) == 3
    with db.session() as s:  # node-a restarts: its run and the lost node's go back; node-b's lease holds
        assert sorted(queue.reset_stale(s, "node-a")) == sorted([a, lost])
        status = dict(s.execute(select(PostCallTranscript.call_id, PostCallTranscript.status)).all())
    assert status == {a: "pending", b: "running", lost: "pending"}
    db.close()


def test_a_call_interrupted_too_often_fails_and_a_done_transcript_is_what_scoring_reads(db_url: str) -> None:  # noqa: F811
    db = Database(db_url)
    _ended(db, "again", "scored")
    with db.session() as s:
        queue.queue_ended(s)
    for _ in range(queue.MAX_ATTEMPTS):
        with db.session() as s:
            while (claimed := queue.claim(s, "crashy")) is not None:
                if claimed == "scored":
                    queue.finish(s, claimed, queue.DONE, utterances=[
                        {"seq": 1, "speaker": "debtor", "start": 1.0, "end": 2.0, "text": "post call words",
                         "language": "en", "words": []}])
        with db.session() as s:
            queue.reset_stale(s, "crashy")
    with db.session() as s:
        row = s.get_one(PostCallTranscript, "again")
        assert (row.status, row.reason, row.attempts) == ("failed", "attempts", queue.MAX_ATTEMPTS)
        assert [t.text for t in repo.load_call_data(s, "scored").turns] == ["post call words"]
        assert repo.load_call_data(s, "again").turns == ()  # no live finals and no post-call transcript
    db.close()
