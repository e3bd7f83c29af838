"""What every protocol adapter consumes and produces."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from streaming.types import AudioFrame


class CloseCode:
    """Websocket close codes used for ingest connections (RFC 6455 and the 4000 private range)."""

    NORMAL = 1000
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_MESSAGE = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    IDLE_TIMEOUT = 4408
    UNSUPPORTED_LANGUAGE = 4422
    UNSUPPORTED_MEDIA = 4415
    RATE_LIMITED = 4429


def close_reason(text: str) -> str:
    """`text` cut to the 123 UTF-8 bytes a websocket close frame can carry."""
    return text.encode("utf-8", "replace")[:123].decode("utf-8", "ignore")


class ProtocolError(Exception):
    """The peer broke the protocol; the connection is closed with `close_code` and `reason`."""

    def __init__(self, reason: str, close_code: int = CloseCode.BAD_MESSAGE) -> None:
        reason = close_reason(reason)  # reasons may echo the peer's input: keep them within a close frame
        super().__init__(reason)
        self.reason = reason
        self.close_code = close_code


@dataclass(frozen=True, slots=True)
class CallStart:
    """The peer opened a call. `metadata` carries vendor parameters (custom parameters, ids)."""

    call_id: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallStop:
    """The peer ended the call normally."""

    reason: str = "end"


@dataclass(frozen=True, slots=True)
class Reply:
    """A text message to send back to the peer (AudioHook `opened`, `pong`, `closed`...)."""

    text: str


AdapterOutput = CallStart | AudioFrame | CallStop | Reply


class ProtocolAdapter(ABC):
    """One connection's protocol state machine. Raises ProtocolError on bad input."""

    name: ClassVar[str]

    @abstractmethod
    def feed_text(self, text: str) -> list[AdapterOutput]:
        """Handle one text websocket message."""

    @abstractmethod
    def feed_bytes(self, data: bytes) -> list[AdapterOutput]:
        """Handle one binary websocket message."""
