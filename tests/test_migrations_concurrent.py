"""Schema migrations when several front ends start together on a fresh database (orchestrators start
replicas at once): every process comes up, the schema is migrated once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from assist.storage.db import MIGRATIONS, current_revision
from tests.test_storage import db_url  # noqa: F401 - the SQLite / PostgreSQL fixture

# each process waits for the same instant, then opens the database as `recobra serve` does
OPEN_AT = """
import sys, time
from assist.storage.db import Database
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
Database(sys.argv[1]).close()
"""


def _head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_front_ends_starting_together_on_a_fresh_database_all_come_up(db_url: str) -> None:  # noqa: F811
    """Without the migration lock PostgreSQL fails this as in issue 16 (`UniqueViolation ... alembic_version`)."""
    processes = 3
    at = time.time() + 3.0  # after every interpreter has imported SQLAlchemy and Alembic
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT, db_url, str(at)], stderr=subprocess.PIPE, text=True,
                              cwd=os.getcwd()) for _ in range(processes)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * processes, "\n".join(errors)
    assert current_revision(db_url) == _head()


def test_db_upgrade_command_migrates_and_reports_the_revision(db_url: str) -> None:  # noqa: F811
    env = {**os.environ, "RECOBRA_DATABASE_URL": db_url}
    recobra = [str(Path(sys.executable).with_name("recobra"))]

    def run(*args: str) -> str:
        done = subprocess.run([*recobra, "db", *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run("current") == "none"
    assert run("upgrade") == f"database at revision {_head()}"
    assert run("upgrade") == f"database at revision {_head()}"
    assert run("current") == _head()
