"""Per-connection limits on how fast and how finely a telephony peer may send (no I/O, virtual time)."""

from __future__ import annotations

from collections.abc import Iterable

from streaming.protocols.base import AdapterOutput, CloseCode, ProtocolError
from streaming.types import AudioFrame


class ConnectionLimits:
    """A token bucket on messages per wall-clock second (over-rate peers are read more slowly, not cut
    off), and a cap on messages per second of audio they carry: a flood of tiny frames is closed (4429).

    Call `throttle(now)` before reading a message and `count(outputs)` after parsing it.
    """

    def __init__(self, max_messages_per_s: float, max_messages_per_audio_s: float, grace: int) -> None:
        self.rate = max_messages_per_s
        self.per_audio_s = max_messages_per_audio_s
        self.grace = grace
        self.messages = 0
        self.audio_s = 0.0
        self._tokens = max_messages_per_s
        self._last: float | None = None

    def throttle(self, now: float) -> float:
        """Take one message from the bucket; returns the seconds to wait before reading it."""
        if self._last is not None:
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= 1
        return max(0.0, -self._tokens / self.rate)

    def count(self, outputs: Iterable[AdapterOutput]) -> None:
        """Note one received message and the audio it carried; ProtocolError 4429 on a flood."""
        self.messages += 1
        self.audio_s += sum(o.duration for o in outputs if isinstance(o, AudioFrame))
        if self.messages > self.grace and self.messages > self.per_audio_s * self.audio_s:
            raise ProtocolError(
                f"{self.messages} messages for {self.audio_s:.1f} s of audio: more than "
                f"{self.per_audio_s:g} per second of audio",
                CloseCode.RATE_LIMITED,
            )
