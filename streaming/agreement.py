"""LocalAgreement-2: commit the longest common prefix of two successive hypotheses."""

from __future__ import annotations

import re

from streaming.types import Word

_PUNCT = re.compile(r"[^\w']+")


def _key(word: Word) -> str:
    return _PUNCT.sub("", word.text.lower())


class LocalAgreement:
    """Tracks one utterance's committed (stable) words across re-transcriptions of its audio."""

    def __init__(self) -> None:
        self.committed: list[Word] = []
        self._previous: list[Word] = []

    def update(self, hypothesis: list[Word]) -> list[Word]:
        """Feed the newest full hypothesis; returns the words newly committed by agreement."""
        new = hypothesis[len(self.committed):] if self._prefix_ok(hypothesis) else []
        old = self._previous[len(self.committed):] if self._prefix_ok(self._previous) else []
        agreed: list[Word] = []
        for a, b in zip(new, old):
            if _key(a) != _key(b):
                break
            agreed.append(a)
        self.committed.extend(agreed)
        self._previous = hypothesis
        return agreed

    def tail(self, hypothesis: list[Word]) -> list[Word]:
        """The unconfirmed rest of `hypothesis` after the committed words."""
        return hypothesis[len(self.committed):] if self._prefix_ok(hypothesis) else []

    def _prefix_ok(self, hypothesis: list[Word]) -> bool:
        n = len(self.committed)
        return len(hypothesis) >= n and all(_key(a) == _key(b) for a, b in zip(hypothesis, self.committed))


def join_words(words: list[Word]) -> str:
    return " ".join(w.text for w in words).strip()
