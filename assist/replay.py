"""Streams a recording into a running service over a real telephony protocol (the client side)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import numpy as np
import websockets

from streaming.protocols.genesys import GenesysClient
from streaming.protocols.plain import plain_messages
from streaming.protocols.signatures import audiohook_signature_headers, twilio_signature
from streaming.protocols.twilio import twilio_messages

CLOSE_TIMEOUT_S = 300.0
"""How long the sender waits for the service to answer its close: a service working through a backlog
(audio sent faster than real time) reads every message before the close, and a shorter wait would drop them."""


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
    api_key: str | None = None,
    client_secret: str | None = None,
    account_sid: str | None = None,
) -> str:
    """Send one call to `url` (ws://host:port); speed 1 = real time, 0 = as fast as possible.

    `api_key` is the tenant's X-API-KEY (plain, genesys) or its Twilio auth token (twilio: the upgrade
    is signed with it); `client_secret` signs a Genesys upgrade (RFC 9421) as AudioHook does;
    `account_sid` is the Twilio account the start message names.
    """
    metadata = metadata or {}
    endpoint = f"{url}/ingest/{protocol}"
    if protocol == "twilio":
        headers = {"X-Twilio-Signature": twilio_signature(api_key, endpoint)} if api_key else {}
        async with websockets.connect(endpoint, additional_headers=headers, close_timeout=CLOSE_TIMEOUT_S) as ws:
            await _paced(ws, twilio_messages(agent, debtor, sample_rate, call_sid=call_id,
                                             custom_parameters=metadata, account_sid=account_sid), speed)
    elif protocol == "plain":
        async with websockets.connect(endpoint, additional_headers={"X-API-KEY": api_key} if api_key else {},
                                      close_timeout=CLOSE_TIMEOUT_S) as ws:
            await _paced(ws, plain_messages(agent, debtor, sample_rate, call_id=call_id, metadata=metadata), speed)
    elif protocol == "genesys":
        client = GenesysClient(agent, debtor, sample_rate, conversation_id=call_id, custom_config=metadata,
                               language=str(metadata.get("language", "en-US")), api_key=api_key or "recobra-replay")
        headers = dict(client.headers)
        if client_secret:
            parts = urlsplit(endpoint)
            headers |= audiohook_signature_headers(headers, parts.path, parts.netloc, client_secret)
        async with websockets.connect(endpoint, additional_headers=headers, close_timeout=CLOSE_TIMEOUT_S) as ws:
            await ws.send(client.open_message())
            while client.opened is None:
                client.receive(await ws.recv(decode=True))
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


async def follow(url: str, call_id: str, on_event: Callable[[dict], None], since: int = 0,
                 token: str | None = None) -> None:
    """Print-friendly subscription to a call's events until it ends (`token`: an access token)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with websockets.connect(f"{url}/calls/{call_id}/events?since={since}", additional_headers=headers) as ws:
        try:
            async for message in ws:
                on_event(json.loads(message))
        except websockets.ConnectionClosed:
            pass
