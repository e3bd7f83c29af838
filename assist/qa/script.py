"""Scripted calls (YAML: turns + analysis events + expectations) as stored-call data or live events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from assist.events import EVENT_ADAPTER, CallEnded, CallStarted, EventBase, WordOut
from assist.qa.calldata import CallData, Turn

if TYPE_CHECKING:
    from assist.storage.recorder import Recorder


@dataclass(frozen=True)
class Script:
    """turns: [speaker, start, end, text]; events: analysis event dicts; expect: what QA should find."""

    name: str
    language: str
    started_at: datetime
    metadata: Mapping[str, Any]
    turns: tuple[tuple[str, float, float, str], ...]
    events: tuple[Mapping[str, Any], ...]
    expect: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path) -> Script:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        started = raw["started_at"]
        started = started if isinstance(started, datetime) else datetime.fromisoformat(started)
        return cls(path.stem, raw["language"], started,
                   raw.get("metadata", {}), tuple(tuple(t) for t in raw["turns"]), tuple(raw.get("events", [])),
                   raw.get("expect", {}))

    def call_data(self, call_id: str | None = None) -> CallData:
        turns = tuple(sorted((Turn(s, a, b, text, self.language) for s, a, b, text in self.turns),
                             key=lambda t: t.start))
        return CallData(call_id or self.name, turns, self.events, self.metadata, self.started_at,
                        max(t.end for t in turns))

    def live_events(self, call_id: str, ended: bool = True) -> list[EventBase]:
        """The events a live session would have emitted, in call-clock order, seq 1, 2, 3..."""
        timed: list[tuple[float, dict[str, Any]]] = []
        counts: dict[str, int] = {}
        for speaker, start, end, text in self.turns:
            counts[speaker] = counts.get(speaker, 0) + 1
            words = _spread_words(text, start, end)
            timed.append((end, {"type": "transcript.final", "speaker": speaker, "utterance": counts[speaker],
                                "start": start, "end": end, "text": text, "words": words, "language": self.language}))
        timed += [(float(e["t"]), {k: v for k, v in e.items() if k != "seq"}) for e in self.events]
        timed.sort(key=lambda x: x[0])
        out: list[EventBase] = [CallStarted(call_id=call_id, seq=1, at=self.started_at, protocol="script",
                                            metadata=dict(self.metadata))]
        for t, body in timed:
            at = self.started_at + timedelta(seconds=t)
            out.append(EVENT_ADAPTER.validate_python({**body, "call_id": call_id, "seq": len(out) + 1, "t": t,
                                                      "at": at}))
        if ended:
            duration = max(t for t, _ in timed)
            out.append(CallEnded(call_id=call_id, seq=len(out) + 1, t=duration, reason="hangup", duration=duration,
                                 at=self.started_at + timedelta(seconds=duration)))
        return out

    async def store(self, recorder: Recorder, call_id: str, ended: bool = True) -> dict | None:
        """Record the call as if streamed live; returns the QA result when it ended, else None."""
        events = self.live_events(call_id, ended=ended)
        first, last = events[0], events[-1]
        assert isinstance(first, CallStarted)
        await recorder.call_started(first)
        for e in events[1:-1] if ended else events[1:]:
            await recorder.record(e)
        if not ended:
            return None
        assert isinstance(last, CallEnded)
        return await recorder.call_ended(last)


def _spread_words(text: str, start: float, end: float) -> list[dict[str, Any]]:
    """Word timings spread evenly over the utterance (scripts carry utterance timings only)."""
    words = text.split()
    step = (end - start) / max(len(words), 1)
    return [WordOut(text=w, start=start + i * step, end=start + (i + 1) * step, probability=1.0).model_dump()
            for i, w in enumerate(words)]


