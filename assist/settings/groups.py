"""The settings of each concern: one `BaseSettings` per group, every field read from RECOBRA_<FIELD NAME>.

The field names are the environment names of the flat settings they replace (RECOBRA_ASR_MODEL is
`AsrSettings.asr_model`, reached as `settings.asr.asr_model`), so every variable and .env line keeps working.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assist.languages import LANGUAGES
from assist.settings.tenants import RecordingKey, Tenant


class Group(BaseSettings):
    """One concern's settings; each field is RECOBRA_<NAME> in the environment or the .env file."""

    # extra="ignore": the .env file (and the environment) hold every other group's variables too
    model_config = SettingsConfigDict(env_prefix="RECOBRA_", env_file=".env", extra="ignore")


class AsrSettings(Group):
    """Speech recognition: models, languages, decoding and batching."""

    asr_model: str | None = Field(
        None, description="One model for every language (tiny.en, base, a CTranslate2 folder or a hub id); unset: "
        "ASR_MODELS routes each language to its model.")
    asr_models: dict[str, str] = Field(
        default_factory=lambda: {"en": "tiny.en", "*": "base"},
        description="Language -> model, '*' for every other language (JSON). English may use an English-only "
        "model; every other language needs a multilingual one. Each model is loaded once.")
    languages: list[str] = Field(
        default_factory=lambda: list(LANGUAGES),
        description="Languages a call may use; a call in another is refused at its start. Detection chooses "
        "among them.")
    language: str = Field(
        "auto", description="A call's language when its metadata names none: en, es, or auto (detected from its "
        "first speech, then held).")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = Field("auto", description="auto: float16 on CUDA, int8 on CPU.")
    asr_threads: int = Field(0, description="Parallel decodes; 0 = one per CPU core.")
    beam_size_final: int = Field(
        5, description="Beam size for finals (5: Spanish per-speaker WER 0.17 -> 0.14 on tests/test_languages.py).")
    beam_size_interim: int = Field(1, description="Beam size for interims (live words: keep greedy).")
    beam_size_post_call: int = Field(5, description="Beam size for post-call work.")
    asr_trim_window: bool = Field(
        True, description="Encode the audio plus a margin instead of a 30 s window (guarded: see "
        "models/batched_whisper.py).")
    asr_window_floor_s: float = Field(10.0, description="Shortest encoder window when trimming.")
    asr_interim_max_wait_s: float = Field(
        1.0, description="An interim queued this long is served like a final: under load interims slow, never stop.")
    asr_batching: Literal["auto", "on", "off"] = Field(
        "auto", description="Decode requests from all calls as one batch: auto = on for CUDA, off for CPU (measured)."
    )
    asr_batch_window_ms: float = Field(30.0, description="How long the worker waits to gather a batch.")
    asr_max_batch: int = Field(16, description="Most requests decoded in one batched pass.")
    cache_dir: Path = Path.home() / ".cache" / "recobra"

    @property
    def routes(self) -> dict[str, str]:
        """Language -> model for the ASR worker ('*': every other language)."""
        return {"*": self.asr_model} if self.asr_model else dict(self.asr_models)

    def worker_args(self) -> dict:
        """Keyword arguments for `models.asr.AsrWorker` (local or in a Ray replica)."""
        from models.asr import BeamSizes
        from models.batched_whisper import WindowPolicy

        return {
            "models": self.routes, "cache_dir": self.cache_dir, "device": self.device,
            "compute_type": self.compute_type, "threads": self.asr_threads, "languages": tuple(self.languages),
            "beams": BeamSizes(self.beam_size_final, self.beam_size_interim, self.beam_size_post_call),
            "window": WindowPolicy(trim=self.asr_trim_window, floor_s=self.asr_window_floor_s),
            "batching": self.asr_batching, "batch_window_ms": self.asr_batch_window_ms,
            "max_batch": self.asr_max_batch, "interim_max_wait_s": self.asr_interim_max_wait_s,
        }


class SegmentationSettings(Group):
    """Segmentation and streaming policy: how live audio is cut into utterances."""

    vad_threshold: float = 0.5
    vad_min_silence_ms: int = 500
    vad_speech_pad_ms: int = 400
    max_utterance_s: float = 15.0
    partial_interval_s: float = 0.7
    early_final_pause_s: float = Field(0.2, description="A pause this long decodes the utterance so far as its "
                                       "final, used if nobody speaks before the VAD closes it; 0 turns this off.")


class LimitsSettings(Group):
    """Ingest limits: calls, messages, queues and timeouts per connection."""

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


class SecuritySettings(Group):
    """Security (README "Security"): no tenants = development mode, everything open, loopback only."""

    tenants: list[Tenant] = Field(default_factory=list, description="JSON list of tenants (RECOBRA_TENANTS).")
    tenants_file: Path | None = Field(None, description="YAML list of tenants, added to `tenants`.")
    token_secret: SecretStr | None = Field(None, description="HMAC key for access tokens; required with tenants.")
    token_ttl_s: int = Field(3600, description="Default lifetime of an access token.")
    token_max_ttl_s: int = Field(12 * 3600, description="Longest lifetime a token may be minted with.")
    metrics_token: SecretStr | None = Field(None, description="Bearer token for /metrics when tenants are set.")
    public_url: str | None = Field(
        None, description="Base URL telephony connects to (wss://host[:port]); Twilio signs URLs built on it."
    )
    max_media_gap_s: float = Field(
        3600.0, description="How far a media timestamp (Twilio) or reported gap (AudioHook discarded, position) may "
        "run ahead of the audio received before the connection is closed (4400).")

    # set once tenants_file is read: the check below runs again when Settings takes this group as a field
    _file_read: bool = PrivateAttr(False)

    @model_validator(mode="after")
    def _load_tenants(self) -> SecuritySettings:
        if self.tenants_file is not None and not self._file_read:
            extra = yaml.safe_load(self.tenants_file.read_text(encoding="utf-8")) or []
            self.tenants = [*self.tenants, *(Tenant.model_validate(t) for t in extra)]
            self._file_read = True
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


class StorageSettings(Group):
    """Storage and privacy: the database and what is redacted before it is stored."""

    database_url: str = Field("sqlite:///./var/recobra.db", description="SQLite file or postgresql+psycopg://...")
    redact_transcripts: bool = True
    redact_kinds: list[str] = ["card", "cvv", "expiry", "iban", "ssn", "dni", "nie", "curp", "rfc"]


class RecordingSettings(Group):
    """Call recordings (README "Recordings")."""

    record_calls: bool = Field(True, description="Record calls (stereo Ogg Vorbis, numbers silenced, encrypted); "
                               "a tenant's record_calls or a call's metadata record=false turns it off.")
    recordings_dir: Path | None = Field(
        None, description="Where sealed recordings are written; unset: 'recordings' beside the SQLite database "
        "file, else ./var/recordings.")
    recording_key: RecordingKey | None = Field(
        None, description="Development mode: base64 of 32 bytes (tenants have their own); unset: a key file "
        "generated in recordings_dir.")
    recording_retention_days: int = Field(90, ge=1, description="Days a recording is kept before purge.")
    recording_storage: Literal["local", "s3"] = Field(
        "local", description="Where finished recordings are kept: local (recordings_dir) or s3 (an S3-compatible "
        "bucket: a live call is spooled in recordings_dir, uploaded when it ends; README 'Recordings in S3').")
    recording_s3_bucket: str | None = Field(None, description="The bucket (recording_storage=s3).")
    recording_s3_prefix: str = Field("recordings/", description="Key prefix of the recording objects.")
    recording_s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO...); unset: AWS.")
    recording_s3_region: str | None = None
    recording_s3_access_key_id: str | None = Field(None, description="Unset: boto3's own chain (env, role...).")
    recording_s3_secret_access_key: SecretStr | None = None
    recording_margin_s: float = Field(0.3, description="Silence this much before and after a redacted number.")
    recording_hold_s: float = Field(
        22.0, description="Audio held in memory until the finals that may redact it are in (at least "
        "max_utterance_s + 7 s: a final is read with those of the 5 s before it).")


class PostCallSettings(Group):
    """Post-call transcripts (assist/post_call.py): each recording transcribed again after its call."""

    post_call_transcripts: bool = Field(
        True, description="Transcribe each call's recording again after the call (below every live request) and "
        "rescore the call from it; calls without a recording are marked skipped.")
    post_call_asr_model: str | None = Field(
        None, description="A larger model for post-call work only (loaded beside the live ones, one thread); unset: "
        "the live routing (ASR_MODELS) at beam_size_post_call.")
    post_call_min_silence_ms: int = Field(
        1000, description="Post-call segmentation: the silence (Silero VAD) that closes a segment (live: "
        "vad_min_silence_ms): longer segments give the model more context.")
    post_call_max_segment_s: float = Field(28.0, description="Longest post-call segment (Whisper's window is 30 s).")
    post_call_poll_s: float = Field(5.0, description="How often the post-call runner looks for ended calls.")
    post_call_cpu_share: float = Field(
        0.5, gt=0.0, le=1.0, description="Share of one decoding thread post-call work may use over time: after a "
        "segment decoded in d seconds it pauses d * (1 / share - 1) (1.0: no pause).")


class AnalysisSettings(Group):
    """Analysis: jurisdiction, rules and the sentence embedder."""

    jurisdiction: str = "us"
    eu_mode: bool | None = Field(
        None, description="No agent emotion inference; unset: the call's compliance pack says (eu_mode, on for es).")
    rules_dir: Path | None = Field(
        None, description="A tenant's rules folder: each file in it replaces the packaged assist/rules file of the "
        "same name (README 'Rules'); unset: the packaged rules. Check it with `recobra rules check DIR`.")
    embedding_model: str = Field(
        "default", description="Sentence embedder (packaged name, local path or hub id); the rule packs' similarity "
        "thresholds and the sentiment head are tuned on the default.")
    embedding_batch_window_ms: float = Field(
        0.0, description="How long the embedder waits to gather a batch; 0: batches form while it is busy.")
    embedding_max_batch: int = Field(32, description="Most requests encoded in one batch.")


class ConversationSettings(Group):
    """Written conversations (README "Chat and messaging")."""

    max_conversations: int = Field(1000, description="Most open conversations on this node (then 503).")
    conversation_max_text_bytes: int = Field(
        32 * 1024, description="Longest message or draft (UTF-8 bytes); longer ones are refused with 413.")
    conversation_seconds_per_word: float = Field(
        0.4, description="A message's length on the conversation clock, so that deadlines count words as on a call.")


class FactsSettings(Group):
    """Account facts (README "Account facts and outcomes")."""

    account_facts_wait_s: float = Field(
        900.0, description="How long facts PUT before their call starts wait for it.")
    account_facts_max_waiting: int = Field(10_000, description="Most calls' facts waiting at once (oldest dropped).")
    account_facts_route_s: float = Field(
        5.0, description="With the Redis bus: how long a front end waits for the one holding a call to apply facts.")


class WebhookSettings(Group):
    """Outcome webhooks (README "Account facts and outcomes")."""

    webhook_timeout_s: float = Field(10.0, description="One delivery attempt's limit (connect + response).")
    webhook_backoff_s: float = Field(30.0, description="Wait after the first failed attempt; doubles each time.")
    webhook_backoff_max_s: float = Field(3600.0, description="Longest wait between two attempts.")
    webhook_give_up_s: float = Field(
        48 * 3600.0, description="A delivery still failing this long after it was queued is marked failed "
        "(redeliver sends it again).")
    webhook_poll_s: float = Field(1.0, description="How often the outbox worker looks for due deliveries.")


class DistributedSettings(Group):
    """Scale-out (README "Scaling out"): in-process by default."""

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

