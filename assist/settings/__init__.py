"""All configuration in one place, read from RECOBRA_* environment variables or a .env file.

The settings are grouped by concern (`settings.asr`, `settings.storage`, `settings.distributed`, ...: see
`groups.py`); a field keeps the name of its environment variable, so RECOBRA_ASR_MODEL is
`settings.asr.asr_model` and RECOBRA_DATABASE_URL is `settings.storage.database_url`. `Settings(...)` also takes
the fields by those flat names (`Settings(asr_model="tiny.en", database_url=url)`, as `serve run ... key=value`
passes them) and `model_copy(update=...)` does too: each name is routed to its group, whose other fields are still
read from the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Self

from pydantic import Field, ValidationError
from pydantic_core import InitErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from assist.settings.groups import (
    AnalysisSettings,
    AsrSettings,
    ConversationSettings,
    DistributedSettings,
    FactsSettings,
    Group,
    LimitsSettings,
    PostCallSettings,
    RecordingSettings,
    SecuritySettings,
    SegmentationSettings,
    StorageSettings,
    WebhookSettings,
)
from assist.settings.tenants import RecordingKey, Tenant, recording_key_bytes

__all__ = [
    "FIELD_GROUP", "GROUPS", "AnalysisSettings", "AsrSettings", "ConversationSettings", "DistributedSettings",
    "FactsSettings", "LimitsSettings", "PostCallSettings", "RecordingKey", "RecordingSettings", "SecuritySettings",
    "SegmentationSettings", "Settings", "StorageSettings", "Tenant", "WebhookSettings", "get_settings",
    "recording_key_bytes",
]

# Settings attribute -> its group's class
GROUPS: dict[str, type[Group]] = {
    "asr": AsrSettings, "segmentation": SegmentationSettings, "limits": LimitsSettings,
    "security": SecuritySettings, "storage": StorageSettings, "recordings": RecordingSettings,
    "post_call": PostCallSettings, "analysis": AnalysisSettings, "conversations": ConversationSettings,
    "facts": FactsSettings, "webhooks": WebhookSettings, "distributed": DistributedSettings,
}


class Settings(BaseSettings):
    """Service settings. Every field can be set as RECOBRA_<NAME>; the groups' fields too (RECOBRA_<FIELD NAME>)."""

    model_config = SettingsConfigDict(env_prefix="RECOBRA_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    log_json: bool = False

    asr: AsrSettings = Field(default_factory=AsrSettings, description="Speech recognition.")
    segmentation: SegmentationSettings = Field(
        default_factory=SegmentationSettings, description="Segmentation and streaming policy.")
    limits: LimitsSettings = Field(default_factory=LimitsSettings, description="Ingest limits.")
    security: SecuritySettings = Field(default_factory=SecuritySettings, description="Tenants, tokens, secrets.")
    storage: StorageSettings = Field(default_factory=StorageSettings, description="Database and redaction.")
    recordings: RecordingSettings = Field(default_factory=RecordingSettings, description="Call recordings.")
    post_call: PostCallSettings = Field(default_factory=PostCallSettings, description="Post-call transcripts.")
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings, description="Live analysis.")
    conversations: ConversationSettings = Field(
        default_factory=ConversationSettings, description="Written conversations.")
    facts: FactsSettings = Field(default_factory=FactsSettings, description="Account facts.")
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings, description="Outcome webhooks.")
    distributed: DistributedSettings = Field(default_factory=DistributedSettings, description="Scale-out.")

    def __init__(self, **values: Any) -> None:
        """Fields by their flat names (`asr_model=...`) or groups (`asr=AsrSettings(...)` or a dict); `_env_file`
        and the other `_` options apply to every group. Every invalid value is reported in one error."""
        options = {k: v for k, v in values.items() if k.startswith("_")}
        top, changes = _route({k: v for k, v in values.items() if not k.startswith("_")})
        errors: list[InitErrorDetails] = []
        for name, cls in GROUPS.items():
            given = top.pop(name, None)
            if isinstance(given, cls):
                if name in changes:
                    raise TypeError(f"Settings: give {name} as a group or its fields by name, not both")
                top[name] = given
                continue
            try:
                top[name] = cls(**options, **(given or {}), **changes.get(name, {}))
            except ValidationError as exc:
                errors += _within(name, exc)
                top[name] = cls.model_construct()  # a stand-in, so the top-level fields are checked too
        try:
            super().__init__(**options, **top)
        except ValidationError as exc:
            errors += _within(None, exc)
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with `update` applied; fields may be named flat (`record_calls`): they update a copy of their group.
        Like `BaseModel.model_copy`, nothing is validated."""
        if not update:
            return super().model_copy(deep=deep)
        top, changes = _route(update)
        for name, group_changes in changes.items():
            if name in top:
                raise TypeError(f"Settings.model_copy: update {name} as a group or its fields by name, not both")
            top[name] = getattr(self, name).model_copy(update=group_changes, deep=deep)
        return super().model_copy(update=top, deep=deep)

    @property
    def recordings_root(self) -> Path:
        """The recordings folder (recordings_dir, else beside the SQLite database)."""
        if self.recordings.recordings_dir is not None:
            return self.recordings.recordings_dir
        url = self.storage.database_url
        sqlite = url.removeprefix("sqlite:///")
        folder = Path(sqlite).parent if sqlite != url and sqlite != ":memory:" else Path("./var")
        return folder / "recordings"


# a group field's flat name -> its group
FIELD_GROUP: dict[str, str] = {field: name for name, cls in GROUPS.items() for field in cls.model_fields}
assert len(FIELD_GROUP) == sum(len(cls.model_fields) for cls in GROUPS.values()), "a field name is in two groups"
assert not FIELD_GROUP.keys() & Settings.model_fields.keys(), "a group field shadows a Settings field"


def _route(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Split settings by name: Settings' own fields and groups as given, and each group's fields named flat."""
    top: dict[str, Any] = {}
    changes: dict[str, dict[str, Any]] = {}
    unknown = []
    for key, value in values.items():
        if key in Settings.model_fields:
            top[key] = value
        elif key in FIELD_GROUP:
            changes.setdefault(FIELD_GROUP[key], {})[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    return top, changes


def _within(group: str | None, exc: ValidationError) -> list[InitErrorDetails]:
    """A group's validation errors, located under the group's name (`limits.max_calls`)."""
    prefix = (group,) if group else ()
    out: list[InitErrorDetails] = []
    for error in exc.errors():
        details: InitErrorDetails = {"type": error["type"], "loc": (*prefix, *error["loc"]), "input": error["input"]}
        if "ctx" in error:
            details["ctx"] = error["ctx"]
        out.append(details)
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once on first use (never at import time)."""
    return Settings()
