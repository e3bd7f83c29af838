"""Prometheus metrics of one service instance (its own registry, served at /metrics)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from models.inference import InferenceQueue

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class _LiveCalls(Collector):
    """Active calls and each one's lag, read from the live sessions at scrape time."""

    def __init__(self, sessions: Callable[[], Mapping[str, Any]]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        sessions = list(self.sessions().values())
        yield GaugeMetricFamily("recobra_active_calls", "Calls streaming (or waiting for a reconnect) now.",
                                value=len(sessions))
        lag = GaugeMetricFamily("recobra_call_lag_seconds",
                                "Audio received but not yet through voice detection, per call.", labels=["call_id"])
        for s in sessions:
            lag.add_metric([s.call_id], s.lag)
        yield lag


class _Inference(Collector):
    """Per shared worker (asr, embeddings): each call's lag in its queue and the requests waiting."""

    def __init__(self, workers: Callable[[], Mapping[str, InferenceQueue | None]]) -> None:
        self.workers = workers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily("recobra_inference_lag_seconds",
                                "How long each call's oldest unanswered request has waited, per worker.",
                                labels=["worker", "call_id"])
        depth = GaugeMetricFamily("recobra_inference_queue_depth", "Requests waiting, per worker and priority.",
                                  labels=["worker", "priority"])
        for name, worker in self.workers().items():
            if worker is None:  # not started yet
                continue
            for call_id, seconds in worker.lag().items():
                lag.add_metric([name, call_id], seconds)
            for priority, n in worker.queue_depth().items():
                depth.add_metric([name, priority], n)
        yield lag
        yield depth


class Metrics:
    """Counters and histograms the app, ingest and sessions update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.calls = Counter("recobra_calls", "Calls started.", ["protocol"], registry=r)
        self.reconnects = Counter("recobra_call_reconnects", "Calls continued by a telephony reconnect.", registry=r)
        self.rejected = Counter("recobra_rejected_connections", "Connections refused or closed for cause.",
                                ["reason"], registry=r)
        self.dropped_frames = Counter("recobra_dropped_frames", "Audio frames received but never processed.",
                                      ["reason"], registry=r)
        self.errors = Counter("recobra_errors", "Errors inside calls (call.error events, failed writes).",
                              ["kind"], registry=r)
        self.events = Counter("recobra_events", "Events published, by type.", ["type"], registry=r)
        self.slow_subscribers = Counter("recobra_slow_subscribers", "Event sockets closed for falling behind.",
                                        registry=r)
        self.final_latency = Histogram("recobra_final_latency_seconds",
                                       "End of speech (its audio received) to transcript.final published.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.early_finals = Counter("recobra_early_finals", "Utterances decoded as finals at a pause: used (nobody "
                                    "spoke before the utterance closed) or dropped (speech went on).", ["outcome"],
                                    registry=r)

    def track_calls(self, sessions: Callable[[], Mapping[str, Any]]) -> None:
        """Report active calls and per-call lag from `sessions()` (call id -> CallSession)."""
        self.registry.register(_LiveCalls(sessions))

    def track_inference(self, workers: Callable[[], Mapping[str, InferenceQueue | None]]) -> None:
        """Report per-call lag and queue depth of the shared workers from `workers()` (name -> worker)."""
        self.registry.register(_Inference(workers))

    def render(self) -> bytes:
        return generate_latest(self.registry)
