"""How fast the live assist reacts: end of the utterance that caused an event -> event at the client.

Streams the scripted collections call (assist/demo_calls/collections_en.yaml, TTS voices) over Twilio
in real time into a service on loopback and measures, per event type, wall-clock arrival minus the
wall-clock moment the triggering audio ended (the event's call-clock `t`). Transcript finals include
the 0.5 s of silence the VAD waits for; analysis events ride on finals.

Usage: python -m benchmarks.bench_assist_latency [--model tiny.en]
Writes benchmarks/results/assist_latency_<model>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path

from assist.democall import collections_call, collections_metadata
from assist.replay import follow, replay
from assist.settings import Settings
from benchmarks.bench_load import percentiles
from streaming.types import SAMPLE_RATE
from tests.service import RunningService

RESULTS = Path(__file__).parent / "results"
KINDS = ("transcript.final", "compliance.warning", "prompt", "sentiment", "stress", "style", "abandon_risk")


async def stream(url: str) -> tuple[float, list[dict], float]:
    agent, debtor, _ = collections_call("en")
    events: list[dict] = []
    start = time.time()
    sender = asyncio.create_task(replay(url, "twilio", agent, debtor, SAMPLE_RATE, call_id="latency",
                                        metadata=collections_metadata("en"), speed=1.0))
    await asyncio.sleep(0.3)
    await follow(url, "latency", events.append)
    await sender
    return start, events, len(agent) / SAMPLE_RATE


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny.en")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(asr_model=args.model, database_url=f"sqlite:///{tmp}/b.db")
        with RunningService(settings) as service:
            start, events, audio_s = asyncio.run(stream(service.url))
    latency = {
        kind: percentiles([datetime.fromisoformat(e["at"]).timestamp() - (start + e["t"])
                           for e in events if e["type"] == kind])
        for kind in KINDS
    }
    result = {
        "model": args.model,
        "call": "assist/demo_calls/collections_en.yaml (Piper joe + hibari heart), Twilio mu-law 8 kHz, real time",
        "audio_s": round(audio_s, 1),
        "event_latency_s": {kind: stats for kind, stats in latency.items() if stats},
        "warnings": sorted({e["rule_id"] for e in events if e["type"] == "compliance.warning"}),
        "prompts": [e["card_id"] for e in events if e["type"] == "prompt"],
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU",
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"assist_latency_{args.model}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
