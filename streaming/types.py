"""The data types that flow through the pipeline: audio frames -> utterances."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from models.words import Word

__all__ = ["SAMPLE_RATE", "AudioFrame", "Speaker", "Utterance", "Word"]

SAMPLE_RATE = 16_000
"""Every frame inside the pipeline is 16 kHz mono float32 in [-1, 1]."""


class Speaker(StrEnum):
    """Which side of the call a channel carries."""

    AGENT = "agent"
    DEBTOR = "debtor"


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A run of one speaker's audio; `t` is seconds since call start on the call's audio clock."""

    speaker: Speaker
    t: float
    samples: np.ndarray = field(repr=False)

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.t + self.duration


@dataclass(frozen=True, slots=True)
class Utterance:
    """A speaker's stretch of speech; interim (`final=False`) ones are replaced by later ones."""

    speaker: Speaker
    seq: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    language: str = "en"
    final: bool = True
