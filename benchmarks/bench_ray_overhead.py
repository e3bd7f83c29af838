"""What serving ASR and embeddings through Ray Serve costs against in-process, on one machine.

Starts a local Ray cluster, deploys the ASR and embedding applications, then measures
  1. one request at a time: the same real FLEURS segments through AsrWorker and through RayAsrClient;
     real NatCS utterances (2 per request, never cached) through EmbeddingWorker and RayEmbeddingClient;
  2. N concurrent real-time calls into a front end with everything local, with ASR on Ray, and with ASR
     and embeddings on Ray: end-of-speech -> final latency, and the ASR batch sizes Serve formed.

Usage: python -m benchmarks.bench_ray_overhead [--calls 2] [--model tiny.en]
Prints a table and writes benchmarks/results/ray_overhead_<model>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import ray
from ray import serve

from assist.democall import DATA, load_mono
from assist.distributed import ray_embed
from assist.distributed.ray_asr import RayAsrClient, deploy
from assist.distributed.ray_embed import RayEmbeddingClient
from assist.replay import follow, replay
from assist.settings import Settings
from benchmarks.bench_capacity import RESULTS, device_name
from benchmarks.bench_embedding_batching import utterances
from models.asr import AsrRequest, AsrWorker
from models.embedding_worker import EmbeddingWorker
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.test_end_to_end import harvard_call

CLIPS = [DATA / "fleurs-cuttledoc" / f"fleurs-en-00{i}.ogg" for i in range(6)]


async def per_request(workers: dict, clips: list[np.ndarray], reps: int) -> dict[str, list[float]]:
    """Median seconds per clip and backend, one request at a time, the backends interleaved so that both
    see the same load."""
    for worker in workers.values():  # warm-up
        await worker.transcribe(AsrRequest(clips[0], 0.0, "en", final=True))
    times: dict[str, list[list[float]]] = {name: [[] for _ in clips] for name in workers}
    for _ in range(reps):
        for k, clip in enumerate(clips):
            for name, worker in workers.items():
                started = time.perf_counter()
                await worker.transcribe(AsrRequest(clip, 0.0, "en", final=True))
                times[name][k].append(time.perf_counter() - started)
    return {name: [statistics.median(t) for t in per_clip] for name, per_clip in times.items()}


def per_embed_request(embedders: dict, texts: list[str], n: int) -> dict[str, float]:
    """Median seconds per two-text request and backend, one at a time, interleaved; no text repeats."""
    times: dict[str, list[float]] = {name: [] for name in embedders}
    for i in range(n):
        for j, (name, embedder) in enumerate(embedders.items()):
            k = 2 * (i * len(embedders) + j)
            started = time.perf_counter()
            embedder.embed(texts[k : k + 2])
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


async def one_call(service: RunningService, n: int, agent: np.ndarray, debtor: np.ndarray) -> list[float]:
    """Stream one call in real time; seconds from each utterance's end of speech to its final event."""
    call_id = f"bench-{n}"
    events: list[dict] = []
    start = time.time()
    sender = asyncio.create_task(replay(service.url, "twilio", agent, debtor, SAMPLE_RATE, call_id=call_id))
    async with httpx.AsyncClient() as http:
        while (await http.get(f"{service.http}/calls/{call_id}/log")).status_code != 200:
            await asyncio.sleep(0.05)
    await follow(service.url, call_id, events.append)
    await sender
    return [datetime.fromisoformat(e["at"]).timestamp() - (start + e["end"])
            for e in events if e["type"] == "transcript.final"]


def calls_latency(settings: Settings, n: int) -> list[float]:
    agent, debtor, _, _ = harvard_call()
    with RunningService(settings) as service:

        async def run():
            return await asyncio.gather(*(one_call(service, i, agent, debtor) for i in range(n)))

        return [x for call in asyncio.run(run()) for x in call]


def summary(values: list[float]) -> dict[str, float]:
    a = np.array(values)
    return {"n": len(a), "p50_s": round(float(np.percentile(a, 50)), 3), "p95_s": round(float(np.percentile(a, 95)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    clips = [load_mono(p) for p in CLIPS]
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(proxy_location="Disabled")
    with tempfile.TemporaryDirectory() as tmp:
        local = Settings(asr_model=args.model, cache_dir=Path(tmp), database_url=f"sqlite:///{tmp}/b.db")
        remote = local.model_copy(update={"inference_backend": "ray", "ray_app_name": "recobra-bench",
                                          "ray_embed_app_name": "recobra-bench-embed", "ray_embed_num_cpus": 0,
                                          "ray_asr_num_cpus": 2})  # the same two decode threads as local
        deploy(remote)
        ray_embed.deploy(remote)
        client = RayAsrClient.connect(remote)
        embed_client = RayEmbeddingClient.connect(remote)
        embed_local = EmbeddingWorker(cache_size=0)
        embed_s = per_embed_request({"local": embed_local, "ray": embed_client}, utterances(), 200)
        embed_local.close()
        worker = AsrWorker(args.model, Path(tmp))
        medians = asyncio.run(per_request({"local": worker, "ray": client}, clips, args.reps))
        local_s, ray_s = medians["local"], medians["ray"]
        worker.close()
        before = asyncio.run(client.stats())["batch_sizes"]
        latency = {"local": calls_latency(local, args.calls), "ray_asr": calls_latency(remote, args.calls),
                   "ray_asr_and_embeddings": calls_latency(remote.model_copy(update={"embedding_backend": "ray"}),
                                                           args.calls)}
        after = asyncio.run(client.stats())["batch_sizes"]
        serve.delete(remote.distributed.ray_app_name)
        serve.delete(remote.distributed.ray_embed_app_name)
    serve.shutdown()
    ray.shutdown()
    overhead = [r - c for r, c in zip(ray_s, local_s, strict=True)]
    result = {
        "model": args.model,
        "machine": device_name("cpu"),
        "per_request": {"clips": len(clips), "local_median_s": [round(x, 3) for x in local_s],
                        "ray_median_s": [round(x, 3) for x in ray_s],
                        "overhead_median_s": round(statistics.median(overhead), 4)},
        "per_embedding_request": {"texts": 2, "local_median_s": round(embed_s["local"], 4),
                                  "ray_median_s": round(embed_s["ray"], 4)},
        "calls": args.calls,
        "end_of_speech_to_final": {name: summary(values) for name, values in latency.items()},
        "serve_batch_sizes_during_calls": {k: v - before.get(k, 0) for k, v in sorted(after.items())
                                           if v - before.get(k, 0)},
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"ray_overhead_{args.model}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
