"""Where recordings live and who may have one: per-tenant keys and switches, the database rows, retention."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select

from assist.privacy import Redactor
from assist.recording import JOIN_S, CallRecording, RecordingPolicy
from assist.sealed import SealedReader
from assist.settings import Settings, recording_key_bytes
from assist.storage.db import Database
from assist.storage.recording_objects import RecordingFiles, set_location, upload_spooled
from assist.storage.repository import utc
from assist.storage.tables import Recording, RecordingPlay

log = structlog.get_logger(__name__)
DEV_TENANT = "_dev"


class Recordings:
    """Opens a `CallRecording` for each call that is recorded; reads and purges stored ones."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.root = settings.recordings_root
        self.files = RecordingFiles(settings)
        self._tenants = {t.id: t for t in settings.security.tenants}
        self.redactor = Redactor(frozenset(settings.storage.redact_kinds))
        recordings = settings.recordings
        self.policy = RecordingPolicy(
            hold_s=max(recordings.recording_hold_s, settings.segmentation.max_utterance_s + JOIN_S + 2.0),
            margin_s=recordings.recording_margin_s)
        for tenant in settings.security.tenants:
            if self._wanted(tenant.id) and tenant.recording_key is None:
                log.warning("recording.no_key", tenant=tenant.id, detail="this tenant's calls are not recorded")

    def key(self, tenant: str | None) -> bytes | None:
        """The tenant's recording key (development mode: the setting, else a generated key file)."""
        if tenant is not None:
            entry = self._tenants.get(tenant)
            return recording_key_bytes(entry.recording_key) if entry and entry.recording_key else None
        if self.settings.recordings.recording_key is not None:
            return recording_key_bytes(self.settings.recordings.recording_key)
        return self._dev_key

    @cached_property
    def _dev_key(self) -> bytes:
        """Development mode without RECORDING_KEY: a key file made once (by whichever process comes first)."""
        path = self.root / "development.key"
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return base64.b64decode(path.read_text().strip())
        key = os.urandom(32)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(key).decode())
        log.warning("recording.development_key", path=str(path), detail="set RECOBRA_RECORDING_KEY instead")
        return key

    def _wanted(self, tenant: str | None) -> bool:
        entry = self._tenants.get(tenant) if tenant is not None else None
        if entry is not None and entry.record_calls is not None:
            return entry.record_calls
        return self.settings.recordings.record_calls

    def path(self, tenant: str | None, call_id: str) -> Path:
        name = hashlib.sha256(call_id.encode()).hexdigest()[:40]
        return self.root / (tenant or DEV_TENANT) / f"{name}.rec"

    def open(self, call_id: str, metadata: dict[str, Any]) -> CallRecording | None:
        """A recording for a starting call, or None: off for its tenant or call (`record: false`), or no key."""
        tenant = metadata.get("tenant")
        if not self._wanted(tenant) or str(metadata.get("record", "")).strip().lower() in ("false", "0", "no", "off"):
            log.info("recording.off", call_id=call_id, tenant=tenant)
            return None
        key = self.key(tenant)
        if key is None:
            return None
        path = self.path(tenant, call_id)
        started = datetime.now(UTC)

        def on_change(status: str, duration: float, spans: list[dict]) -> None:
            with self.db.session() as s:
                row = s.get(Recording, call_id)
                if row is None:
                    row = Recording(call_id=call_id, tenant=tenant, path=str(path), started_at=started)
                    s.add(row)
                row.status, row.duration, row.redactions = status, duration, spans
            if status in ("complete", "failed") and (location := self.files.keep(path, call_id)):
                set_location(self.db, call_id, location)

        return CallRecording(call_id, path, key, self.redactor, self.policy, on_change)

    def reader(self, row: Recording) -> SealedReader:
        """The sealed file or object of a stored recording (SealedError when it cannot be read)."""
        key = self.key(row.tenant)
        return self.files.reader(row.path, key if key and len(key) == 32 else b"\0" * 32, row.call_id)

    def upload_spooled(self) -> list[str]:
        """With a bucket: upload what calls no longer live left in the spool (run at start-up)."""
        return upload_spooled(self.db, self.files)

    def retention_days(self, tenant: str | None) -> int:
        entry = self._tenants.get(tenant) if tenant is not None else None
        days = entry.recording_retention_days if entry is not None else None
        return days or self.settings.recordings.recording_retention_days

    def purge(self, now: datetime | None = None, dry_run: bool = False) -> list[str]:
        """Delete the recordings older than their tenant's retention; returns their call ids (each logged)."""
        now = now or datetime.now(UTC)
        purged = []
        with self.db.session() as s:
            for row in s.scalars(select(Recording).where(Recording.status != "purged")):
                days = self.retention_days(row.tenant)
                if utc(row.started_at) > now - timedelta(days=days):
                    continue
                purged.append(row.call_id)
                if dry_run:
                    continue
                self.files.delete(row.path)
                row.status, row.purged_at = "purged", now
                log.info("recording.purged", call_id=row.call_id, tenant=row.tenant, retention_days=days)
        return purged

    def audit(self, call_id: str, who: str) -> None:
        """Note who started playing a recording, and when."""
        with self.db.session() as s:
            s.add(RecordingPlay(call_id=call_id, who=who, at=datetime.now(UTC)))
        log.info("recording.played", call_id=call_id, who=who)
