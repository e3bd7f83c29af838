"""Calls in a shared database belong to the node that holds them: start-up recovery leaves other live nodes'
calls alone, a lost node's calls are ended and scored by a survivor (once, however many survive)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from assist.qa.script import Script
from assist.storage.db import Database
from assist.storage.recorder import Recorder
from assist.storage.tables import Call, Node, QaResult
from tests.test_storage import db_url  # noqa: F401 - the SQLite / PostgreSQL fixture

CALL = Script.load(Path(__file__).parent / "data" / "qa_calls" / "en_promise_to_pay.yaml")


async def _node(url: str, name: str, ttl_s: float = 60.0, heartbeat_s: float = 60.0) -> Recorder:
    recorder = Recorder(url, node_id=name, heartbeat_s=heartbeat_s, node_ttl_s=ttl_s)
    await recorder.start()
    return recorder


async def _crash(recorder: Recorder) -> None:
    """Stop as a killed process does: no more heartbeats, the lease left to run out, nothing ended."""
    assert recorder._heartbeat is not None
    recorder._heartbeat.cancel()
    recorder._heartbeat = None
    await recorder.close()


def _lease_until(url: str, node_id: str) -> datetime:
    db = Database(url, migrate=False)
    with db.session() as s:
        until = s.get(Node, node_id).lease_until
    db.close()
    return until if until.tzinfo else until.replace(tzinfo=UTC)


def _calls(url: str) -> dict[str, tuple[str, str | None, float | None]]:
    db = Database(url, migrate=False)
    with db.session() as s:
        rows = {c.id: (c.status, c.end_reason, c.score) for c in s.scalars(select(Call))}
    db.close()
    return rows


def test_start_up_recovers_only_its_own_calls_and_a_lost_nodes(db_url: str) -> None:  # noqa: F811
    async def run() -> tuple[list[str], list[str], dict]:
        a = await _node(db_url, "a")
        await CALL.store(a, "live-on-a", ended=False)
        lost = await _node(db_url, "lost", ttl_s=0.2)
        await CALL.store(lost, "on-lost", ended=False)
        await _crash(lost)
        b = await _node(db_url, "b")
        await CALL.store(b, "b-before-restart", ended=False)
        await _crash(b)
        await asyncio.sleep(0.3)  # lost's lease runs out; b's is still valid
        b_again = await _node(db_url, "b")
        recovered = await b_again.recover_interrupted()
        again = await b_again.recover_interrupted()
        states = _calls(db_url)
        await a.close()
        await b_again.close()
        return recovered, again, states

    recovered, again, states = asyncio.run(run())
    assert sorted(recovered) == ["b-before-restart", "on-lost"]
    assert again == []
    assert states["live-on-a"] == ("active", None, None)  # node a is alive: its call is left alone
    assert states["b-before-restart"][:2] == ("interrupted", "service stopped")
    assert states["on-lost"][:2] == ("interrupted", "node lost")
    assert states["on-lost"][2] is not None and states["b-before-restart"][2] is not None


def test_a_survivor_ends_and_scores_a_lost_nodes_calls_while_running(db_url: str) -> None:  # noqa: F811
    async def run() -> tuple[dict, float]:
        survivor = await _node(db_url, "survivor", heartbeat_s=0.1)
        doomed = await _node(db_url, "doomed", ttl_s=0.5, heartbeat_s=0.1)
        await CALL.store(doomed, "held-by-doomed", ended=False)
        await asyncio.sleep(0.8)  # the doomed node's heartbeat keeps its call its own
        alive = _calls(db_url)["held-by-doomed"]
        await _crash(doomed)
        crashed, lease = time.monotonic(), _lease_until(db_url, "doomed")
        while _calls(db_url)["held-by-doomed"][0] == "active":
            assert time.monotonic() - crashed < 10, "the survivor never recovered the lost node's call"
            await asyncio.sleep(0.1)
        recovered_at = datetime.now(UTC)
        await survivor.close()
        return {"alive": alive, "after": _calls(db_url)["held-by-doomed"]}, recovered_at - lease

    states, after_lease = asyncio.run(run())
    assert states["alive"] == ("active", None, None)
    status, reason, score = states["after"]
    assert (status, reason) == ("interrupted", "node lost") and score is not None
    # not before the lease ran out (its end as stored, not a guess from when the heartbeats stopped)
    assert after_lease >= timedelta(0)


def test_two_survivors_never_both_score_a_call(db_url: str) -> None:  # noqa: F811
    ids = [f"orphan-{i}" for i in range(12)]

    async def run() -> tuple[list[str], list[str]]:
        lost = await _node(db_url, "lost", ttl_s=0.1)
        for call_id in ids:
            await CALL.store(lost, call_id, ended=False)
        await _crash(lost)
        await asyncio.sleep(0.2)
        one, two = await _node(db_url, "one"), await _node(db_url, "two")
        claimed = await asyncio.gather(one.recover_interrupted(), two.recover_interrupted())
        await one.close()
        await two.close()
        return claimed[0], claimed[1]

    first, second = asyncio.run(run())
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(ids)
    db = Database(db_url, migrate=False)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(QaResult)) == len(ids)
    db.close()
