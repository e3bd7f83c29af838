"""The stored call as the scorer and categoriser see it: utterances plus analysis events."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from assist.analysis.text import normalise

E = TypeVar("E")


def standing_warnings(events: Iterable[E], payload: Callable[[E], Mapping[str, Any]]) -> list[E]:
    """The compliance warnings among `events` that stand at the end of the call. The live stream sends a
    warning again for every change of its status: "provisional" (from an interim), then "confirmed" or
    "retracted" (the final, or a must-say phrase found in time), with the same rule and evidence start.
    The latest status counts, and only "confirmed" ones stand. `payload` gives an event's fields."""
    latest: dict[tuple[Any, Any], E] = {}
    for e in events:
        fields = payload(e)
        if fields.get("type") == "compliance.warning":
            latest[(fields.get("rule_id"), (fields.get("evidence") or {}).get("start"))] = e
    return [e for e in latest.values() if payload(e).get("status", "confirmed") == "confirmed"]


@dataclass(frozen=True)
class Turn:
    """One final utterance of one speaker (text already redacted when stored)."""

    speaker: str
    start: float
    end: float
    text: str
    language: str = "en"
    norm: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", normalise(self.text))

    @property
    def n_words(self) -> int:
        return len(self.norm.split())


@dataclass(frozen=True)
class CallData:
    """Everything QA needs about one call; `events` are analysis event payloads (dicts with "type")."""

    call_id: str
    turns: tuple[Turn, ...]
    events: tuple[Mapping[str, Any], ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    duration: float = 0.0
    interrupted: bool = False

    @property
    def language(self) -> str:
        """The language most turns were spoken in ("en" when there are none)."""
        langs = [t.language for t in self.turns]
        return max(set(langs), key=langs.count) if langs else "en"

    @property
    def end_time(self) -> float:
        return max([self.duration, *(t.end for t in self.turns)])

    def of(self, speaker: str) -> list[Turn]:
        return [t for t in self.turns if t.speaker == speaker]

    def events_of(self, event_type: str) -> list[Mapping[str, Any]]:
        return [e for e in self.events if e.get("type") == event_type]

    def standing_warnings(self) -> list[Mapping[str, Any]]:
        """Compliance warnings that stand at the end of the call (see `standing_warnings`)."""
        return standing_warnings(self.events, lambda e: e)
