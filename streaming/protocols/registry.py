"""Protocol adapters by name."""

from __future__ import annotations

from typing import Any

from streaming.protocols.base import ProtocolAdapter
from streaming.protocols.genesys import GenesysAdapter
from streaming.protocols.plain import PlainAdapter
from streaming.protocols.twilio import TwilioAdapter

ADAPTERS: dict[str, type[ProtocolAdapter]] = {
    a.name: a for a in (TwilioAdapter, GenesysAdapter, PlainAdapter)
}


def make_adapter(protocol: str, **kwargs: Any) -> ProtocolAdapter:
    """A fresh adapter for one connection; kwargs go to its constructor (all take max_message_bytes;
    genesys also takes headers, twilio inbound_speaker)."""
    try:
        cls = ADAPTERS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {sorted(ADAPTERS)}") from None
    return cls(**kwargs)
