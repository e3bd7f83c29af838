"""Streams a recording into a running service over a real telephony protocol (the client side)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator

import numpy as np
import websockets

from streaming.protocols.genesys import GenesysClient
from streaming.protocols.plain import plain_messages
from streaming.protocols.twilio import twilio_messages


async def _paced(ws, messages: Iterator[tuple[float, str | bytes]], speed: float) -> None:
    t0 = time.monotonic()
    for at, message in messages:
        if speed > 0 and (delay := at / speed - (time.monotonic() - t0)) > 0:
            await asyncio.sleep(delay)
        await ws.send(message)


async def replay(
    url: str,
    protocol: str,
    agent: np.ndarray,
    debtor: np.ndarray,
    sample_rate: int,
    *,
    call_id: str,
    metadata: dict | None = None,
    speed: float = 1.0,
) -> str:
    """Send one call to `url` (ws://host:port); speed 1 = real time, 0 = as fast as possible."""
    metadata = metadata or {}
    endpoint = f"{url}/ingest/{protocol}"
    if protocol == "twilio":
        async with websockets.connect(endpoint) as ws:
            await _paced(ws, twilio_messages(agent, debtor, sample_rate, call_sid=call_id,
                                             custom_parameters=metadata), speed)
    elif protocol == "plain":
        async with websockets.connect(endpoint) as ws:
            await _paced(ws, plain_messages(agent, debtor, sample_rate, call_id=call_id, metadata=metadata), speed)
    elif protocol == "genesys":
        client = GenesysClient(agent, debtor, sample_rate, conversation_id=call_id, custom_config=metadata,
                               language=str(metadata.get("language", "en-US")))
        async with websockets.connect(endpoint, additional_headers=client.headers) as ws:
            await ws.send(client.open_message())
            while client.opened is None:
                client.receive(await ws.recv())
            reader = asyncio.create_task(_drain(ws, client.receive))
            await _paced(ws, client.audio_messages(), speed)
            await reader
    else:
        raise ValueError(f"unknown protocol {protocol!r}")
    return call_id


async def _drain(ws, handle: Callable[[str], object]) -> None:
    try:
        async for message in ws:
            if isinstance(message, str):
                handle(message)
    except websockets.ConnectionClosed:
        pass


async def follow(url: str, call_id: str, on_event: Callable[[dict], None], since: int = 0) -> None:
    """Print-friendly subscription to a call's events until it ends."""
    async with websockets.connect(f"{url}/calls/{call_id}/events?since={since}") as ws:
        try:
            async for message in ws:
                on_event(json.loads(message))
        except websockets.ConnectionClosed:
            pass
