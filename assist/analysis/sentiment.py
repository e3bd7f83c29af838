"""Text sentiment per final utterance: a trained logistic head on the shared multilingual embeddings,
fused with the VADER lexicon for English. The head is trained by benchmarks/train_sentiment.py."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from assist.analysis.base import CallContext
from assist.events import EventBase, SentimentScore
from models.embedding_worker import shared_embedder
from models.embeddings import Embedder
from streaming.types import AudioFrame, Speaker, Utterance

HEAD_PATH = Path(__file__).resolve().parent.parent / "rules" / "sentiment_head.npz"
LABELS = ("negative", "neutral", "positive")
_POLARITY = np.array([-1.0, 0.0, 1.0], dtype=np.float32)


class Sentiment(NamedTuple):
    """One text's sentiment: `score` = P(positive) - P(negative), in -1..1."""

    label: str
    score: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class SentimentHead:
    """Multinomial logistic regression over sentence embeddings (+ VADER compound for English)."""

    weights: np.ndarray  # (dim, 3)
    bias: np.ndarray  # (3,)
    embedder: str  # the models.embeddings name it was trained on
    vader_weight: float  # added to the logits as compound * (-1, 0, +1) for English

    @classmethod
    def load(cls, path: Path) -> SentimentHead:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["weights"], z["bias"], str(z["embedder"]), float(z["vader_weight"]))

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, weights=self.weights.astype(np.float32), bias=self.bias.astype(np.float32),
            embedder=np.str_(self.embedder), vader_weight=np.float32(self.vader_weight), labels=np.array(LABELS),
        )

    def probabilities(self, embeddings: np.ndarray, vader_compound: np.ndarray | None = None) -> np.ndarray:
        """(n, 3) class probabilities in LABELS order."""
        logits = embeddings @ self.weights + self.bias
        if vader_compound is not None:
            logits = logits + self.vader_weight * vader_compound[:, None] * _POLARITY
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


@lru_cache(maxsize=1)
def load_head(path: Path = HEAD_PATH) -> SentimentHead:
    """The shipped head, loaded once per process."""
    return SentimentHead.load(path)


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_compound(texts: list[str]) -> np.ndarray:
    """VADER compound polarity (-1..1) per text; English only."""
    analyser = _vader()
    return np.array([analyser.polarity_scores(t)["compound"] for t in texts], dtype=np.float32)


def check_sentiment_model(model: str, head: SentimentHead | None = None) -> None:
    """Raise ValueError unless the head was trained on embedding model `model`."""
    head = head or load_head()
    if model != head.embedder:
        raise ValueError(f"the sentiment head was trained on embedding model {head.embedder!r}, not {model!r}: "
                         f"retrain it with `python -m benchmarks.train_sentiment --model {model}`")


def classify(texts: list[str], language: str = "en", head: SentimentHead | None = None,
             embedder: Embedder | None = None, call_id: str = "") -> list[Sentiment]:
    """Sentiment of each text. Blocking (embeds through `embedder`, by default the process's shared one
    for the head's model): run it off the event loop."""
    if not texts:
        return []
    head = head or load_head()
    embedder = embedder or shared_embedder(head.embedder)
    check_sentiment_model(embedder.model, head)
    embeddings = embedder.embed(texts, call_id=call_id)
    compound = vader_compound(texts) if language.startswith("en") else None
    out = []
    for p in head.probabilities(embeddings, compound):
        out.append(Sentiment(LABELS[int(p.argmax())], float(p @ _POLARITY), dict(zip(LABELS, map(float, p)))))
    return out


class SentimentAnalyser:
    """Emits a SentimentScore for each final utterance of either speaker; in EU mode never for the
    agent (text emotion inference on a worker). `debtor_trend()` feeds the abandon-risk analyser."""

    def __init__(self, ctx: CallContext, trend_turns: int = 3, embedder: Embedder | None = None) -> None:
        self.ctx = ctx
        self.embedder = embedder
        self._debtor_scores: deque[float] = deque(maxlen=trend_turns)

    def on_utterance(self, utt: Utterance) -> list[EventBase]:
        if not utt.final or not utt.text.strip():
            return []
        if self.ctx.eu_mode and utt.speaker is Speaker.AGENT:
            return []
        (result,) = classify([utt.text], utt.language or self.ctx.language, embedder=self.embedder,
                             call_id=self.ctx.call_id)
        if utt.speaker is Speaker.DEBTOR:
            self._debtor_scores.append(result.score)
        return [
            SentimentScore(
                call_id=self.ctx.call_id, t=utt.end, speaker=utt.speaker, utterance=utt.seq,
                label=result.label, score=round(result.score, 4),
                probabilities={k: round(v, 4) for k, v in result.probabilities.items()},
            )
        ]

    def debtor_trend(self) -> float:
        """The debtor's recent sentiment in -1..1: a recency-weighted mean of the scores of their last
        `trend_turns` final utterances (the latest counts most); 0.0 before they have spoken.
        The abandon-risk analyser samples it over time to see a drop."""
        if not self._debtor_scores:
            return 0.0
        weights = np.arange(1, len(self._debtor_scores) + 1, dtype=np.float64)
        return float(np.dot(weights, self._debtor_scores) / weights.sum())

    def on_audio(self, frame: AudioFrame) -> list[EventBase]:
        return []

    def on_tick(self, t: float) -> list[EventBase]:
        return []
