"""The numeric libraries' own thread pools inside the service."""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def one_blas_thread() -> None:
    """Keep OpenBLAS (numpy's matmuls: sentence embeddings, prosody) on the calling thread, process-wide.

    The service's parallelism is its calls and its ASR workers. A second BLAS thread spins after each of the
    many small matmuls and takes the CPU the decoders need: English 6 calls on the 2-core box went from 107 to
    95 CPU-seconds and p95 end-of-speech -> final from 1.83 to 1.48 s (benchmarks/results/capacity_en_*).
    `recobra serve` already loads numpy with one thread (assist/__init__.py); this covers a process that loaded
    it before (tests, Ray replicas).
    """
    threadpool_limits(limits=1, user_api="blas")
