"""What the ASR and embedding deployments share: joining the cluster, finding a deployment, the client's
requests in flight, and run-time batch settings of a replica."""

from __future__ import annotations

import itertools
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ray
import structlog
from ray import serve
from ray.serve.handle import DeploymentHandle

from models.batching import Priority, count_by_priority, waits_by_call

log = structlog.get_logger(__name__)


def join_cluster(address: str) -> None:
    """`ray.init` that keeps this process's SIGTERM handler: Ray's own exits the process at once, which
    would skip the service's graceful shutdown (every live call ended, stored, scored and published)."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
        log.debug("ray.sigterm_handler_restored")


def deployment_handle(address: str, app: str, deployment: str, builder: str) -> tuple[DeploymentHandle, bool]:
    """A handle to `deployment` of Serve application `app`, joining the cluster at `address` unless this
    process already has; the bool says whether this call joined (its owner shuts Ray down on close).
    `builder` (an import path) goes into the error that says how to deploy what is missing."""
    joined = not ray.is_initialized()
    if joined:
        join_cluster(address)
    try:
        handle = serve.get_deployment_handle(deployment, app)
    except Exception as error:
        if joined:
            ray.shutdown()
        raise RuntimeError(
            f"no Ray Serve deployment {deployment!r} in application {app!r} on {address}: deploy it with "
            f"`serve run --name {app} {builder}` (README: Scaling out)"
        ) from error
    log.info("ray.connected", address=address, app=app, deployment=deployment)
    return handle, joined


class InFlight:
    """Requests this front end has out on the cluster: per-call lag and counts per priority."""

    def __init__(self) -> None:
        self._ids = itertools.count()
        self._out: dict[int, tuple[str, Priority, float]] = {}  # id -> call, priority, submitted

    @contextmanager
    def track(self, call_id: str, priority: Priority) -> Iterator[None]:
        key = next(self._ids)
        self._out[key] = (call_id, priority, time.monotonic())
        try:
            yield
        finally:
            del self._out[key]

    def lag(self) -> dict[str, float]:
        """Per call with a request out: seconds its oldest one has waited (network, queue and work)."""
        return waits_by_call(((call_id, at) for call_id, _, at in list(self._out.values())), time.monotonic())

    def depth(self) -> dict[str, int]:
        """Unanswered requests per priority name (queued or being served on the cluster)."""
        return count_by_priority(priority for _, priority, _ in list(self._out.values()))


class BatchedReplica:
    """A replica whose `_batch` method is `@serve.batch`: its size and wait follow Serve `user_config`,
    so they change without restarting the replica."""

    _batch: Any

    def reconfigure(self, config: dict[str, Any]) -> None:
        self._batch.set_max_batch_size(int(config["max_batch_size"]))
        self._batch.set_batch_wait_timeout_s(float(config["batch_wait_timeout_s"]))


class ServeClient:
    """A front end's client of one deployment: its handle, its requests in flight (per-call lag and
    queue depth for /metrics), and Ray shut down on close when this client joined the cluster."""

    def __init__(self, handle: DeploymentHandle, owns_ray: bool = False) -> None:
        self.handle = handle
        self._owns_ray = owns_ray
        self._in_flight = InFlight()

    def lag(self) -> dict[str, float]:
        """Per call with a request out: seconds its oldest one has waited (network, queue and work)."""
        return self._in_flight.lag()

    def queue_depth(self) -> dict[str, int]:
        """This front end's unanswered requests per priority name (queued or served on the cluster)."""
        return self._in_flight.depth()

    def close(self) -> None:
        if self._owns_ray:
            ray.shutdown()
