"""One shared sentence embedder per process, serving the analysis of every call.

Requests from all calls meet in one priority queue (finals, then interims, then post-call work). One
thread takes everything waiting, up to `max_batch` requests, and encodes their texts as one batch: on a
2-core CPU the packaged encoder embeds 8 texts in one pass 2.5x faster than one at a time
(benchmarks/bench_embedding_batching.py). With the default window of 0 ms an idle worker starts at once
and batches form from what arrives while it is busy; a window makes it wait that long for company.
Texts embedded recently are answered from a cache without queueing.
"""

from __future__ import annotations

import atexit
import threading
from collections import Counter
from concurrent.futures import Future
from functools import cache

import numpy as np
import structlog

from models.batching import Pending, Priority, RequestQueue
from models.embeddings import EmbeddingCache, encode_groups, load_embedder

log = structlog.get_logger(__name__)


class EmbeddingWorker:
    """An `Embedder` over the process's model for `model`, batching across calls."""

    def __init__(self, model: str = "default", *, window_ms: float = 0.0, max_batch: int = 32,
                 cache_size: int = 4096) -> None:
        self.model = model
        self.encoder = load_embedder(model)
        self.window_s = max(0.0, window_ms) / 1000
        self.max_batch = max(1, max_batch)
        self.cache = EmbeddingCache(cache_size)
        self.batch_sizes: Counter[int] = Counter()  # texts per encode -> encodes
        self._queue = RequestQueue()
        self._thread = threading.Thread(target=self._consume, name="embed", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        log.info("embeddings.ready", model=model, dim=self.encoder.dim, window_s=self.window_s,
                 max_batch=self.max_batch)

    def embed(self, texts: list[str], priority: Priority = Priority.FINAL, call_id: str = "") -> np.ndarray:
        """(n, d) L2-normalised rows for `texts`. Blocks until encoded: call it from a worker thread."""
        if not texts:
            return self.encoder.embed([])
        return self.cache.embed(list(texts), lambda missing: self._queued(missing, priority, call_id))

    def _queued(self, texts: list[str], priority: Priority, call_id: str) -> np.ndarray:
        future: Future[np.ndarray] = Future()

        def deliver(outcome: object) -> None:
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)  # type: ignore[arg-type]

        self._queue.put(Pending(texts, priority, deliver, call_id))
        return future.result()

    def lag(self) -> dict[str, float]:
        """Per call: how long its oldest unanswered request has waited, in seconds."""
        return self._queue.lag()

    def queue_depth(self) -> dict[str, int]:
        """Requests waiting, per priority (final, interim, post_call)."""
        return self._queue.depth()

    def stats(self) -> dict[str, object]:
        """Texts per encode ({size: encodes}) and cache hits/misses, for benchmarks, tests and metrics."""
        return {"batch_sizes": dict(self.batch_sizes), "cache_hits": self.cache.hits,
                "cache_misses": self.cache.misses}

    def close(self) -> None:
        """Refuse new work and fail what is still waiting; the encode in progress finishes."""
        atexit.unregister(self.close)
        for pending in self._queue.close():
            pending.deliver(RuntimeError("the embedding worker is closed"))
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _consume(self) -> None:
        while batch := self._queue.take(self.max_batch, self.window_s):
            groups: list[list[str]] = [p.item for p in batch]  # type: ignore[misc]
            outcomes: list[object]
            try:
                outcomes = list(encode_groups(self.encoder, groups))
                self.batch_sizes[len({t for g in groups for t in g})] += 1
            except Exception as error:  # every caller in the batch gets the error; the worker goes on
                log.exception("embeddings.encode_failed", requests=len(batch))
                outcomes = [error] * len(batch)
            self._queue.done(batch)
            for p, outcome in zip(batch, outcomes):
                p.deliver(outcome)


@cache
def shared_embedder(model: str = "default") -> EmbeddingWorker:
    """A process-wide worker for code that is not handed one (tools, benchmarks, tests)."""
    return EmbeddingWorker(model)
