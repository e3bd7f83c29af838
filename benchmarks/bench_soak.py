"""Soak test: a steady number of concurrent real-time calls, back to back, for a long time.

`--calls` slots each replay a real call (FLEURS) after the other for `--duration-s` (default 30 min)
against a `recobra serve` subprocess, at a rate the machine sustains (find it with bench_load or
bench_capacity). Checks that no event is ever lost (see bench_load) and that memory does not grow
without bound: the RSS trend over the second half of the run, in MB per hour, must stay under
`--max-growth-mb-per-h`. Reports latency per time window and memory over time.

Usage:
  python -m benchmarks.bench_soak --calls 4                        # 30 minutes
  python -m benchmarks.bench_soak --calls 2 --duration-s 120 --turns 2   # a short validation run
Writes benchmarks/results/soak_<model>_<calls>calls.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import numpy as np

from assist.democall import fleurs_call
from benchmarks.bench_load import (
    RESULTS,
    CallResult,
    Sampler,
    machine,
    one_call,
    percentiles,
    scrape,
    serve,
)
from streaming.types import SAMPLE_RATE


def growth_mb_per_h(samples: list[dict]) -> float:
    """Least-squares slope of RSS over the second half of the run (the first half warms caches up)."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return 0.0
    t = np.array([s["t_s"] for s in half]) / 3600
    rss = np.array([s["rss_mb"] for s in half])
    return float(np.polyfit(t, rss, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4, help="concurrent calls, kept up the whole time")
    parser.add_argument("--duration-s", type=float, default=1800)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--window-s", type=float, default=300.0, help="latency is reported per window")
    parser.add_argument("--max-growth-mb-per-h", type=float, default=50.0)
    args = parser.parse_args()
    agent, debtor, _ = fleurs_call("en", turns=args.turns)
    finished: list[tuple[float, CallResult]] = []

    with serve(args.model, args.device) as (http, pid):
        sampler = Sampler(http, pid, args.sample_s)
        sampler.start()
        t0 = time.monotonic()

        async def slot(k: int) -> None:
            await asyncio.sleep(k * 0.5)
            n = k
            while time.monotonic() - t0 < args.duration_s:
                result = await one_call(http, n, agent, debtor, args.speed)
                finished.append((time.monotonic() - t0, result))
                n += args.calls

        async def run() -> None:
            await asyncio.gather(*(slot(k) for k in range(args.calls)))

        asyncio.run(run())
        wall = time.monotonic() - t0
        sampler.stop.set()
        sampler.join()
        final_metrics = scrape(http)

    windows = []
    for start in np.arange(0, wall, args.window_s):
        in_window = [r for t, r in finished if start <= t < start + args.window_s]
        windows.append({"from_s": int(start), "calls": len(in_window),
                        "end_of_speech_to_final_s": percentiles([x for r in in_window for x in r.latencies])})
    growth = growth_mb_per_h(sampler.samples)
    results = [r for _, r in finished]
    result = {
        "concurrent_calls": args.calls,
        "duration_s": round(wall, 1),
        "calls_completed": len(results),
        "audio_s_per_call": round(len(agent) / SAMPLE_RATE, 1),
        "model": args.model,
        "speed": args.speed,
        "events_lost": sum(r.lost for r in results),
        "calls_failed": [{"call_id": r.call_id, "error": r.error} for r in results if r.error],
        "end_of_speech_to_final_s": percentiles([x for r in results for x in r.latencies]),
        "per_window": windows,
        "memory": {"start_mb": sampler.samples[0]["rss_mb"] if sampler.samples else None,
                   "peak_mb": max((s["rss_mb"] for s in sampler.samples), default=None),
                   "end_mb": sampler.samples[-1]["rss_mb"] if sampler.samples else None,
                   "growth_mb_per_h_second_half": round(growth, 1),
                   "bounded": growth < args.max_growth_mb_per_h},
        "dropped_frames": sum(v for k, v in final_metrics.items() if k.startswith("recobra_dropped_frames_total")),
        "over_time": sampler.samples,
        "machine": machine(args.device),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "over_time"}, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"soak_{args.model}_{args.calls}calls.json").write_text(json.dumps(result, indent=2) + "\n")
    if result["events_lost"] or result["calls_failed"] or not result["memory"]["bounded"]:
        raise SystemExit("events were lost, calls failed or memory kept growing")


if __name__ == "__main__":
    main()
