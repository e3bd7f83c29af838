"""The pub/sub subscription the event bus and the facts relay share (assist/distributed/redis_subscription.py),
against a real Redis: its connection killed server-side (CLIENT KILL from a second client), it comes back by
itself, subscribed again to its channels and patterns; a Redis error in the handler's own work does the same."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from structlog.testing import capture_logs

from assist.distributed.redis_subscription import Message, RedisSubscription
from tests.test_redis_bus import prefix, redis_url  # noqa: F401 - the Redis fixtures

WAIT_S = 30.0


async def _received(publisher: redis.asyncio.Redis, channel: str, data: str, got: asyncio.Queue) -> Message:
    """Publish `data` again and again until the subscription delivers it (pub/sub drops what is sent while
    the subscriber is away); bounded, so a subscription that never comes back fails the test."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        await publisher.publish(channel, data)
        try:
            while (message := await asyncio.wait_for(got.get(), 0.5))["data"] != data:
                pass
            return message
        except TimeoutError:
            continue
    raise AssertionError(f"{data!r} on {channel} never came through")


def test_a_subscription_recovers_after_its_connection_is_killed(redis_url: str, prefix: str) -> None:  # noqa: F811
    async def run() -> tuple[list[dict], list[Message], int, int, list[int]]:
        name = f"{prefix}-subscriber"
        # no hidden retries in redis-py (as the event bus's client): the loss reaches the subscription
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True, retry=Retry(NoBackoff(), 0),
                                              client_name=name)
        admin = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        got: asyncio.Queue[Message] = asyncio.Queue()
        connects: list[int] = []

        async def on_connect() -> None:
            connects.append(len(connects))

        async def handler(message: Message | None) -> None:
            if message is not None and message["data"] == "fail":
                raise redis.ConnectionError("the handler's own Redis call failed")
            if message is not None:
                got.put_nowait(message)

        subscription = RedisSubscription(client, "test_sub", channels=[f"{prefix}:direct"],
                                         patterns=[f"{prefix}:pattern:*"], poll_s=0.2, on_connect=on_connect,
                                         describe=lambda: {"test": prefix})
        with capture_logs() as logs:
            await subscription.start(handler)
            messages = [await _received(admin, f"{prefix}:direct", "before", got)]
            killed = 0
            for row in await admin.client_list():
                if row.get("name") == name:
                    killed += await admin.client_kill_filter(_id=row["id"])
            messages.append(await _received(admin, f"{prefix}:pattern:x", "after kill", got))
            messages.append(await _received(admin, f"{prefix}:direct", "after kill", got))
            await admin.publish(f"{prefix}:direct", "fail")
            messages.append(await _received(admin, f"{prefix}:pattern:y", "after failure", got))
            await subscription.close()
        listening = (await admin.pubsub_numsub(f"{prefix}:direct"))[0][1]
        listening += len([row for row in await admin.client_list() if row.get("name") == name])
        await client.aclose()
        await admin.aclose()
        return [e for e in logs if e["event"].startswith("test_sub.")], messages, killed, listening, connects

    logs, messages, killed, listening, connects = asyncio.run(run())
    assert killed == 1  # the subscription's one connection
    assert [(m["type"], m["channel"], m["data"]) for m in messages] == [
        ("message", f"{prefix}:direct", "before"), ("pmessage", f"{prefix}:pattern:x", "after kill"),
        ("message", f"{prefix}:direct", "after kill"), ("pmessage", f"{prefix}:pattern:y", "after failure")]
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("test_sub.disconnected", "warning"), ("test_sub.reconnected", "info")] * 2
    assert all(e["test"] == prefix for e in logs)
    assert logs[0]["retry_in"] == 0.5 and "closed" in logs[0]["error"].lower()
    assert logs[2]["error"] == "the handler's own Redis call failed"
    assert connects == [0, 1, 2]  # on_connect at the start and after each loss
    assert listening == 0  # closed: no subscriber on the channel, no connection left open


def test_a_subscription_to_an_unreachable_redis_fails_at_start() -> None:
    async def run() -> None:
        client = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0")
        subscription = RedisSubscription(client, "test_sub", channels=["nowhere"])
        try:
            await subscription.start(lambda message: asyncio.sleep(0))
        finally:
            await subscription.close()
            await client.aclose()

    with pytest.raises(redis.ConnectionError):
        asyncio.run(run())
