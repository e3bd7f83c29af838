"""Recobra service: ingest sockets, call sessions, analysis, events, storage and the CLI."""

import os

# OpenBLAS reads this when numpy loads it, which in `recobra serve` is after this line: one BLAS thread, so none
# spins beside the decoders. models/threads.py limits a pool already loaded (tests, Ray replicas) at start-up,
# but a pool created with two threads still costs more: English 6 calls 98 -> 93 CPU-s, p95 1.59 -> 1.49 s.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
