"""Settings grouped by concern: every RECOBRA_* name of the flat settings still works, from the environment and
from .env, and flat names still construct and copy settings."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from assist.settings import FIELD_GROUP, GROUPS, AsrSettings, Settings

# Every variable the flat Settings read (RECOBRA_<NAME>), frozen here: renaming a field breaks a deployment
ENV_NAMES = set("""
ACCOUNT_FACTS_MAX_WAITING ACCOUNT_FACTS_ROUTE_S ACCOUNT_FACTS_WAIT_S ASR_BATCHING ASR_BATCH_WINDOW_MS
ASR_INTERIM_MAX_WAIT_S ASR_MAX_BATCH ASR_MODEL ASR_MODELS ASR_THREADS ASR_TRIM_WINDOW ASR_WINDOW_FLOOR_S
BEAM_SIZE_FINAL BEAM_SIZE_INTERIM BEAM_SIZE_POST_CALL CACHE_DIR CHANNEL_QUEUE_FRAMES COMPUTE_TYPE
CONVERSATION_MAX_TEXT_BYTES CONVERSATION_SECONDS_PER_WORD DATABASE_URL DEVICE EARLY_FINAL_PAUSE_S
EMBEDDING_BACKEND EMBEDDING_BATCH_WINDOW_MS EMBEDDING_MAX_BATCH EMBEDDING_MODEL EU_MODE EVENT_BUS
EVENT_STORE_QUEUE HOST IDLE_TIMEOUT_S INFERENCE_BACKEND JURISDICTION LANGUAGE LANGUAGES LOG_JSON LOG_LEVEL
MAX_CALLS MAX_CONVERSATIONS MAX_MEDIA_GAP_S MAX_MESSAGES_PER_AUDIO_S MAX_MESSAGES_PER_S MAX_MESSAGE_BYTES
MAX_UTTERANCE_S MESSAGE_GRACE METRICS_TOKEN NODE_HEARTBEAT_S NODE_ID NODE_TTL_S PARTIAL_INTERVAL_S PORT
POST_CALL_ASR_MODEL POST_CALL_CPU_SHARE POST_CALL_MAX_SEGMENT_S POST_CALL_MIN_SILENCE_MS POST_CALL_POLL_S
POST_CALL_TRANSCRIPTS PUBLIC_URL RAY_ADDRESS RAY_APP_NAME RAY_ASR_DEPLOYMENT RAY_ASR_NUM_CPUS RAY_ASR_NUM_GPUS
RAY_ASR_REPLICAS RAY_BATCH_WAIT_TIMEOUT_S RAY_EMBED_APP_NAME RAY_EMBED_BATCH_WAIT_TIMEOUT_S RAY_EMBED_DEPLOYMENT
RAY_EMBED_MAX_BATCH_SIZE RAY_EMBED_NUM_CPUS RAY_EMBED_REPLICAS RAY_MAX_BATCH_SIZE RECONNECT_GRACE_S
RECORDER_MAX_PENDING RECORDINGS_DIR RECORDING_HOLD_S RECORDING_KEY RECORDING_MARGIN_S RECORDING_RETENTION_DAYS
RECORDING_S3_ACCESS_KEY_ID RECORDING_S3_BUCKET RECORDING_S3_ENDPOINT_URL RECORDING_S3_PREFIX RECORDING_S3_REGION
RECORDING_S3_SECRET_ACCESS_KEY RECORDING_STORAGE RECORD_CALLS REDACT_KINDS REDACT_TRANSCRIPTS REDIS_LOG_TTL_S
REDIS_PREFIX REDIS_URL RULES_DIR TENANTS TENANTS_FILE TOKEN_MAX_TTL_S TOKEN_SECRET TOKEN_TTL_S
VAD_MIN_SILENCE_MS VAD_SPEECH_PAD_MS VAD_THRESHOLD WEBHOOK_BACKOFF_MAX_S WEBHOOK_BACKOFF_S WEBHOOK_GIVE_UP_S
WEBHOOK_POLL_S WEBHOOK_TIMEOUT_S
""".split())

SECRET = "s" * 40
KEY = "k" * 20
# one variable of each group (and the top level), by its current name -> (value, group, field, expected)
ONE_PER_GROUP = {
    "RECOBRA_PORT": ("8181", None, "port", 8181),
    "RECOBRA_ASR_MODEL": ("base", "asr", "asr_model", "base"),
    "RECOBRA_BEAM_SIZE_FINAL": ("3", "asr", "beam_size_final", 3),
    "RECOBRA_VAD_MIN_SILENCE_MS": ("650", "segmentation", "vad_min_silence_ms", 650),
    "RECOBRA_MAX_CALLS": ("7", "limits", "max_calls", 7),
    "RECOBRA_TENANTS": (json.dumps([{"id": "acme", "api_keys": [KEY]}]), "security", "tenants", None),
    "RECOBRA_TOKEN_SECRET": (SECRET, "security", "token_secret", None),
    "RECOBRA_DATABASE_URL": ("postgresql+psycopg://u@db/r", "storage", "database_url", "postgresql+psycopg://u@db/r"),
    "RECOBRA_RECORDING_STORAGE": ("s3", "recordings", "recording_storage", "s3"),
    "RECOBRA_POST_CALL_POLL_S": ("2.5", "post_call", "post_call_poll_s", 2.5),
    "RECOBRA_EU_MODE": ("false", "analysis", "eu_mode", False),
    "RECOBRA_MAX_CONVERSATIONS": ("12", "conversations", "max_conversations", 12),
    "RECOBRA_ACCOUNT_FACTS_WAIT_S": ("60", "facts", "account_facts_wait_s", 60.0),
    "RECOBRA_WEBHOOK_TIMEOUT_S": ("4", "webhooks", "webhook_timeout_s", 4.0),
    "RECOBRA_RAY_ADDRESS": ("ray://head:10001", "distributed", "ray_address", "ray://head:10001"),
}


@pytest.fixture
def clean(monkeypatch, tmp_path):
    """No RECOBRA_* variable from the outside and no .env but the test's own (the working folder is tmp_path)."""
    for name in [n for n in os.environ if n.startswith("RECOBRA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _check(settings: Settings) -> None:
    for group, field, expected in [v[1:] for v in ONE_PER_GROUP.values()]:
        if expected is not None:
            assert getattr(getattr(settings, group) if group else settings, field) == expected, field
    assert [t.id for t in settings.security.tenants] == ["acme"] and not settings.security.dev_mode
    assert settings.security.token_secret is not None and settings.security.token_secret.get_secret_value() == SECRET


def test_every_flat_name_is_a_grouped_field():
    names = {f.upper() for f in FIELD_GROUP} | {f.upper() for f in Settings.model_fields if f not in GROUPS}
    assert names == ENV_NAMES
    for group, cls in GROUPS.items():
        assert cls.model_config["env_prefix"] == "RECOBRA_" and cls.model_config["env_file"] == ".env", group


def test_environment_variables_reach_the_groups(clean, monkeypatch):
    for name, (value, *_) in ONE_PER_GROUP.items():
        monkeypatch.setenv(name, value)
    _check(Settings())


def test_env_file_reaches_the_groups_and_the_environment_wins(clean, monkeypatch):
    (clean / ".env").write_text("".join(f"{name}='{value}'\n" for name, (value, *_) in ONE_PER_GROUP.items()))
    _check(Settings())
    monkeypatch.setenv("RECOBRA_MAX_CALLS", "9")
    assert Settings().limits.max_calls == 9
    other = clean / "other.env"
    other.write_text("RECOBRA_NODE_ID=front-x\nRECOBRA_ASR_MODEL=small\n")
    chosen = Settings(_env_file=other)  # as before: one env file for every group
    assert (chosen.distributed.node_id, chosen.asr.asr_model, chosen.limits.max_calls) == ("front-x", "small", 9)


def test_tenants_file_from_the_environment_is_read_once(clean, monkeypatch):
    (clean / "tenants.yaml").write_text(f"- id: initech\n  api_keys: [{KEY}]\n")
    monkeypatch.setenv("RECOBRA_TENANTS_FILE", str(clean / "tenants.yaml"))
    monkeypatch.setenv("RECOBRA_TOKEN_SECRET", SECRET)
    assert [t.id for t in Settings().security.tenants] == ["initech"]


def test_invalid_values_fail_naming_each_variable(clean, monkeypatch):
    monkeypatch.setenv("RECOBRA_MAX_CALLS", "lots")
    monkeypatch.setenv("RECOBRA_PORT", "eighty")
    with pytest.raises(ValidationError) as caught:
        Settings()
    text = str(caught.value)
    assert "validation errors for Settings" in text
    assert "limits.max_calls" in text and "'lots'" in text and "port" in text and "'eighty'" in text
    monkeypatch.delenv("RECOBRA_MAX_CALLS")
    monkeypatch.delenv("RECOBRA_PORT")
    monkeypatch.setenv("RECOBRA_TENANTS", json.dumps([{"id": "acme", "api_keys": [KEY]}]))
    with pytest.raises(ValidationError, match="token_secret"):
        Settings()


def test_flat_keyword_names_and_copies(clean, monkeypatch):
    monkeypatch.setenv("RECOBRA_LANGUAGE", "es")
    settings = Settings(asr_model="tiny.en", database_url="sqlite:///x/r.db", port=9000)
    # a field given by name keeps its group's other fields read from the environment
    assert (settings.asr.asr_model, settings.asr.language, settings.port) == ("tiny.en", "es", 9000)
    assert settings.recordings_root.as_posix() == "x/recordings"
    assert Settings(asr={"beam_size_final": 2}).asr.language == "es"
    assert Settings(asr=AsrSettings(asr_model="base")).asr.asr_model == "base"
    copy = settings.model_copy(update={"record_calls": False, "ray_app_name": "other", "port": 1})
    assert (copy.recordings.record_calls, copy.distributed.ray_app_name, copy.port) == (False, "other", 1)
    assert settings.recordings.record_calls and settings.distributed.ray_app_name == "recobra"
    with pytest.raises(TypeError, match="asr_modle"):
        Settings(asr_modle="base")
    with pytest.raises(TypeError, match="asr"):
        Settings(asr=AsrSettings(), asr_model="base")
    with pytest.raises(TypeError, match="unknown"):
        settings.model_copy(update={"no_such_setting": 1})
