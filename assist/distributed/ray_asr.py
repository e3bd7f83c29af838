"""Speech recognition as a Ray Serve deployment that every front end calls through a DeploymentHandle.

Serve's request batching (`@serve.batch`) gathers requests from all front ends and calls for up to
`ray_batch_wait_timeout_s`; each batch goes at once into the replica's AsrWorker, which keeps its own
rules (finals first, a newer interim replaces a queued one) and, on CUDA, decodes it as one batched pass.
Requests travel as pickled `AsrRequest`s: Ray serialises the numpy audio out of band (pickle 5), so a
large segment crosses the shared-memory object store instead of being copied through the RPC.

Deploy with Ray's own tooling (settings come from RECOBRA_* variables, `key=value` arguments override):

    serve run assist.distributed.ray_asr:build_app device=cuda ray_asr_num_gpus=1
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from assist.distributed.ray_cluster import (
    BatchedReplica,
    ServeClient,
    deployment_handle,
)
from assist.settings import Settings
from models.asr import AsrRequest, AsrResult, AsrWorker
from models.threads import one_blas_thread

REPLICA_WINDOW_MS = 2.0
"""The replica's worker waits only this long to batch: Serve has already gathered the batch."""


class AsrDeployment(BatchedReplica):
    """One replica: the process's Whisper model behind Serve's request batching."""

    def __init__(self, worker_args: dict[str, Any]) -> None:
        one_blas_thread()  # the replica's process, as the service's (models/threads.py)
        self.worker = AsrWorker(**worker_args)
        self.batch_sizes: Counter[int] = Counter()

    async def transcribe(self, request: AsrRequest) -> AsrResult:
        outcome = await self._batch(request)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def _batch(self, requests: list[AsrRequest]) -> list[AsrResult | BaseException]:
        """A bad request fails alone: its exception is its result, the rest of the batch is served."""
        self.batch_sizes[len(requests)] += 1
        return list(await asyncio.gather(*(self.worker.transcribe(r) for r in requests), return_exceptions=True))

    def describe(self) -> dict[str, Any]:
        """The languages this replica serves and whether it can detect one."""
        return {"languages": list(self.worker.languages), "detects": self.worker.detects}

    def stats(self) -> dict[str, Any]:
        """Batch sizes served so far ({size: batches}) and the worker's queue, for benchmarks and tests."""
        return {"batch_sizes": dict(self.batch_sizes), "queue_depth": self.worker.queue_depth()}

    def __del__(self) -> None:
        worker = getattr(self, "worker", None)
        if worker is not None:
            worker.close()


def asr_app(settings: Settings) -> serve.Application:
    """The Serve application: the ASR deployment, sized and batched from `settings`."""
    scale = settings.distributed
    worker_args = {
        **settings.asr.worker_args(),
        "threads": settings.asr.asr_threads or max(1, round(scale.ray_asr_num_cpus)),
        "batch_window_ms": REPLICA_WINDOW_MS, "max_batch": max(settings.asr.asr_max_batch, scale.ray_max_batch_size),
    }
    deployment = serve.deployment(
        name=scale.ray_asr_deployment,
        num_replicas=scale.ray_asr_replicas,
        ray_actor_options={"num_cpus": scale.ray_asr_num_cpus, "num_gpus": scale.ray_asr_num_gpus},
        max_ongoing_requests=max(64, 4 * scale.ray_max_batch_size),
        user_config={"max_batch_size": scale.ray_max_batch_size,
                     "batch_wait_timeout_s": scale.ray_batch_wait_timeout_s},
        logging_config={"enable_access_log": False},
    )(AsrDeployment)
    return deployment.bind(worker_args)


def build_app(args: dict[str, Any]) -> serve.Application:
    """Entry point for `serve run` / `serve deploy`: RECOBRA_* settings with `key=value` overrides."""
    return asr_app(Settings(**args))


def deploy(settings: Settings) -> DeploymentHandle:
    """Deploy (or update) the application on the connected Ray cluster and wait until it is ready."""
    return serve.run(asr_app(settings), name=settings.distributed.ray_app_name, route_prefix=None)


class RayAsrClient(ServeClient):
    """An `AsrBackend` (models/inference.py) served by the cluster; `describe` it before the first call."""

    @classmethod
    def connect(cls, settings: Settings) -> RayAsrClient:
        """Join the Ray cluster (unless this process already has) and find the deployed application."""
        scale = settings.distributed
        return cls(*deployment_handle(scale.ray_address, scale.ray_app_name, scale.ray_asr_deployment,
                                      "assist.distributed.ray_asr:build_app"))

    languages: tuple[str, ...] = ()
    detects: bool = False

    async def describe(self) -> None:
        """Learn from a replica which languages the deployment serves (before calls are admitted)."""
        described = await self.handle.describe.remote()
        self.languages, self.detects = tuple(described["languages"]), bool(described["detects"])

    async def transcribe(self, request: AsrRequest) -> AsrResult:
        with self._in_flight.track(request.call_id, request.priority):
            return await self.handle.transcribe.remote(request)

    async def stats(self) -> dict[str, Any]:
        """One replica's batch statistics (`AsrDeployment.stats`)."""
        return await self.handle.stats.remote()
