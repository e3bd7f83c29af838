"""Tenants, credentials and tokens for tests that run the service with authentication on."""

from __future__ import annotations

import base64
from pathlib import Path

from assist.auth import mint_token
from assist.settings import Settings

TOKEN_SECRET = "test-token-secret-0123456789abcdef-xyz"
METRICS_TOKEN = "metrics-token-0123456789"
ACME_KEY = "acme-key-0123456789abcdef"
ACME_TWILIO_TOKEN = "acme-twilio-auth-token-0123456789"
ACME_ACCOUNT = "AC" + "1" * 32
GLOBEX_KEY = "globex-key-0123456789abcdef"
GLOBEX_SECRET = base64.b64encode(b"globex audiohook client secret!!").decode()
TENANTS = [
    {"id": "acme", "api_keys": [ACME_KEY], "twilio_auth_token": ACME_TWILIO_TOKEN, "twilio_account_sid": ACME_ACCOUNT},
    {"id": "globex", "api_keys": [GLOBEX_KEY], "genesys_client_secret": GLOBEX_SECRET},
]


def tenant_settings(tmp: Path, **overrides) -> Settings:
    """tiny.en, a SQLite file under `tmp`, the two test tenants; `overrides` for limits."""
    return Settings(asr_model="tiny.en", language="en", cache_dir=tmp / "cache",
                    database_url=f"sqlite:///{tmp / 'recobra.db'}", tenants=TENANTS, token_secret=TOKEN_SECRET,
                    metrics_token=METRICS_TOKEN, **overrides)


def token(tenant: str, role: str, call_id: str | None = None, ttl_s: int = 600) -> str:
    return mint_token(TOKEN_SECRET, tenant, role, call_id=call_id, ttl_s=ttl_s)


def bearer(tenant: str, role: str, call_id: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant, role, call_id)}"}
