"""Phrase matching for compliance rules (EN/ES): normalised token sequences with `<slot>` wildcards and
negation scope (collections-domain.md §1.7, L35), plus semantic similarity on sentence embeddings."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from assist.analysis.text import normalise
from streaming.types import Utterance

SLOT = re.compile(r"<(\w+)>")
SLOT_MAX_TOKENS = 3  # a `<name>`/`<amount>` slot stands for 1..3 words
NEGATION_WINDOW = 4  # a negator this many tokens or fewer before a phrase negates it (same clause)
CONDITION_GAP = 2  # a negator at most this many tokens after "if"/"si" belongs to the condition
_CLAUSE_END = re.compile(r"[,.;:!?…]")
_SENTENCE_END = re.compile(r"[.;!?…]")
_CLAUSE_START = re.compile(r"[¿¡]")

Phrase = tuple[str | None, ...]
"""A compiled phrase: normalised tokens, None where a slot is."""


def compile_phrase(text: str) -> Phrase:
    """'my name is <name>' -> ('my', 'name', 'is', None)."""
    out: list[str | None] = []
    for i, part in enumerate(SLOT.split(text)):
        if i % 2:
            out.append(None)
        else:
            out.extend(normalise(part).split())
    return tuple(out)


def embedding_text(text: str) -> str:
    """A phrase as a sentence to embed: slots dropped."""
    return " ".join(SLOT.sub(" ", text).split())


def spoken_text(text: str) -> str:
    """A transcript span as a sentence to embed: full stops, commas and quotes around it dropped (question
    and exclamation marks carry meaning and stay). The heads learn from unpunctuated lines, and a final
    full stop alone moves the encoder's vector (P(exposure) 0.44 -> 0.97)."""
    return text.strip(" .,;:…\"'")


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    word: int  # index of the transcript word it came from (for times and quotes)
    clause: int  # punctuation-delimited clause: negation does not cross it
    sentence: int  # sentences and clauses are the units that are embedded


@dataclass(frozen=True)
class Tokens:
    """An utterance's normalised tokens with the words they came from."""

    items: tuple[Token, ...]
    words: tuple[str, ...]
    times: tuple[tuple[float, float], ...]

    @classmethod
    def from_utterance(cls, utt: Utterance) -> Tokens:
        if utt.words:
            words = [w.text.strip() for w in utt.words]
            times = [(w.start, w.end) for w in utt.words]
        else:
            words = utt.text.split()
            step = (utt.end - utt.start) / max(1, len(words))
            times = [(utt.start + i * step, utt.start + (i + 1) * step) for i in range(len(words))]
        items: list[Token] = []
        clause = sentence = 0
        for i, word in enumerate(words):
            if _CLAUSE_START.search(word) and items and items[-1].clause == clause:
                clause += 1
            for tok in normalise(word).split():
                items.append(Token(tok, i, clause, sentence))
            if _CLAUSE_END.search(word):
                clause += 1
            if _SENTENCE_END.search(word):
                sentence += 1
        return cls(tuple(items), tuple(words), tuple(times))

    def quote(self, start: int, end: int) -> tuple[str, float, float]:
        """Transcript words covering tokens [start, end): (text, start s, end s)."""
        first, last = self.items[start].word, self.items[end - 1].word
        return " ".join(self.words[first : last + 1]).rstrip(",;:"), self.times[first][0], self.times[last][1]

    def spans(self, unit: str) -> list[tuple[int, int]]:
        """Token ranges [start, end) of each "sentence" or "clause"."""
        spans: list[tuple[int, int]] = []
        for i, tok in enumerate(self.items):
            if spans and getattr(self.items[spans[-1][0]], unit) == getattr(tok, unit):
                spans[-1] = (spans[-1][0], i + 1)
            else:
                spans.append((i, i + 1))
        return spans


@dataclass(frozen=True, slots=True)
class Match:
    start: int  # token range [start, end)
    end: int
    phrase: Phrase


def _match_at(toks: Sequence[str], i: int, phrase: Phrase, j: int = 0) -> int | None:
    """End index when `phrase[j:]` matches `toks` from `i` (slots take the fewest words), else None."""
    if j == len(phrase):
        return i
    if phrase[j] is None:
        for k in range(1, SLOT_MAX_TOKENS + 1):
            if i + k <= len(toks) and (end := _match_at(toks, i + k, phrase, j + 1)) is not None:
                return end
        return None
    if i < len(toks) and toks[i] == phrase[j]:
        return _match_at(toks, i + 1, phrase, j + 1)
    return None


class PhraseIndex:
    """Many phrase lists, each under a key, found in one pass over an utterance's tokens."""

    def __init__(self, lists: Mapping[Hashable, Iterable[str]]) -> None:
        self._by_first: dict[str, list[tuple[Hashable, Phrase]]] = defaultdict(list)
        self._slot_first: list[tuple[Hashable, Phrase]] = []
        for key, phrases in lists.items():
            for text in phrases:
                phrase = compile_phrase(text)
                if not phrase:
                    continue
                if phrase[0] is None:
                    self._slot_first.append((key, phrase))
                else:
                    self._by_first[phrase[0]].append((key, phrase))

    def find(self, tokens: Tokens) -> dict[Hashable, list[Match]]:
        """Every occurrence of every phrase, by key; a match shorter than and inside another match of
        the same key is dropped."""
        toks = [t.text for t in tokens.items]
        found: dict[Hashable, list[Match]] = defaultdict(list)
        for i, tok in enumerate(toks):
            for key, phrase in (*self._by_first.get(tok, ()), *self._slot_first):
                if (end := _match_at(toks, i, phrase)) is not None:
                    found[key].append(Match(i, end, phrase))
        for key, matches in found.items():
            found[key] = [
                m
                for m in matches
                if not any(
                    o is not m and o.start <= m.start and m.end <= o.end and o.end - o.start > m.end - m.start
                    for o in matches
                )
            ]
        return found


def is_negated(tokens: Tokens, match: Match, negators: Sequence[Match]) -> bool:
    """A negator ends within NEGATION_WINDOW tokens before the match, in the same clause. Phrases that
    carry their own negation ("no me llame más", "i don't owe this") are never negated again."""
    if any(m.start >= match.start and m.end <= match.end for m in negators):
        return False
    clause = tokens.items[match.start].clause
    return any(
        m.start < match.start
        # ends in the window, or inside the phrase ("no vamos a" + "vamos a llamar")
        and m.end - 1 >= match.start - NEGATION_WINDOW
        and tokens.items[m.start].clause == clause
        for m in negators
    )


def negated_phrase(text: str, phrase: str, negators: frozenset[str], window: int) -> bool:
    """`phrase` occurs in `text` (both normalised) only after a negator at most `window` words before it,
    and carries none itself: "no tengo abogado" does not say "tengo abogado"; "i can't pay" keeps its own."""
    toks, words = text.split(), phrase.split()
    if not words or negators.intersection(words):
        return False
    starts = [i for i in range(len(toks) - len(words) + 1) if toks[i : i + len(words)] == words]
    return bool(starts) and all(negators.intersection(toks[max(0, i - window) : i]) for i in starts)


def outside_conditions(tokens: Tokens, negators: Sequence[Match], conditionals: Sequence[Match]) -> list[Match]:
    """The negators that do not belong to a condition in the same clause: "if you don't pay, we will
    sue you" threatens ("sí, no ..." is not one: the comma parts them)."""
    def clause(m: Match) -> int:
        return tokens.items[m.start].clause

    return [
        m for m in negators
        if not any(0 <= m.start - c.end <= CONDITION_GAP and clause(c) == clause(m) for c in conditionals)
    ]


Embed = Callable[[list[str]], np.ndarray]
"""Texts -> (n, d) L2-normalised embeddings."""


@dataclass(frozen=True)
class SemanticHit:
    similarity: float
    sentence: int  # index into the embedded sentences
    phrase: str


class SemanticIndex:
    """Phrase embeddings by key, computed once; scores an utterance's sentences against them."""

    def __init__(self, lists: Mapping[Hashable, Iterable[str]], embed: Embed) -> None:
        keys: list[Hashable] = []
        texts: list[str] = []
        for key, phrases in lists.items():
            for text in phrases:
                if t := embedding_text(text):
                    keys.append(key)
                    texts.append(t)
        self.keys = keys
        self.texts = texts
        self.matrix = embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)

    def best(
        self,
        sentence_embeddings: np.ndarray,
        keys: set[Hashable],
        background: Hashable | None = None,
        margin: float = 0.0,
    ) -> dict[Hashable, SemanticHit]:
        """For each key in `keys`, its phrase most similar to any sentence. With `background` (neutral
        sentences), a phrase counts for a sentence only when it beats the closest neutral one by `margin`."""
        if not len(sentence_embeddings) or not len(self.keys):
            return {}
        sims = np.einsum("id,pd->ip", sentence_embeddings, self.matrix)  # (sentences, phrases); not BLAS (intent.py)
        is_bg = np.array([k == background for k in self.keys])
        if background is not None and is_bg.any():
            floor = sims[:, is_bg].max(axis=1, keepdims=True) + margin
            sims = np.where(sims > floor, sims, -1.0)
        out: dict[Hashable, SemanticHit] = {}
        for j in np.argsort(-sims.max(axis=0)):
            key = self.keys[j]
            if key in keys and key not in out and not is_bg[j]:
                i = int(sims[:, j].argmax())
                out[key] = SemanticHit(float(sims[i, j]), i, self.texts[j])
        return out
