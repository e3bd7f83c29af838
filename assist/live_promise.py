"""Promises to pay captured while the call goes on: the categoriser run over the finals so far whenever a
recent debtor final has a promise cue (assist/rules/categories.yaml), until it finds the promise with the
amount and date it needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assist.events import CallStarted, EventBase, TranscriptFinal
from assist.qa.calldata import CallData, Turn
from assist.qa.categorise import categorise, categorise_text, default_rules
from streaming.types import Speaker


def promise_so_far(call_id: str, events: Sequence[EventBase]) -> dict[str, Any] | None:
    """The promise to pay in the call's finals so far (amount, currency, date, method and when it was
    heard; never the words), or None."""
    finals = sorted((e for e in events if isinstance(e, TranscriptFinal)), key=lambda e: e.start)
    recent = finals[-(default_rules().window + 1):]
    if not any(e.speaker is Speaker.DEBTOR and "promise_to_pay" in categorise_text(e.text) for e in recent):
        return None
    started = next((e.at for e in events if isinstance(e, CallStarted)), None)
    turns = tuple(Turn(e.speaker.value, e.start, e.end, e.text, e.language) for e in finals)
    found = categorise(CallData(call_id, turns, started_at=started)).get("promise_to_pay")
    if found is None:
        return None
    return {"kind": "promise_to_pay", **{k: found.details.get(k) for k in ("amount", "currency", "date", "method")},
            "heard": {"start": found.cue.start, "end": found.cue.end}}
