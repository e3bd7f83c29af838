"""Recobra against WhisperLive (`whisper-live` 0.10.0) on the same machine, model files and calls, in one run.

Both servers run on loopback with the same CTranslate2 model folder and device. The same real two-speaker
calls (benchmarks.bench_capacity) are replayed in real time: to Recobra over its plain PCM socket, to
WhisperLive as one client connection per speaker (its protocol: options JSON, float32 16 kHz chunks of
4096 samples as its own client sends, END_OF_AUDIO). For each system: end-of-speech -> final latency (a
WhisperLive final is a segment first seen with completed=true), WER of the finals against the references,
and the largest N that stays real time under the same criteria. Ratios are Recobra / WhisperLive.

WhisperLive lives in its own virtual environment (it pins faster-whisper 1.2.0, tokenizers 0.20.3 and
heavy optional extras); install it with
  python3 -m venv .venv-whisperlive
  .venv-whisperlive/bin/pip install --no-deps whisper-live==0.10.0
  .venv-whisperlive/bin/pip install torch==2.13.0 faster-whisper==1.2.0 tokenizers==0.20.3 requests \
      fastapi uvicorn websockets numpy
(the imports of its faster-whisper server path, at its pins; nothing of TensorRT, OpenVINO, PyAudio or
torchaudio).

Usage: python -m benchmarks.bench_whisperlive --model tiny.en --device cpu [--calls 1,2] [--turns 4]
Writes benchmarks/results/whisperlive_vs_recobra.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import websockets

from benchmarks.bench_capacity import (
    P95_LIMIT_S,
    RESULTS,
    CallRecord,
    Round,
    call_plan,
    device_name,
    free_port,
    parse_sizes,
    recobra_call,
    recobra_service,
    resolve_device,
    run_round,
    search,
    summarise,
)
from models.whisper import resolve_model
from streaming.types import SAMPLE_RATE

VENV = Path(__file__).resolve().parent.parent / ".venv-whisperlive"
CHUNK = 4096  # samples per message, as WhisperLive's own client sends
SERVER = """
import logging, sys
logging.basicConfig(level=logging.WARNING)
from whisper_live.server import TranscriptionServer
TranscriptionServer().run("127.0.0.1", int(sys.argv[1]), backend="faster_whisper",
    faster_whisper_custom_model_path=sys.argv[2], single_model=True, max_clients=100000,
    max_connection_time=36000, batch_enabled=sys.argv[3] == "on")
"""


async def _speaker(url: str, track: np.ndarray, started: float, speaker: str, record: CallRecord) -> None:
    """One WhisperLive client: a speaker's track in real time, completed segments as they arrive."""
    uid = str(uuid.uuid4())
    seen: set[tuple[str, str]] = set()
    last_partial = ""
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"uid": uid, "language": "en", "task": "transcribe", "model": "custom",
                                  "use_vad": True, "send_last_n_segments": 10}))
        while True:
            message = json.loads(await ws.recv())
            if message.get("status") in ("WAIT", "ERROR"):
                raise ConnectionRefusedError(f"WhisperLive refused the client: {message}")
            if message.get("message") == "SERVER_READY":
                break

        async def send() -> None:
            for k in range(0, len(track), CHUNK):
                if (delay := started + (k + CHUNK) / SAMPLE_RATE - time.time()) > 0:
                    await asyncio.sleep(delay)
                await ws.send(track[k : k + CHUNK].astype(np.float32).tobytes())
            record.sender_lag_s = max(record.sender_lag_s, time.time() - started - len(track) / SAMPLE_RATE)
            await ws.send(b"END_OF_AUDIO")

        sender = asyncio.create_task(send())
        try:
            async for raw in ws:
                received = time.time()
                for seg in json.loads(raw).get("segments", []):
                    if not seg.get("completed"):
                        last_partial = seg["text"]
                        continue
                    key = (seg["start"], seg["text"])
                    if key in seen:
                        continue
                    seen.add(key)
                    record.latencies.append(received - (started + float(seg["end"])))
                    record.hypothesis.setdefault(speaker, []).append((float(seg["start"]), seg["text"]))
        except websockets.ConnectionClosed:
            pass
        await sender
    if last_partial.strip():  # what the client shows at the end, for WER only (never finalised)
        record.hypothesis.setdefault(speaker, []).append((float("inf"), last_partial))


async def whisperlive_call(url: str, call_id: str, start_at: float, turns: int) -> CallRecord:
    agent, debtor, _ = call_plan(turns)
    record = CallRecord(call_id)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    results = await asyncio.gather(_speaker(url, agent, started, "agent", record),
                                   _speaker(url, debtor, started, "debtor", record), return_exceptions=True)
    record.errors += [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    record.ended = not record.errors
    return record


@contextmanager
def whisperlive_service(model_path: str, device: str, batching: str) -> Iterator[str]:
    python = VENV / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"WhisperLive is not installed in {VENV}: see this script's docstring")
    port = free_port()
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "" if device == "cpu" else os.environ.get("CUDA_VISIBLE_DEVICES", "0")}
    process = subprocess.Popen([str(python), "-c", SERVER, str(port), model_path, batching], env=env)
    try:
        _wait_port(port, process)
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def _wait_port(port: int, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"WhisperLive exited with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError("WhisperLive did not start listening")


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--calls", default="1,2,4", help="N to try first; then doubling and bisection")
    parser.add_argument("--max-calls", type=int, default=512)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--stagger", type=float, default=10.0)
    parser.add_argument("--client-procs", type=int, default=1)
    parser.add_argument("--whisperlive-batching", default="off", choices=["on", "off"],
                        help="WhisperLive's own cross-client batch worker (0.10.0 batch_enabled)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    model_path = resolve_model(args.model, Path.home() / ".cache" / "recobra")
    agent, _, refs = call_plan(args.turns)
    sizes = parse_sizes(args.calls)
    systems: dict[str, dict] = {}
    for system, service, client in (
        ("recobra", lambda: recobra_service(args.model, device, "auto"), recobra_call),
        ("whisperlive", lambda: whisperlive_service(model_path, device, args.whisperlive_batching), whisperlive_call),
    ):
        with service() as url:
            def measure(n: int, url=url, client=client, system=system) -> Round:
                records = run_round(client, url, n, args.turns, f"{system}{int(time.time())}", args.stagger,
                                    args.client_procs)
                return summarise(n, records, refs)

            capacity, rounds = search(measure, sizes, args.max_calls)
        systems[system] = {"max_realtime_calls": capacity, "rounds": [asdict(r) for r in rounds]}
        print(f"{system}: {capacity} calls in real time", flush=True)

    def at_one(system: str) -> dict:
        return next((r for r in systems[system]["rounds"] if r["calls"] == min(sizes)), {})

    rec, wl = at_one("recobra"), at_one("whisperlive")
    result = {
        "model": args.model,
        "model_path": model_path,
        "device": device,
        "device_name": device_name(device),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "whisperlive": {"version": "0.10.0", "backend": "faster_whisper", "single_model": True,
                        "batching": args.whisperlive_batching, "use_vad": True, "chunk_samples": CHUNK},
        "call": {"source": "FLEURS en read speech, two speakers", "turns": args.turns,
                 "audio_s": round(len(agent) / SAMPLE_RATE, 1), "stagger_s": args.stagger},
        "criteria": {"p95_end_of_speech_to_final_s_below": P95_LIMIT_S},
        "systems": systems,
        "ratios_recobra_over_whisperlive": {
            f"p50_latency_at_{min(sizes)}_calls": ratio(rec.get("p50_s", 0), wl.get("p50_s", 0)),
            f"p95_latency_at_{min(sizes)}_calls": ratio(rec.get("p95_s", 0), wl.get("p95_s", 0)),
            f"wer_at_{min(sizes)}_calls": ratio(rec.get("wer", 0), wl.get("wer", 0)),
            "max_realtime_calls": ratio(systems["recobra"]["max_realtime_calls"],
                                        systems["whisperlive"]["max_realtime_calls"]),
        },
        "note": "latency = final received by the client - (call start + end of the utterance in audio time); "
                "WhisperLive's WER also counts the last uncompleted segment each client shows at the end",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "whisperlive_vs_recobra.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
