"""The shared embedding worker: requests of many calls encoded as one batch, same rows as one at a time,
finals first, a cache for repeated sentences, failures reaching only their callers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from models.batching import Priority
from models.embedding_worker import EmbeddingWorker
from models.embeddings import load_embedder

# one debtor utterance per call, as three concurrent calls' analysers would embed them
CALLS = [
    ["I lost my job last month", "and I can't pay anything right now"],
    ["No puedo pagar este mes", "perdí mi trabajo"],
    ["If you don't pay today we will call your employer"],
]


@pytest.fixture
def worker():
    w = EmbeddingWorker(window_ms=300, cache_size=0)
    yield w
    w.close()


def _together(worker: EmbeddingWorker, groups: list[list[str]], priorities: list[Priority] | None = None):
    priorities = priorities or [Priority.FINAL] * len(groups)
    barrier = threading.Barrier(len(groups))

    def one(i: int) -> tuple[np.ndarray, float]:
        barrier.wait()
        out = worker.embed(groups[i], priorities[i], call_id=f"c{i}")
        return out, time.monotonic()

    with ThreadPoolExecutor(len(groups)) as pool:
        return list(pool.map(one, range(len(groups))))


def test_concurrent_calls_are_encoded_as_one_batch_with_the_rows_of_one_at_a_time(worker):
    outs = _together(worker, CALLS)
    assert worker.stats()["batch_sizes"] == {5: 1}  # five distinct texts, one encode
    direct = load_embedder()
    for (out, _), texts in zip(outs, CALLS, strict=True):
        assert out.shape == (len(texts), direct.dim)
        assert np.allclose(out, direct.embed(texts), atol=1e-5)


def test_finals_are_served_before_interims_when_a_batch_is_full():
    worker = EmbeddingWorker(window_ms=300, max_batch=1, cache_size=0)
    try:
        groups = [["an interim fragment of speech"], ["a final utterance of the debtor"]]
        (_, interim_done), (_, final_done) = _together(worker, groups, [Priority.INTERIM, Priority.FINAL])
    finally:
        worker.close()
    assert final_done < interim_done


def test_repeated_sentences_come_from_the_cache():
    worker = EmbeddingWorker()
    try:
        first = worker.embed(CALLS[0])
        again = worker.embed([CALLS[0][1], CALLS[0][0], "something new"])
        stats = worker.stats()
    finally:
        worker.close()
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])
    assert stats["cache_hits"] == 2 and stats["cache_misses"] == 3
    assert sum(stats["batch_sizes"].values()) == 2  # the second request encoded only "something new"


def test_a_failed_encode_reaches_its_callers_and_the_worker_goes_on(worker):
    with pytest.raises(TypeError):  # the packaged encoder rejects a non-string
        worker.embed([None])  # type: ignore[list-item]
    assert worker.embed(["still working"]).shape == (1, worker.encoder.dim)
    assert worker.embed([]).shape == (0, worker.encoder.dim)


def test_a_closed_worker_refuses_work():
    worker = EmbeddingWorker()
    worker.close()
    with pytest.raises(RuntimeError, match="closed"):
        worker.embed(["too late"])
