"""Account facts across front ends: two real services sharing PostgreSQL and Redis; the lender's PUT / PATCH /
GET reaches whichever node, the call lives on the other, and the facts reach the live call (or wait for it
in Redis, whichever node starts it). Skips when PostgreSQL or Redis is not there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis.asyncio
from structlog.testing import capture_logs

from assist.api_account import FactsDesk
from assist.distributed.facts_relay import FactsRelay, RouteFailed
from assist.settings import Settings
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.tenancy import ACME_KEY, GLOBEX_KEY, TENANTS, TOKEN_SECRET
from tests.test_account import FACTS, log_of, stream
from tests.test_redis_bus import prefix, redis_url  # noqa: F401 - the Redis fixtures
from tests.test_storage import _postgres_url

KEY = {"X-API-KEY": ACME_KEY}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    yield from _postgres_url()


@pytest.fixture
def nodes(tmp_path: Path, pg_url: str, redis_url: str, prefix: str) -> Iterator[tuple[RunningService, RunningService]]:  # noqa: F811
    """Front ends a and b: the same database, the same Redis, the test tenants."""
    def settings(name: str) -> Settings:
        return Settings(asr_model="tiny.en", language="en", cache_dir=tmp_path / "cache", database_url=pg_url,
                        event_bus="redis", redis_url=redis_url, redis_prefix=prefix, node_id=f"{prefix}-{name}",
                        tenants=TENANTS, token_secret=TOKEN_SECRET)

    with RunningService(settings("a")) as a, RunningService(settings("b")) as b:
        yield a, b


def test_facts_sent_to_one_node_reach_the_call_live_on_the_other(nodes):
    a, b = nodes
    answers: dict[str, httpx.Response] = {}

    async def lender_calls_node_a() -> None:
        async with httpx.AsyncClient(base_url=a.http, headers=KEY) as client:
            while (await client.get("/calls/xnode-1/account")).json()["status"] != "applied":
                await asyncio.sleep(0.05)  # until node b has the call: a answers for it from then on
            answers["put"] = await client.put("/calls/xnode-1/account", json=FACTS)
            answers["patch"] = await client.patch("/calls/xnode-1/account", json={"dispute_open": True})
            answers["bad"] = await client.patch("/calls/xnode-1/account", json={"plan": {"status": "x"}})
            answers["get"] = await client.get("/calls/xnode-1/account")
            answers["globex"] = await client.put("/calls/xnode-1/account", json=FACTS,
                                                 headers={"X-API-KEY": GLOBEX_KEY})

    silence = np.zeros(5 * SAMPLE_RATE, dtype=np.float32)
    asyncio.run(stream(b, "xnode-1", silence, silence, {"language": "en"}, {0.5: lender_calls_node_a}))
    assert answers["put"].json()["status"] == "applied" and "balance" in answers["put"].json()["changed"]
    assert answers["patch"].json()["changed"] == ["dispute_open"]
    assert answers["bad"].status_code == 422 and answers["bad"].json()["detail"][0]["loc"] == ["body", "plan", "status"]
    assert answers["get"].json()["status"] == "applied" and answers["get"].json()["facts"]["dispute_open"] is True
    assert answers["globex"].status_code == 404  # another tenant's call, though it lives on another node
    events = log_of(b, "xnode-1")
    updates = [e for e in events if e["type"] == "account.updated"]
    assert [u["facts"].get("dispute_open") for u in updates] == [False, True]
    assert "account_dispute" in [e.get("card_id") for e in events if e["type"] == "prompt"]
    assert httpx.put(f"{a.http}/calls/xnode-1/account", json=FACTS, headers=KEY).status_code == 409  # ended


def test_facts_waiting_on_one_node_are_taken_by_the_node_that_starts_the_call(nodes):
    a, b = nodes
    waiting = {**FACTS, "balance": 400.0}
    assert httpx.put(f"{a.http}/calls/xnode-2/account", json=waiting, headers=KEY).json()["status"] == "waiting"
    merged = httpx.patch(f"{b.http}/calls/xnode-2/account", json={"creditor": "Acme Bank"}, headers=KEY).json()
    assert merged["status"] == "waiting" and merged["facts"]["balance"] == 400.0  # b merged a's waiting facts
    assert httpx.get(f"{a.http}/calls/xnode-2/account", headers=KEY).json()["facts"]["creditor"] == "Acme Bank"
    silence = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    asyncio.run(stream(b, "xnode-2", silence, silence, {"language": "en"}, {}))
    updates = [e for e in log_of(b, "xnode-2") if e["type"] == "account.updated"]
    assert len(updates) == 1 and updates[0]["facts"] == {**merged["facts"]}
    assert httpx.get(f"{a.http}/calls/xnode-3/account", headers=KEY).json() == {
        "call_id": "xnode-3", "status": "waiting", "facts": {}, "changed": []}


def test_the_relay_orders_waiting_and_starting_and_never_hangs(redis_url: str, prefix: str) -> None:  # noqa: F811
    """Whichever of 'facts wait' and 'the call starts' comes second sees the other; a node that is gone or
    silent is an error at once or after the timeout, never a hang."""
    async def run() -> None:
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        a, b = (FactsRelay(client, prefix, f"{prefix}-{n}", wait_s=60, timeout_s=0.5) for n in ("a", "b"))
        assert await b.take("acme", "c1") is None  # the call starts on b first...
        assert await a.hold("acme", "c1", {"balance": 1.0}, 10) == f"{prefix}-b"  # ...so a sends the facts there
        assert await a.hold("acme", "c2", {"balance": 2.0}, 10) is None  # facts first...
        assert await b.take("acme", "c2") == {"balance": 2.0}  # ...then the call takes them, once
        assert await b.take("acme", "c2") is None and await a.waiting("acme", "c2") is None
        with pytest.raises(RouteFailed, match="not listening"):
            await a.forward(f"{prefix}-gone", {"op": "get", "tenant": "acme", "call_id": "c1", "body": None})

        async def silent(request: dict) -> tuple[int, dict]:
            await asyncio.sleep(3)
            return 200, {}

        await b.start(silent)
        began = time.monotonic()
        with pytest.raises(RouteFailed, match="did not answer"):
            await a.forward(f"{prefix}-b", {"op": "get", "tenant": "acme", "call_id": "c1", "body": None})
        assert time.monotonic() - began < 2
        await b.close()
        await client.aclose()

    asyncio.run(run())


def test_facts_waiting_in_redis_are_bounded_like_those_waiting_on_one_node(redis_url: str, prefix: str) -> None:  # noqa: F811
    """At most `max_waiting` calls' facts wait in Redis, whichever node holds them: the oldest are dropped, as
    FactsDesk drops its own; facts held again count as new, and taken or expired ones no longer count."""
    max_waiting = 3

    async def run() -> tuple[dict, dict, list[str | None], int, int, int, list[dict]]:
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        a, b = (FactsRelay(client, prefix, f"{prefix}-{n}", wait_s=60, timeout_s=0.5) for n in ("a", "b"))
        desk = FactsDesk(wait_s=60, max_waiting=max_waiting)
        with capture_logs() as logs:
            for relay, call_id in ((a, "w1"), (a, "w2"), (b, "w3"), (b, "w4"), (a, "w2"), (b, "w5")):
                facts = {"balance": float(call_id[1:])}
                await relay.hold("acme", call_id, facts, max_waiting)
                desk.hold(("acme", call_id), facts)
            calls = [f"w{n}" for n in range(1, 6)]
            in_redis = {c: await a.waiting("acme", c) for c in calls}
            local = {c: desk.waiting(("acme", c)) for c in calls}
            taken = [await b.take("acme", "w4"), await b.take("acme", "w1")]
            await a.hold("acme", "w6", {"balance": 6.0}, max_waiting)  # w4 was taken: nothing to drop
            listed = await client.zcard(a.waiting_key)
            ttl = await client.pttl(a.waiting_key)
            short = FactsRelay(client, f"{prefix}:short", f"{prefix}-a", wait_s=0.3, timeout_s=0.5)
            for call_id in ("x1", "x2"):
                await short.hold("acme", call_id, {"balance": 1.0}, 2)
            await asyncio.sleep(0.5)  # x1 and x2 expire, and no longer count
            for call_id in ("x3", "x4"):
                await short.hold("acme", call_id, {"balance": 1.0}, 2)
            fresh = len([c for c in ("x3", "x4") if await short.waiting("acme", c) is not None])
        await client.aclose()
        dropped = [e for e in logs if e["event"] == "facts_relay.waiting_dropped"]
        return in_redis, local, taken, listed, ttl, fresh, dropped

    in_redis, local, taken, listed, ttl, fresh, dropped = asyncio.run(run())
    assert in_redis == local == {"w1": None, "w2": {"balance": 2.0}, "w3": None, "w4": {"balance": 4.0},
                                 "w5": {"balance": 5.0}}
    assert taken == [{"balance": 4.0}, None]
    assert listed == max_waiting and 0 < ttl <= 60_000  # w2, w5, w6; the index expires with its last facts
    assert fresh == 2
    assert [(e["calls"], e["log_level"]) for e in dropped] == [(1, "warning"), (1, "warning")]  # w1, then w3
