"""Account facts between front ends through Redis (with the Redis event bus: several nodes, one Redis).

A call lives on one node, but the lender's PUT / PATCH / GET /calls/{id}/account may reach any node:

- a live call is found in the bus's `{p}:live` hash (call -> node); the request goes to that node on its
  channel `{p}:facts:{node}` and its answer comes back on a list `{p}:facts:reply:{id}` (BLPOP), so the
  caller gets the holder's own answer (applied, changed fields, 404/409/422) or 504 when none comes;
- facts for a call not started yet wait in Redis (`{p}:facts:wait:{tenant}:{call}`, expiring after
  `account_facts_wait_s`), where any node reads, merges and, when the call starts on it, takes them; at most
  `account_facts_max_waiting` calls' facts wait, as on one node: the sorted set `{p}:facts:waiting` (wait key
  -> when held) finds the oldest, dropped when one more would pass the bound.

A node starting a call first marks it live in `{p}:live`, then takes its waiting facts; a node holding
facts marks them waiting, then looks for the call again: whichever of the two runs second sees the other's
write, so facts sent while a call starts on another node are never left waiting.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import structlog
from redis.asyncio import Redis

from assist.distributed.redis_subscription import Message, RedisSubscription

log = structlog.get_logger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[tuple[int, Any]]]
"""A forwarded request -> (HTTP status, body or error detail)."""
REPLY_TTL_S = 60
HOLD = """
local now, wait = redis.call('TIME'), tonumber(ARGV[2])
local at = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
if last and tonumber(last) >= at then
  at = tonumber(last) + 1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', wait)
redis.call('ZADD', KEYS[2], string.format('%.0f', at), KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', at - wait * 1000))
redis.call('PEXPIRE', KEYS[2], wait)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over <= 0 then
  return 0
end
local oldest = redis.call('ZPOPMIN', KEYS[2], over)
for i = 1, #oldest, 2 do
  redis.call('DEL', oldest[i])
end
return over
"""
"""Hold a call's facts (KEYS[1], ARGV[1]) for ARGV[2] ms, listed in the index KEYS[2] by when (Redis's clock in
microseconds, always after the last one listed, so the order is the order of holding); forget the expired,
drop the oldest beyond ARGV[3] calls; -> how many dropped. Atomic; it deletes keys found in the index rather
than passed in KEYS, which one Redis allows (a Redis Cluster would not)."""


class RouteFailed(Exception):
    """The node holding the call did not answer in time (it may have stopped)."""


class FactsRelay:
    """Forwards account-facts requests to the node holding the call and keeps waiting facts in Redis."""

    def __init__(self, redis: Redis, prefix: str, node_id: str, wait_s: float, timeout_s: float) -> None:
        self.redis, self.prefix, self.node_id = redis, prefix, node_id
        self.wait_s, self.timeout_s = wait_s, timeout_s
        self._subscription: RedisSubscription | None = None
        self._serving: set[asyncio.Task] = set()
        self._hold = redis.register_script(HOLD)

    @property
    def live_key(self) -> str:
        return f"{self.prefix}:live"

    def channel(self, node: str) -> str:
        return f"{self.prefix}:facts:{node}"

    def wait_key(self, tenant: str | None, call_id: str) -> str:
        return f"{self.prefix}:facts:wait:{tenant or '-'}:{call_id}"

    @property
    def waiting_key(self) -> str:
        return f"{self.prefix}:facts:waiting"

    async def start(self, handler: Handler) -> None:
        """Subscribe to this node's channel (before returning), then serve what arrives on it, each request
        in its own task (resubscribing after a Redis error: assist/distributed/redis_subscription.py)."""
        self._subscription = RedisSubscription(self.redis, "facts_relay", channels=[self.channel(self.node_id)],
                                               describe=lambda: {"node": self.node_id})

        async def dispatch(message: Message | None) -> None:
            if message is not None:
                task = asyncio.create_task(self._serve(message["data"], handler))
                self._serving.add(task)
                task.add_done_callback(self._serving.discard)

        await self._subscription.start(dispatch)

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.close()
        await asyncio.gather(*self._serving, return_exceptions=True)

    async def holder(self, call_id: str) -> str | None:
        """The node holding the live call, or None when no node does."""
        return cast(str | None, await self.redis.hget(self.live_key, call_id))

    async def forward(self, node: str, request: dict[str, Any]) -> tuple[int, Any]:
        """Send a request to `node` and wait for its (status, body); RouteFailed when none comes in time."""
        reply = f"{self.prefix}:facts:reply:{uuid.uuid4().hex}"
        message = json.dumps({**request, "reply": reply, "from": self.node_id})
        if await self.redis.publish(self.channel(node), message) == 0:
            raise RouteFailed(f"node {node} is not listening")
        answer = await self.redis.blpop([reply], timeout=self.timeout_s)
        if answer is None:
            raise RouteFailed(f"node {node} did not answer within {self.timeout_s:g} s")
        status, body = json.loads(answer[1])
        return status, body

    async def waiting(self, tenant: str | None, call_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self.wait_key(tenant, call_id))
        return None if raw is None else json.loads(raw)

    async def hold(self, tenant: str | None, call_id: str, facts: dict[str, Any], max_waiting: int) -> str | None:
        """Keep the facts waiting for the call, with at most `max_waiting` calls' facts waiting (the oldest
        dropped); the node that started the call meanwhile, if one did."""
        dropped = await self._hold(keys=[self.wait_key(tenant, call_id), self.waiting_key],
                                   args=[json.dumps(facts), max(1, int(self.wait_s * 1000)), max_waiting])
        if dropped:
            log.warning("facts_relay.waiting_dropped", calls=dropped, max_waiting=max_waiting)
        return await self.holder(call_id)

    async def take(self, tenant: str | None, call_id: str) -> dict[str, Any] | None:
        """The call starts here: mark it live on this node, then take the facts that waited for it."""
        key = self.wait_key(tenant, call_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.live_key, call_id, self.node_id)
        pipe.getdel(key)
        pipe.zrem(self.waiting_key, key)
        raw = (await pipe.execute())[1]
        return None if raw is None else json.loads(raw)

    async def _serve(self, data: str, handler: Handler) -> None:
        try:
            request = json.loads(data)
            reply = request.pop("reply")
        except (ValueError, KeyError, TypeError) as error:
            log.warning("facts_relay.bad_request", error=str(error), data=data[:200])
            return
        try:
            status, body = await handler(request)
        except Exception as error:  # the caller gets a 500 instead of waiting out its timeout
            log.exception("facts_relay.failed", call_id=request.get("call_id"))
            status, body = 500, f"{type(error).__name__}: {error}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(reply, json.dumps([status, body]))
        pipe.expire(reply, REPLY_TTL_S)
        await pipe.execute()
