"""Silero VAD (ONNX weights shipped by the `silero-vad` package) with per-stream state."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime

WINDOW = 512
"""Samples per VAD decision at 16 kHz (32 ms)."""
_CONTEXT = 64


@lru_cache(maxsize=1)
def _session() -> onnxruntime.InferenceSession:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the silero-vad package is not installed")
    path = Path(spec.origin).parent / "data" / "silero_vad.onnx"
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class VadStream:
    """Speech probability for consecutive 512-sample windows of one channel."""

    def __init__(self) -> None:
        self._session = _session()
        self._sr = np.array(16000, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the recurrent state (its accuracy decays over long silences)."""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT), dtype=np.float32)

    def probability(self, window: np.ndarray) -> float:
        x = np.concatenate([self._context, window.reshape(1, WINDOW).astype(np.float32)], axis=1)
        out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = x[:, -_CONTEXT:]
        return float(out[0, 0])
