"""All configuration in one place, read from RECOBRA_* environment variables or a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings. Every field can be set as RECOBRA_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="RECOBRA_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    log_json: bool = False

    # Speech recognition
    asr_model: str = Field(
        "tiny.en",
        description="Packaged name (tiny.en, base), a CTranslate2 model folder, or a hub id.",
    )
    language: Literal["en", "es", "auto"] = "en"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = Field("auto", description="auto: float16 on CUDA, int8 on CPU.")
    asr_threads: int = Field(0, description="Parallel decodes; 0 = one per CPU core.")
    beam_size: int = 1
    cache_dir: Path = Path.home() / ".cache" / "recobra"

    # Segmentation and streaming policy
    vad_threshold: float = 0.5
    vad_min_silence_ms: int = 500
    vad_speech_pad_ms: int = 400
    max_utterance_s: float = 15.0
    partial_interval_s: float = 0.7

    # Ingest limits
    max_calls: int = 64
    max_message_bytes: int = 256 * 1024
    channel_queue_frames: int = 3000

    # Storage and privacy
    database_url: str = Field("sqlite:///./var/recobra.db", description="SQLite file or postgresql+psycopg://...")
    redact_transcripts: bool = True
    redact_kinds: list[str] = ["card", "cvv", "iban", "ssn", "dni", "nie", "curp", "rfc"]

    # Analysis
    jurisdiction: str = "us"
    eu_mode: bool | None = Field(None, description="No agent emotion inference; default on for es.")
    embedding_model: str = Field("default", description="Packaged name, local path or hub id.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once on first use (never at import time)."""
    return Settings()
