"""Load test: N concurrent calls replayed on loopback against a `recobra serve` subprocess.

Every call is a real two-speaker recording (FLEURS, `assist.democall.fleurs_call`) sent in real time
(or `--speed` times faster) over Twilio, Genesys and plain in turn. For every call it checks that no
event was lost: the live event socket saw seq 1..N without a gap, ending with qa.score, and the
service's log and database both hold the same N events. It samples the service's memory (RSS) and
/metrics while the calls run and reports the end-of-speech -> final latency distribution.

On a CPU that cannot carry 50 real-time calls, run it where CUDA is present (`--device auto` picks
it; the ASR worker batches requests there) or lower `--calls`.

Usage:
  python -m benchmarks.bench_load --calls 50                    # the full run
  python -m benchmarks.bench_load --calls 5 --turns 2           # a short validation run
Writes benchmarks/results/load_<model>_<calls>calls.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import websockets

from assist.democall import fleurs_call
from assist.replay import replay
from streaming.types import SAMPLE_RATE

RESULTS = Path(__file__).parent / "results"
PROTOCOLS = ("twilio", "genesys", "plain")


@dataclass
class CallResult:
    call_id: str
    protocol: str
    live: int = 0
    """Events the live socket delivered (distinct seqs)."""
    gaps: int = 0
    """Seqs missing from the live stream."""
    logged: int = 0
    stored: int = 0
    ended: bool = False
    latencies: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def lost(self) -> int:
        expected = max(self.logged, self.stored, self.live)
        return self.gaps + (expected - self.logged) + (expected - self.stored) + (0 if self.ended else 1)


@contextmanager
def serve(model: str, device: str, extra_env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """`recobra serve` (development mode, loopback) in a subprocess; yields (http url, pid)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RECOBRA_ASR_MODEL": model, "RECOBRA_DEVICE": device, "RECOBRA_LOG_LEVEL": "WARNING",
               "RECOBRA_DATABASE_URL": os.environ.get("RECOBRA_DATABASE_URL", f"sqlite:///{tmp}/load.db"),
               "RECOBRA_MAX_CALLS": "1000", **(extra_env or {})}
        for name in ("RECOBRA_TENANTS", "RECOBRA_TENANTS_FILE"):
            env.pop(name, None)
        recobra = Path(sys.executable).with_name("recobra")
        process = subprocess.Popen([str(recobra), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env)
        http = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the service did not start")
                try:
                    if httpx.get(http + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            yield http, process.pid
        finally:
            process.terminate()
            process.wait(60)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scrape(http: str) -> dict[str, float]:
    """The /metrics samples as {name{labels}: value}."""
    out: dict[str, float] = {}
    for line in httpx.get(http + "/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


class Sampler(threading.Thread):
    """Every `every_s`: the service's RSS, active calls and worst per-call lag."""

    def __init__(self, http: str, pid: int, every_s: float) -> None:
        super().__init__(daemon=True)
        self.http, self.pid, self.every_s = http, pid, every_s
        self.t0 = time.monotonic()
        self.samples: list[dict] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                m = scrape(self.http)
                lags = [v for k, v in m.items() if k.startswith("recobra_call_lag_seconds")]
                self.samples.append({"t_s": round(time.monotonic() - self.t0, 1), "rss_mb": round(rss_mb(self.pid), 1),
                                     "active_calls": m.get("recobra_active_calls", 0),
                                     "max_lag_s": round(max(lags, default=0.0), 3)})
            except (httpx.HTTPError, OSError):
                pass
            self.stop.wait(self.every_s)


async def follow_all(ws_url: str, call_id: str, result: CallResult, t0: float, speed: float) -> None:
    """Every event of the call, reconnecting with `since` if the socket drops (a slow-subscriber close)."""
    seen: dict[int, dict] = {}
    since = 0
    while True:
        try:
            async with websockets.connect(f"{ws_url}/calls/{call_id}/events?since={since}") as ws:
                async for message in ws:
                    event = json.loads(message)
                    seen[event["seq"]] = event
                    since = max(since, event["seq"])
                    if event["type"] == "qa.score":
                        break
        except (websockets.ConnectionClosed, OSError):
            pass
        if any(e["type"] == "qa.score" for e in seen.values()):
            break
        await asyncio.sleep(0.2)  # the call has not started yet, or the socket dropped
    result.live = len(seen)
    result.gaps = max(seen) - len(seen)
    result.ended = any(e["type"] == "call.ended" for e in seen.values())
    result.latencies = [datetime.fromisoformat(e["at"]).timestamp() - (t0 + e["end"] / speed)
                        for e in seen.values() if e["type"] == "transcript.final"]


async def one_call(http: str, n: int, agent: np.ndarray, debtor: np.ndarray, speed: float,
                   protocol: str | None = None) -> CallResult:
    protocol = protocol or PROTOCOLS[n % len(PROTOCOLS)]
    ws_url = http.replace("http", "ws", 1)
    result = CallResult(f"load-{n}-{int(time.time() * 1000) % 10**9}", protocol)
    t0 = time.time()
    try:
        deadline_s = len(agent) / SAMPLE_RATE / (speed or 1.0) + 600
        await asyncio.wait_for(asyncio.gather(
            replay(ws_url, protocol, agent, debtor, SAMPLE_RATE, call_id=result.call_id, speed=speed),
            follow_all(ws_url, result.call_id, result, t0, speed),
        ), deadline_s)
        async with httpx.AsyncClient(timeout=60) as client:
            result.logged = len((await client.get(f"{http}/calls/{result.call_id}/log")).json())
            result.stored = len((await client.get(f"{http}/api/calls/{result.call_id}")).json()["events"])
    except Exception as e:  # noqa: BLE001 - a failed call is reported, not fatal to the run
        result.error = f"{type(e).__name__}: {e}"
    return result


def percentiles(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {}
    a = np.array(xs)
    return {f"p{q}": round(float(np.percentile(a, q)), 3) for q in (50, 90, 95, 99)} | {
        "max": round(float(a.max()), 3), "n": len(xs)}


def latency_histogram(metrics: dict[str, float]) -> dict[str, float]:
    """The service's own end-of-speech -> final histogram (cumulative counts per bucket)."""
    prefix = "recobra_final_latency_seconds_bucket"
    return {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}


def machine(device: str) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    return f"{cpu} x{os.cpu_count()}, device={device}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--speed", type=float, default=1.0, help="1 = real time")
    parser.add_argument("--turns", type=int, default=4, help="FLEURS turns per call (about 8 s each)")
    parser.add_argument("--stagger-s", type=float, default=0.2, help="between call starts")
    parser.add_argument("--sample-s", type=float, default=2.0)
    args = parser.parse_args()
    agent, debtor, _ = fleurs_call("en", turns=args.turns)
    with serve(args.model, args.device) as (http, pid):
        sampler = Sampler(http, pid, args.sample_s)
        sampler.start()

        async def run() -> list[CallResult]:
            async def staggered(n: int) -> CallResult:
                await asyncio.sleep(n * args.stagger_s)
                return await one_call(http, n, agent, debtor, args.speed)

            return await asyncio.gather(*(staggered(n) for n in range(args.calls)))

        started = time.monotonic()
        results = asyncio.run(run())
        wall = time.monotonic() - started
        sampler.stop.set()
        sampler.join()
        final_metrics = scrape(http)
    result = {
        "calls": args.calls,
        "model": args.model,
        "speed": args.speed,
        "audio_s_per_call": round(len(agent) / SAMPLE_RATE, 1),
        "wall_s": round(wall, 1),
        "events_lost": sum(r.lost for r in results),
        "calls_failed": [{"call_id": r.call_id, "error": r.error} for r in results if r.error],
        "events_per_call": percentiles([float(r.live) for r in results]),
        "end_of_speech_to_final_s": percentiles([x for r in results for x in r.latencies]),
        "by_protocol": {p: percentiles([x for r in results if r.protocol == p for x in r.latencies])
                        for p in PROTOCOLS},
        "service_latency_histogram": latency_histogram(final_metrics),
        "rejected_connections": {k: v for k, v in final_metrics.items() if k.startswith("recobra_rejected")},
        "dropped_frames": sum(v for k, v in final_metrics.items() if k.startswith("recobra_dropped_frames_total")),
        "memory": {"start_mb": sampler.samples[0]["rss_mb"] if sampler.samples else None,
                   "peak_mb": max((s["rss_mb"] for s in sampler.samples), default=None),
                   "end_mb": sampler.samples[-1]["rss_mb"] if sampler.samples else None},
        "over_time": sampler.samples,
        "note": "latency is measured on the client: final's publication time minus when the utterance's last "
                "word was sent; it includes the 0.5 s of silence voice detection waits for",
        "machine": machine(args.device),
    }
    summary = {k: v for k, v in result.items() if k != "over_time"}
    print(json.dumps(summary, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"load_{args.model}_{args.calls}calls.json").write_text(json.dumps(result, indent=2) + "\n")
    if result["events_lost"] or result["calls_failed"]:
        raise SystemExit("events were lost or calls failed")


if __name__ == "__main__":
    main()
