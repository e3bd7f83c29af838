"""One Redis pub/sub subscription kept up through dropped connections (the event bus's and the facts relay's).

`start` subscribes (then runs `on_connect`, e.g. a reconcile) before it returns, so an unreachable Redis
fails there, at once. From then on the subscription runs in a task of its own: every message, or None when
`poll_s` passes without one (for periodic work), goes to the handler. A Redis or socket error, in the
subscription or in the handler's own Redis calls, drops the connection, logged `{name}.disconnected`; it is
made again (subscribe, `on_connect`) after a backoff from RETRY_MIN_S doubling up to RETRY_MAX_S, logged
`{name}.reconnected`. Messages published while it is down are lost (pub/sub keeps nothing): `on_connect`
is where a user catches up. `close` stops it and releases its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

RETRY_MIN_S = 0.5
RETRY_MAX_S = 10.0

Message = dict[str, Any]
Handler = Callable[[Message | None], Awaitable[None]]
"""Takes a pub/sub message, or None after `poll_s` without one."""


class RedisSubscription:
    """Channels and patterns subscribed on `redis`, re-subscribed with bounded exponential backoff."""

    def __init__(self, redis: Redis, name: str, *, channels: Iterable[str] = (), patterns: Iterable[str] = (),
                 poll_s: float = 1.0, on_connect: Callable[[], Awaitable[None]] | None = None,
                 describe: Callable[[], dict[str, Any]] | None = None,
                 drop_idle_connections: bool = False) -> None:
        """`name` prefixes the log events (and names the task); `describe` gives their other fields;
        `drop_idle_connections`: after an error, also close the pool's idle connections (likely dead too)."""
        self.redis, self.name = redis, name
        self.channels, self.patterns = list(channels), list(patterns)
        if not self.channels and not self.patterns:
            raise ValueError("a subscription needs a channel or a pattern")
        self.poll_s = poll_s
        self.on_connect = on_connect
        self.describe = describe or dict
        self.drop_idle_connections = drop_idle_connections
        self.reconnects = 0
        """How many times the subscription was made again after losing its connection."""
        self._task: asyncio.Task | None = None

    async def start(self, handler: Handler) -> None:
        """Subscribe and run `on_connect` (errors are raised here), then deliver messages in the background."""
        if self._task is not None:
            raise RuntimeError(f"{self.name}: already started")
        pubsub = await self._connect()
        self._task = asyncio.create_task(self._run(pubsub, handler), name=self.name)

    async def close(self) -> None:
        """Stop delivering (a handler call under way is cancelled) and release the connection."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _connect(self) -> PubSub:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            if self.channels:
                await pubsub.subscribe(*self.channels)
            if self.patterns:
                await pubsub.psubscribe(*self.patterns)
            if self.on_connect is not None:
                await self.on_connect()
        except BaseException:
            await _close(pubsub)
            raise
        return pubsub

    async def _run(self, pubsub: PubSub | None, handler: Handler) -> None:
        delay = RETRY_MIN_S
        lost_at: float | None = None  # when the connection was lost, while it is
        try:
            while True:
                try:
                    if pubsub is None:
                        pubsub = await self._connect()
                        self.reconnects += 1
                        log.info(f"{self.name}.reconnected", **self.describe(),
                                 down_s=round(time.monotonic() - (lost_at or 0.0), 3))
                        delay, lost_at = RETRY_MIN_S, None
                    await handler(await pubsub.get_message(timeout=self.poll_s))
                except (RedisError, OSError) as error:
                    lost_at = time.monotonic() if lost_at is None else lost_at
                    log.warning(f"{self.name}.disconnected", **self.describe(), error=str(error), retry_in=delay)
                    if self.drop_idle_connections:
                        with contextlib.suppress(RedisError, OSError):
                            await self.redis.connection_pool.disconnect(inuse_connections=False)
                    if pubsub is not None:
                        await _close(pubsub)
                        pubsub = None
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, RETRY_MAX_S)
        finally:
            if pubsub is not None:
                await _close(pubsub)


async def _close(pubsub: PubSub) -> None:
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()
