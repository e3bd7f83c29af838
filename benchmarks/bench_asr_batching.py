"""Batched vs thread-pool ASR worker on the same burst of real utterances: throughput and latency.

K finals (FLEURS English utterances, about 10 s each) are submitted at once to an AsrWorker in each mode,
alternating modes for `--repeats` rounds so that both see the same machine load. This is what chose the
CPU default of `asr_batching=auto` (models/asr.py); bench_capacity.py gives the end-to-end numbers.

Usage: python -m benchmarks.bench_asr_batching [--model tiny.en] [--device cpu] [--bursts 1,4,8]
Writes benchmarks/results/asr_batching_<model>_<device>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from assist.democall import DATA, load_mono
from benchmarks.bench_capacity import RESULTS, device_name, parse_sizes, resolve_device
from models.asr import AsrRequest, AsrWorker
from streaming.types import SAMPLE_RATE


async def burst(worker: AsrWorker, audios: list[np.ndarray]) -> tuple[float, list[float]]:
    """Wall time for the whole burst and each request's latency."""
    started = time.monotonic()

    async def one(i: int, audio: np.ndarray) -> float:
        await worker.transcribe(AsrRequest(audio, 0.0, "en", final=True, call_id=f"c{i}", channel="agent"))
        return time.monotonic() - started

    latencies = await asyncio.gather(*(one(i, a) for i, a in enumerate(audios)))
    return time.monotonic() - started, list(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--bursts", default="1,4,8", help="requests submitted at once")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-batch", type=int, default=16)
    args = parser.parse_args()
    device = resolve_device(args.device)
    clips = [load_mono(DATA / "fleurs-cuttledoc" / f"fleurs-en-{i:03d}.ogg") for i in range(10)]
    cache = Path.home() / ".cache" / "recobra"
    workers = {mode: AsrWorker(args.model, cache, device, batching=mode, max_batch=args.max_batch)
               for mode in ("on", "off")}
    rows = []
    try:
        for k in parse_sizes(args.bursts):
            audios = [clips[i % len(clips)] for i in range(k)]
            audio_s = sum(len(a) for a in audios) / SAMPLE_RATE
            samples: dict[str, list[tuple[float, list[float]]]] = {"on": [], "off": []}
            asyncio.run(burst(workers["on"], audios[:1]))  # warm both models
            asyncio.run(burst(workers["off"], audios[:1]))
            for _ in range(args.repeats):
                for mode in ("on", "off"):
                    samples[mode].append(asyncio.run(burst(workers[mode], audios)))
            for mode, runs in samples.items():
                wall = float(np.median([w for w, _ in runs]))
                lat = [x for _, lats in runs for x in lats]
                row = {"burst": k, "batching": mode, "wall_s": round(wall, 3),
                       "audio_s_per_wall_s": round(audio_s / wall, 2),
                       "latency_p50_s": round(float(np.percentile(lat, 50)), 3),
                       "latency_max_s": round(float(max(lat)), 3)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    result = {"model": args.model, "device": device, "device_name": device_name(device),
              "load_average_1m_at_end": round(os.getloadavg()[0], 2), "threads": workers["off"].threads,
              "max_batch": args.max_batch, "rows": rows,
              "date": datetime.now(UTC).isoformat(timespec="seconds")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"asr_batching_{args.model}_{device}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
