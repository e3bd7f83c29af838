"""End-of-speech -> final transcript latency for N concurrent real-time calls on this machine.

Usage: python -m benchmarks.bench_pipeline [--calls N] [--model tiny.en]
Prints a table and writes benchmarks/results/pipeline_<model>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from assist.replay import follow, replay
from assist.settings import Settings
from streaming.types import SAMPLE_RATE
from tests.service import RunningService
from tests.test_end_to_end import harvard_call

RESULTS = Path(__file__).parent / "results"


async def one_call(url: str, n: int, agent, debtor) -> list[float]:
    events: list[dict] = []
    start = time.time()
    call_id = f"bench-{n}"
    sender = asyncio.create_task(replay(url, "twilio", agent, debtor, SAMPLE_RATE, call_id=call_id, speed=1.0))
    await asyncio.sleep(0.3)
    await follow(url, call_id, events.append)
    await sender
    return [
        datetime.fromisoformat(e["at"]).timestamp() - (start + e["end"])
        for e in events
        if e["type"] == "transcript.final"
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--model", default="tiny.en")
    args = parser.parse_args()
    agent, debtor, _, _ = harvard_call()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(asr_model=args.model, cache_dir=Path(tmp), database_url=f"sqlite:///{tmp}/b.db")
        with RunningService(settings) as service:

            async def run():
                return await asyncio.gather(*(one_call(service.url, i, agent, debtor) for i in range(args.calls)))

            lat = np.array([x for call in asyncio.run(run()) for x in call])
    result = {
        "model": args.model,
        "calls": args.calls,
        "audio_s_per_call": round(len(agent) / SAMPLE_RATE, 1),
        "finals": len(lat),
        "end_of_speech_to_final_s": {
            "p50": round(float(np.percentile(lat, 50)), 3),
            "p95": round(float(np.percentile(lat, 95)), 3),
            "max": round(float(lat.max()), 3),
        },
        "note": "includes the 0.5 s of silence the VAD waits for before closing an utterance",
        "machine": f"{platform.processor() or platform.machine()}, CPU",
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"pipeline_{args.model}_{args.calls}calls.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
