"""All configuration in one place, read from RECOBRA_* environment variables or a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Tenant(BaseModel):
    """One customer organisation and its telephony credentials (secrets never print)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    api_keys: list[SecretStr] = Field(
        default_factory=list, description="X-API-KEY values accepted on /ingest/plain and /ingest/genesys."
    )
    genesys_client_secret: SecretStr | None = Field(
        None, description="Base64 AudioHook client secret; when set, Genesys connections must be signed (RFC 9421)."
    )
    twilio_auth_token: SecretStr | None = Field(None, description="Validates X-Twilio-Signature on /ingest/twilio.")
    twilio_account_sid: str | None = Field(None, description="When set, a Twilio start must name this account.")


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
    asr_batching: Literal["auto", "on", "off"] = Field(
        "auto", description="Decode requests from all calls as one batch: auto = on for CUDA, off for CPU (measured)."
    )
    asr_batch_window_ms: float = Field(30.0, description="How long the worker waits to gather a batch.")
    asr_max_batch: int = Field(16, description="Most requests decoded in one batched pass.")
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
    idle_timeout_s: float = Field(30.0, description="Close an ingest connection silent for this long (4408).")
    max_messages_per_s: float = Field(2000.0, description="Per connection; faster senders are read more slowly.")
    max_messages_per_audio_s: float = Field(
        200.0, description="Messages per second of audio (20 ms frames: 50-100); more is a flood of tiny frames (4429)."
    )
    message_grace: int = Field(500, description="Messages allowed before the per-audio-second check applies.")
    reconnect_grace_s: float = Field(
        10.0, description="A call whose connection drops stays open this long for the telephony side to reconnect."
    )
    event_store_queue: int = Field(10_000, description="Events of one call waiting for the database, at most.")
    recorder_max_pending: int = Field(256, description="Database writes queued at once, at most (back-pressure).")

    # Security (README "Security"): no tenants = development mode, everything open, loopback only
    tenants: list[Tenant] = Field(default_factory=list, description="JSON list of tenants (RECOBRA_TENANTS).")
    tenants_file: Path | None = Field(None, description="YAML list of tenants, added to `tenants`.")
    token_secret: SecretStr | None = Field(None, description="HMAC key for access tokens; required with tenants.")
    token_ttl_s: int = Field(3600, description="Default lifetime of an access token.")
    token_max_ttl_s: int = Field(12 * 3600, description="Longest lifetime a token may be minted with.")
    metrics_token: SecretStr | None = Field(None, description="Bearer token for /metrics when tenants are set.")
    public_url: str | None = Field(
        None, description="Base URL telephony connects to (wss://host[:port]); Twilio signs URLs built on it."
    )

    # Storage and privacy
    database_url: str = Field("sqlite:///./var/recobra.db", description="SQLite file or postgresql+psycopg://...")
    redact_transcripts: bool = True
    redact_kinds: list[str] = ["card", "cvv", "iban", "ssn", "dni", "nie", "curp", "rfc"]

    # Analysis
    jurisdiction: str = "us"
    eu_mode: bool | None = Field(None, description="No agent emotion inference; default on for es.")
    embedding_model: str = Field(
        "default", description="Sentence embedder (packaged name, local path or hub id); the rule packs' similarity "
        "thresholds and the sentiment head are tuned on the default.")
    embedding_batch_window_ms: float = Field(
        0.0, description="How long the embedder waits to gather a batch; 0: batches form while it is busy.")
    embedding_max_batch: int = Field(32, description="Most requests encoded in one batch.")
    max_media_gap_s: float = Field(
        3600.0, description="How far a media timestamp (Twilio) or reported gap (AudioHook discarded, position) may "
        "run ahead of the audio received before the connection is closed (4400).")

    # Scale-out (README "Scaling out"): in-process by default
    inference_backend: Literal["local", "ray"] = Field(
        "local", description="local: ASR in this process; ray: a Ray Serve ASR deployment shared by front ends."
    )
    embedding_backend: Literal["local", "ray"] = Field(
        "local", description="local: the shared sentence embedder in this process; ray: a Ray Serve deployment "
        "(each request pays a round trip: worth it for large or GPU embedding models).")
    ray_address: str = Field("auto", description="Ray cluster to join (auto: the local node's cluster, or ray://...).")
    ray_app_name: str = Field("recobra", description="Ray Serve application holding the ASR deployment.")
    ray_asr_deployment: str = "asr"
    ray_asr_replicas: int = Field(1, description="Replicas of the ASR deployment (one per GPU, typically).")
    ray_asr_num_cpus: float = 1.0
    ray_asr_num_gpus: float = 0.0
    ray_max_batch_size: int = Field(8, description="Serve request batch: most requests gathered per batch.")
    ray_batch_wait_timeout_s: float = Field(0.02, description="Serve request batch: longest wait to fill a batch.")
    ray_embed_app_name: str = Field("recobra-embed", description="Ray Serve application holding the embedder.")
    ray_embed_deployment: str = "embed"
    ray_embed_replicas: int = 1
    ray_embed_num_cpus: float = 1.0
    ray_embed_max_batch_size: int = 32
    ray_embed_batch_wait_timeout_s: float = 0.005
    event_bus: Literal["memory", "redis"] = Field(
        "memory", description="memory: events stay on this node; redis: every front end sees every call."
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = Field("recobra", description="Key and channel prefix, one per deployment.")
    redis_log_ttl_s: int = Field(3600, description="How long an ended call's event log stays in Redis.")
    node_id: str = Field("", description="This front end's name on the bus and in the database (unique per "
                         "front end; keep it across restarts to recover its own calls at once); empty: host name "
                         "and process id.")
    node_heartbeat_s: float = Field(5.0, description="How often a front end renews its lease on its calls in the "
                                    "database and looks for calls left open by lost front ends.")
    node_ttl_s: float = Field(30.0, description="A front end whose lease is this old is lost: a survivor ends, "
                              "stores and scores its calls (interrupted).")

    @model_validator(mode="after")
    def _load_tenants(self) -> Settings:
        if self.tenants_file is not None:
            extra = yaml.safe_load(self.tenants_file.read_text(encoding="utf-8")) or []
            self.tenants = [*self.tenants, *(Tenant.model_validate(t) for t in extra)]
        ids = [t.id for t in self.tenants]
        if len(ids) != len(set(ids)):
            raise ValueError("tenant ids must be unique")
        keys = [k.get_secret_value() for t in self.tenants for k in t.api_keys]
        if len(keys) != len(set(keys)) or any(len(k) < 16 for k in keys):
            raise ValueError("tenant API keys must be unique and at least 16 characters")
        if self.tenants and (self.token_secret is None or len(self.token_secret.get_secret_value()) < 32):
            raise ValueError("token_secret (at least 32 characters) is required when tenants are configured")
        return self

    @property
    def dev_mode(self) -> bool:
        """No tenants: everything is open (for development on a loopback address only)."""
        return not self.tenants


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once on first use (never at import time)."""
    return Settings()
