"""The analysers' sentence embedder as a Ray Serve deployment that every front end calls.

Serve's request batching (`@serve.batch`) gathers the embedding requests of all front ends and calls for
up to `ray_embed_batch_wait_timeout_s` and the replica encodes their texts as one batch. Each front end
keeps a cache of recent texts, so the sentences that compliance, prompts and sentiment share cross the
network once. The call's analysers (their rule state) stay on the front end that holds the call.

Deploy next to the ASR application (settings from RECOBRA_* variables, `key=value` arguments override):

    serve run --name recobra-embed assist.distributed.ray_embed:build_app ray_embed_replicas=2
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from assist.distributed.ray_cluster import (
    BatchedReplica,
    ServeClient,
    deployment_handle,
)
from assist.settings import Settings
from models.batching import Priority
from models.embeddings import EmbeddingCache, encode_groups, load_embedder
from models.threads import one_blas_thread


class EmbeddingDeployment(BatchedReplica):
    """One replica: the embedding model behind Serve's request batching."""

    def __init__(self, model: str) -> None:
        one_blas_thread()  # the replica's process, as the service's (models/threads.py)
        self.encoder = load_embedder(model)
        self.batch_sizes: Counter[int] = Counter()

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await self._batch(list(texts))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def _batch(self, groups: list[list[str]]) -> list[np.ndarray]:
        self.batch_sizes[len(groups)] += 1
        return await asyncio.to_thread(encode_groups, self.encoder, groups)

    def stats(self) -> dict[str, Any]:
        """Requests per batch served so far ({size: batches}), for benchmarks and tests."""
        return {"batch_sizes": dict(self.batch_sizes)}


def embedding_app(settings: Settings) -> serve.Application:
    """The Serve application: the embedding deployment, sized and batched from `settings`."""
    scale = settings.distributed
    deployment = serve.deployment(
        name=scale.ray_embed_deployment,
        num_replicas=scale.ray_embed_replicas,
        ray_actor_options={"num_cpus": scale.ray_embed_num_cpus},
        max_ongoing_requests=max(64, 4 * scale.ray_embed_max_batch_size),
        user_config={"max_batch_size": scale.ray_embed_max_batch_size,
                     "batch_wait_timeout_s": scale.ray_embed_batch_wait_timeout_s},
        logging_config={"enable_access_log": False},
    )(EmbeddingDeployment)
    return deployment.bind(settings.analysis.embedding_model)


def build_app(args: dict[str, Any]) -> serve.Application:
    """Entry point for `serve run` / `serve deploy`: RECOBRA_* settings with `key=value` overrides."""
    return embedding_app(Settings(**args))


def deploy(settings: Settings) -> DeploymentHandle:
    """Deploy (or update) the application on the connected Ray cluster and wait until it is ready."""
    return serve.run(embedding_app(settings), name=settings.distributed.ray_embed_app_name, route_prefix=None)


class RayEmbeddingClient(ServeClient):
    """An `EmbeddingBackend` (models/inference.py) served by the cluster. Blocking: call it from a worker
    thread."""

    def __init__(self, handle: DeploymentHandle, model: str, owns_ray: bool = False,
                 timeout_s: float = 30.0) -> None:
        super().__init__(handle, owns_ray)
        self.model = model
        self.timeout_s = timeout_s
        self.cache = EmbeddingCache()

    @classmethod
    def connect(cls, settings: Settings) -> RayEmbeddingClient:
        """Join the Ray cluster (unless this process already has) and find the deployed application."""
        scale = settings.distributed
        handle, joined = deployment_handle(scale.ray_address, scale.ray_embed_app_name, scale.ray_embed_deployment,
                                           "assist.distributed.ray_embed:build_app")
        return cls(handle, settings.analysis.embedding_model, joined)

    def embed(self, texts: list[str], priority: Priority = Priority.FINAL, call_id: str = "") -> np.ndarray:
        """(n, d) rows from the cache or the cluster. Serve batches in arrival order; `priority` and
        `call_id` only label this front end's lag and queue metrics."""
        with self._in_flight.track(call_id, priority):
            if not texts:
                return self._remote([])
            return self.cache.embed(list(texts), self._remote)

    def _remote(self, texts: list[str]) -> np.ndarray:
        return self.handle.embed.remote(texts).result(timeout_s=self.timeout_s)

    def stats(self) -> dict[str, Any]:
        """One replica's batch statistics (`EmbeddingDeployment.stats`) and this front end's cache."""
        remote = self.handle.stats.remote().result(timeout_s=self.timeout_s)
        return {**remote, "cache_hits": self.cache.hits, "cache_misses": self.cache.misses}
