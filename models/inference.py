"""The seams between calls and the shared inference backends: what a session, the service and /metrics
use, whether the model runs in this process (models/asr.py, models/embedding_worker.py) or on a Ray
cluster (assist/distributed/ray_asr.py, ray_embed.py). Structural: an implementation need not inherit."""

from __future__ import annotations

from typing import Protocol

from models.asr import AsrRequest, AsrResult
from models.embeddings import Embedder


class InferenceQueue(Protocol):
    """What a shared backend reports about its queue (for /metrics)."""

    def lag(self) -> dict[str, float]:
        """Per call with a request out: seconds its oldest one has waited."""
        ...

    def queue_depth(self) -> dict[str, int]:
        """Unanswered requests per priority name."""
        ...


class AsrBackend(InferenceQueue, Protocol):
    """Speech recognition shared by every call: `AsrWorker` (local) or `RayAsrClient` (cluster)."""

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages calls may use (and detection may choose)."""
        ...

    @property
    def detects(self) -> bool:
        """Whether a call of unknown language can be served (its language detected)."""
        ...

    async def transcribe(self, request: AsrRequest) -> AsrResult: ...

    def close(self) -> None: ...


class EmbeddingBackend(Embedder, InferenceQueue, Protocol):
    """The analysers' sentence embedder shared by every call: `EmbeddingWorker` or `RayEmbeddingClient`."""
