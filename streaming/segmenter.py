"""Per-channel voice-activity segmentation into utterances (audio time drives it)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streaming.types import SAMPLE_RATE, AudioFrame

WINDOW = 512


RESET_AFTER_SILENCE = 2 * SAMPLE_RATE
"""Silero's recurrent state decays over long silences: reset it after this many silent samples."""


class SpeechProbability(Protocol):
    def probability(self, window: np.ndarray) -> float: ...

    def reset(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Segment:
    """A closed stretch of speech: its audio starts at call-clock time `t0`."""

    t0: float
    audio: np.ndarray


class VadSegmenter:
    """Opens an utterance on speech, closes it after `min_silence_s` of silence or at `max_s`.

    `current()` gives the open utterance's audio (with `pad_s` pre-roll) for interim decoding.
    """

    def __init__(
        self,
        vad: SpeechProbability,
        threshold: float = 0.5,
        min_silence_s: float = 0.5,
        pad_s: float = 0.2,
        max_s: float = 15.0,
    ) -> None:
        self.vad = vad
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01)
        self.min_silence = int(min_silence_s * SAMPLE_RATE)
        self.pad = int(pad_s * SAMPLE_RATE)
        self.max_samples = int(max_s * SAMPLE_RATE)
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_t = 0.0
        self._preroll: deque[np.ndarray] = deque(maxlen=max(1, self.pad // WINDOW + 1))
        self._speech: list[np.ndarray] = []
        self._speech_t0 = 0.0
        self.speech_onset = 0.0
        """When the open utterance's speech was detected (its audio starts `pad_s` earlier)."""
        self._silence = 0
        self.clock = 0.0
        self.voiced = 0
        """Windows of speech seen inside utterances so far: unchanged across a stretch means nobody spoke."""

    @property
    def speaking(self) -> bool:
        return bool(self._speech)

    @property
    def pause_s(self) -> float:
        """Silence at the end of the open utterance so far (0.0 when none is open)."""
        return self._silence / SAMPLE_RATE if self._speech else 0.0

    def push(self, frame: AudioFrame) -> list[Segment]:
        """Add audio; returns the utterances this audio closed."""
        if not len(self._pending):
            self._pending_t = frame.t
        self._pending = np.concatenate([self._pending, frame.samples])
        closed: list[Segment] = []
        n = len(self._pending) // WINDOW * WINDOW
        for i in range(0, n, WINDOW):
            window = self._pending[i : i + WINDOW]
            t = self._pending_t + i / SAMPLE_RATE
            segment = self._step(window, t)
            if segment is not None:
                closed.append(segment)
        self._pending = self._pending[n:]
        self._pending_t += n / SAMPLE_RATE
        self.clock = self._pending_t
        return closed

    def current(self) -> Segment | None:
        return Segment(self._speech_t0, np.concatenate(self._speech)) if self._speech else None

    def flush(self) -> Segment | None:
        """Close the open utterance, if any (end of call)."""
        segment = self._close() if self._speech else None
        return segment

    def _step(self, window: np.ndarray, t: float) -> Segment | None:
        p = self.vad.probability(window)
        if not self._speech:
            if p >= self.threshold:
                pre = list(self._preroll)
                self._speech = [*pre, window]
                self._speech_t0 = t - len(pre) * WINDOW / SAMPLE_RATE
                self.speech_onset = t
                self._silence = 0
            else:
                self._preroll.append(window)
                self._silence += WINDOW
                if self._silence >= RESET_AFTER_SILENCE:
                    self.vad.reset()
                    self._silence = 0
            return None
        self._speech.append(window)
        if p < self.neg_threshold:
            self._silence += WINDOW
        else:
            self._silence = 0
            self.voiced += 1
        if self._silence >= self.min_silence or len(self._speech) * WINDOW >= self.max_samples:
            return self._close()
        return None

    def _close(self) -> Segment:
        keep = len(self._speech) - max(0, (self._silence - self.pad) // WINDOW)
        segment = Segment(self._speech_t0, np.concatenate(self._speech[:keep]))
        self._speech = []
        self._silence = 0
        self._preroll.clear()
        self.vad.reset()
        return segment
