"""A call's language: named by its metadata, else detected from its first speech, then held.

Policy (README "Languages"):
- A language named at the start (metadata `language`, or the `LANGUAGE` setting) is held for the call.
- Otherwise finals are decoded by the multilingual model with the language left to detection among the
  served languages; the first final of at least `min_speech_s` detected with `decide_probability` decides.
- A held language changes only on strong evidence: `switch_after` consecutive finals, each of at least
  `min_speech_s`, detected as the same other served language with `switch_probability`. Code-switched
  calls (an English call where the debtor answers in Spanish) thus follow the language that is being
  spoken for a stretch, not a single word or name; a final in the held language resets the count.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CallLanguage:
    """The language requests of one call are decoded in; `current` None means "detect"."""

    current: str | None
    served: tuple[str, ...]
    min_speech_s: float = 1.0
    decide_probability: float = 0.7
    switch_probability: float = 0.85
    switch_after: int = 2
    _streak: list[str] = field(default_factory=list)

    def observe(self, detected: str | None, probability: float, speech_s: float) -> str | None:
        """A final's detected language; returns the call's language when this decides or changes it."""
        if detected is None or detected not in self.served or speech_s < self.min_speech_s:
            return None
        if self.current is None:
            if probability < self.decide_probability:
                return None
            self.current = detected
            return detected
        if detected == self.current or probability < self.switch_probability:
            self._streak.clear()
            return None
        self._streak = [*self._streak, detected] if self._streak[-1:] == [detected] else [detected]
        if len(self._streak) < self.switch_after:
            return None
        self.current, self._streak = detected, []
        return detected
