"""Tenants (customer organisations) and the recording key type, as the security and recording settings hold them."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator


def recording_key_bytes(key: SecretStr) -> bytes:
    """The 32-byte key a recording_key setting holds (base64); empty when it is not base64."""
    try:
        return base64.b64decode(key.get_secret_value(), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _key_is_256_bits(key: SecretStr) -> SecretStr:
    if len(recording_key_bytes(key)) != 32:
        raise ValueError("recording_key must be the base64 of 32 bytes")
    return key


RecordingKey = Annotated[SecretStr, AfterValidator(_key_is_256_bits)]


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
    recording_key: RecordingKey | None = Field(
        None, description="Base64 of 32 random bytes: the AES-256-GCM key of this tenant's recordings (README "
        "'Recordings'); without it the tenant's calls are not recorded.")
    record_calls: bool | None = Field(None, description="Record this tenant's calls; unset: RECORD_CALLS.")
    recording_retention_days: int | None = Field(
        None, ge=1, description="Days a recording is kept; unset: RECORDING_RETENTION_DAYS.")
    webhook_url: str | None = Field(
        None, pattern=r"^https?://",
        description="Receives call outcomes (POST, signed; README 'Account facts and outcomes').")
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of X-Recobra-Signature; required with webhook_url.")

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Tenant:
        if self.webhook_url and (self.webhook_secret is None or len(self.webhook_secret.get_secret_value()) < 16):
            raise ValueError("webhook_secret (at least 16 characters) is required with webhook_url")
        return self
