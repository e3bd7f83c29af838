"""What the recognisers return: words with call-clock timestamps (shared with streaming/, which builds on models/)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with call-clock timestamps (seconds)."""

    text: str
    start: float
    end: float
    probability: float = 1.0
