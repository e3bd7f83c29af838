"""How many concurrent real-time calls one Recobra service carries with p95 end-of-speech -> final under 1.5 s.

Replays N copies of a real two-speaker call (FLEURS read speech, `assist.democall.fleurs_call`, English,
Spanish, or a mix with every third call Spanish) in real time over the plain PCM protocol against a
service, N growing until a round fails, then bisecting. A round passes when the p95 latency from the end
of an utterance's last word to its final transcript reaching the client is under the limit, the p95 gap
between live words (utterance start, each interim, end of speech) is under the limit, every call ends,
no sender falls behind real time (server backpressure) and no call reports an error. The service is
started in a subprocess on its defaults (tiny.en for English, base for Spanish) unless --model forces
one model, or --url names one already running; the service's own settings (RECOBRA_*) apply.

Usage:
  python -m benchmarks.bench_capacity --language en --device cpu               # full search
  python -m benchmarks.bench_capacity --language mixed --calls 6 --only         # one round: 4 EN + 2 ES
  python -m benchmarks.bench_capacity --language es --env RECOBRA_ASR_TRIM_WINDOW=false   # 30 s windows
Writes benchmarks/results/capacity_<language>_<device>[_<tag>].json with the device named.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jiwer
import numpy as np
import websockets

from assist.democall import fleurs_call
from assist.replay import follow, replay
from streaming.types import SAMPLE_RATE
from tests.test_end_to_end import normalise

RESULTS = Path(__file__).parent / "results"
P95_LIMIT_S = 1.5
INTERIM_GAP_LIMIT_S = 1.5  # live words at least this often while someone speaks (p95)
SENDER_SLACK_S = 1.0  # a sender this far behind real time means the service pushed back


@dataclass
class CallRecord:
    """What one replayed call saw, on the client's wall clock."""

    call_id: str
    latencies: list[float] = field(default_factory=list)
    interim_gaps: list[float] = field(default_factory=list)
    hypothesis: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    sender_lag_s: float = 0.0
    ended: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class Round:
    calls: int
    p50_s: float
    p95_s: float
    max_s: float
    interim_gap_p95_s: float
    interims: int
    finals: int
    expected_finals: int
    wer: float
    sender_lag_max_s: float
    errors: int
    real_time: bool


@functools.lru_cache(maxsize=4)
def call_plan(turns: int, language: str = "en") -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """(agent track, debtor track, (speaker, reference) per turn) of the replayed call."""
    return fleurs_call(language, turns=turns)


def call_language(call_id: str, mix: str) -> str:
    """The language of call number i of a round: `mix` en, es, or mixed (every third call Spanish)."""
    if mix != "mixed":
        return mix
    return "es" if int(call_id.rsplit("-", 1)[1]) % 3 == 2 else "en"


def live_word_gaps(started: float, partials: list[float], final: dict) -> list[float]:
    """Wall-clock gaps between an utterance's first word, its interims' arrivals and its end of speech."""
    first_word = final["words"][0]["start"] if final.get("words") else final["start"]
    begin, end = started + first_word, started + final["end"]
    points = [begin, *sorted(at for at in partials if begin <= at <= end), end]
    return [b - a for a, b in zip(points, points[1:])]


async def recobra_call(url: str, call_id: str, start_at: float, turns: int, mix: str = "en") -> CallRecord:
    """Stream one call in real time from wall-clock `start_at`; collect its finals as they arrive."""
    language = call_language(call_id, mix)
    agent, debtor, _ = call_plan(turns, language)
    record = CallRecord(call_id)
    partials: dict[tuple[str, int], list[float]] = {}
    await asyncio.sleep(max(0.0, start_at - time.time()))
    started = time.time()

    def on_event(event: dict) -> None:
        received = time.time()
        if event["type"] == "transcript.partial":
            partials.setdefault((event["speaker"], event["utterance"]), []).append(received)
        elif event["type"] == "transcript.final":
            record.latencies.append(received - (started + event["end"]))
            record.interim_gaps += live_word_gaps(started, partials.get((event["speaker"], event["utterance"]), []),
                                                  event)
            record.hypothesis.setdefault(event["speaker"], []).append((event["start"], event["text"]))
        elif event["type"] == "call.ended":
            record.ended = True
        elif event["type"] == "call.error":
            record.errors.append(event.get("message", "call.error"))

    sender = asyncio.create_task(replay(url, "plain", agent, debtor, SAMPLE_RATE, call_id=call_id, speed=1.0,
                                        metadata={"language": language}))
    try:
        await asyncio.sleep(0.3)  # the call exists once its start message is in
        await follow(url, call_id, on_event)
        await sender
    except (OSError, websockets.WebSocketException) as error:  # a refused or dropped call fails the round
        record.errors.append(f"{type(error).__name__}: {error}")
        sender.cancel()
    record.sender_lag_s = time.time() - started - len(agent) / SAMPLE_RATE if sender.done() else float("inf")
    return record


def run_calls(client: Callable, url: str, specs: list[tuple[str, float]], turns: int) -> list[CallRecord]:
    """One client process: its share of the round's calls, each at its own start time (`client` takes
    (url, call id, start time, turns))."""

    async def run() -> list[CallRecord]:
        return await asyncio.gather(*(client(url, call_id, at, turns) for call_id, at in specs))

    return asyncio.run(run())


def run_round(client: Callable, url: str, n: int, turns: int, tag: str, stagger_s: float,
              procs: int) -> list[CallRecord]:
    """N calls, starts spread evenly over `stagger_s`, split across `procs` client processes."""
    start = time.time() + 2.0
    specs = [(f"{tag}-{n}-{i}", start + stagger_s * i / n) for i in range(n)]
    shares = [specs[k::procs] for k in range(min(procs, n))]
    if len(shares) == 1:
        return run_calls(client, url, specs, turns)
    with ProcessPoolExecutor(len(shares)) as pool:
        return [r for part in pool.map(run_calls, [client] * len(shares), [url] * len(shares), shares,
                                       [turns] * len(shares)) for r in part]


def summarise(n: int, records: list[CallRecord], refs: list[tuple[str, str]],
              mix: str | None = None, turns: int = 0) -> Round:
    """One round's figures; with `mix`, each call is scored against its own language's references."""
    lat = np.array([x for r in records for x in r.latencies]) if any(r.latencies for r in records) else np.array([99.0])
    gaps = [g for r in records for g in r.interim_gaps] or [0.0]
    references, hypotheses = [], []
    for r in records:
        if mix is not None:
            refs = call_plan(turns, call_language(r.call_id, mix))[2]
        for speaker in ("agent", "debtor"):
            references.append(normalise(" ".join(text for s, text in refs if s == speaker)))
            hypotheses.append(normalise(" ".join(t for _, t in sorted(r.hypothesis.get(speaker, [])))) or "-")
    errors = sum(len(r.errors) for r in records) + sum(not r.ended for r in records)
    lag = max(r.sender_lag_s for r in records)
    p95 = float(np.percentile(lat, 95))
    gap_p95 = float(np.percentile(gaps, 95))
    return Round(
        calls=n, p50_s=round(float(np.percentile(lat, 50)), 3), p95_s=round(p95, 3), max_s=round(float(lat.max()), 3),
        interim_gap_p95_s=round(gap_p95, 3), interims=sum(len(r.interim_gaps) for r in records) - len(lat),
        finals=sum(len(r.latencies) for r in records), expected_finals=n * len(refs),
        wer=round(jiwer.wer(references, hypotheses), 4), sender_lag_max_s=round(lag, 3), errors=errors,
        real_time=bool(p95 < P95_LIMIT_S and gap_p95 <= INTERIM_GAP_LIMIT_S and lag < SENDER_SLACK_S and errors == 0),
    )


def search(measure: Callable[[int], Round], sizes: list[int], max_calls: int) -> tuple[int, list[Round]]:
    """Try `sizes`, then keep doubling until a round fails, then bisect; the largest passing N."""
    rounds: dict[int, Round] = {}

    def ok(n: int) -> bool:
        if n not in rounds:
            rounds[n] = measure(n)
            print(json.dumps(asdict(rounds[n])), flush=True)
        return rounds[n].real_time

    good, bad = 0, None
    for n in sizes:
        if not ok(n):
            bad = n
            break
        good = n
    if bad is None and len(sizes) > 1:
        n = good * 2
        while n <= max_calls and ok(n):
            good, n = n, n * 2
        bad = n if n <= max_calls else None
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if ok(mid) else (good, mid)
    return good, [rounds[k] for k in sorted(rounds)]


def device_name(device: str) -> str:
    """The GPU's name for CUDA, else the CPU model string and core count."""
    if device == "cuda":
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=10, check=True).stdout.strip()
            return out.splitlines()[0] if out else "CUDA GPU"
        except (OSError, subprocess.SubprocessError):
            return "CUDA GPU"
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    return f"{model}, {os.cpu_count()} cores"


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server at {url} did not come up in {timeout_s:.0f} s")


@contextmanager
def recobra_service(model: str | None, device: str, batching: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`recobra serve` in a subprocess on a loopback port; yields its ws:// url. `model` None: the defaults'
    routing (tiny.en for English, multilingual base for every other language)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        environ = {**os.environ, "RECOBRA_DEVICE": device,
                   "RECOBRA_ASR_BATCHING": batching, "RECOBRA_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                   "RECOBRA_MAX_CALLS": "1000", "RECOBRA_LOG_LEVEL": "WARNING", **(env or {})}
        if model:
            environ["RECOBRA_ASR_MODEL"] = model
        recobra = Path(sys.executable).with_name("recobra")
        process = subprocess.Popen([str(recobra), "serve", "--host", "127.0.0.1", "--port", str(port)], env=environ)
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", process)
            yield f"ws://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(30)


def parse_sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", default="en", choices=["en", "es", "mixed"])
    parser.add_argument("--model", help="one model for every call (tiny.en, base, a folder); default: the routing")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batching", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--calls", default="1,2,4", help="N to try first (comma list); then doubling and bisection")
    parser.add_argument("--only", action="store_true", help="measure exactly --calls, no search")
    parser.add_argument("--max-calls", type=int, default=512)
    parser.add_argument("--turns", type=int, default=6, help="utterances per call (each about 10 s)")
    parser.add_argument("--stagger", type=float, default=10.0, help="seconds over which call starts are spread")
    parser.add_argument("--client-procs", type=int, default=1, help="client processes sending the calls")
    parser.add_argument("--env", action="append", default=[], help="RECOBRA_X=value for the service (repeatable)")
    parser.add_argument("--tag", default="", help="suffix of the result file")
    parser.add_argument("--url", help="a running service (ws://host:port) instead of starting one")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    env = dict(item.split("=", 1) for item in args.env)
    agent, _, refs = call_plan(args.turns)
    client = functools.partial(recobra_call, mix=args.language)

    def measure_at(url: str) -> Callable[[int], Round]:
        return lambda n: summarise(n, run_round(client, url, n, args.turns, f"cap{int(time.time())}",
                                                args.stagger, args.client_procs), refs, args.language, args.turns)

    def run(url: str) -> tuple[int, list[Round]]:
        if not args.only:
            return search(measure_at(url), parse_sizes(args.calls), args.max_calls)
        rounds = [measure_at(url)(n) for n in parse_sizes(args.calls)]
        return max((r.calls for r in rounds if r.real_time), default=0), rounds

    if args.url:
        capacity, rounds = run(args.url)
    else:
        with recobra_service(args.model, device, args.batching, env) as url:
            capacity, rounds = run(url)
    result = {
        "system": "recobra",
        "language": args.language,
        "model": args.model or "routing: en tiny.en, es base",
        "service_env": env,
        "device": device,
        "device_name": device_name(device),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "batching": args.batching,
        "max_realtime_calls": capacity,
        "criteria": {"p95_end_of_speech_to_final_s_below": P95_LIMIT_S, "sender_lag_s_below": SENDER_SLACK_S,
                     "p95_live_word_gap_s_at_most": INTERIM_GAP_LIMIT_S, "all_calls_end_without_error": True},
        "call": {"source": f"FLEURS {args.language} read speech, two speakers"
                 + (" (every third call Spanish)" if args.language == "mixed" else ""), "turns": args.turns,
                 "audio_s": round(len(agent) / SAMPLE_RATE, 1), "protocol": "plain pcm16 16 kHz",
                 "stagger_s": args.stagger},
        "note": "latency = final received by the client - (call start + end of the utterance's last word); "
                "includes the VAD's 0.5 s end-of-utterance silence. live-word gap: between an utterance's start, "
                "each interim's arrival and its end of speech, on the client's clock",
        "rounds": [asdict(r) for r in rounds],
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.batching == "auto" else f"_batching-{args.batching}"
    name = f"{args.language}_{Path(args.model).name}" if args.model else args.language
    tag = f"_{args.tag}" if args.tag else ""
    (RESULTS / f"capacity_{name}_{device}{suffix}{tag}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
