"""README "Scaling out" as an operator runs it (deploy/scaleout.sh): a Ray head with token auth, the ASR
application, two front ends started together on Redis and a fresh PostgreSQL database, a call, SIGTERM to
the front end holding it mid-call, teardown. The call must end cleanly: stored, scored, its last events seen
on the other front end."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from assist.democall import fleurs_call
from assist.storage.tables import Call
from streaming.types import SAMPLE_RATE
from tests.test_redis_bus import redis_url  # noqa: F401 - the Redis fixture
from tests.test_storage import _postgres_url

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "scaleout.sh"
README = ROOT / "README.md"


@pytest.fixture
def postgres_url():
    yield from _postgres_url()


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def _require(what: str, present: bool) -> None:
    if present:
        return
    if os.environ.get("RECOBRA_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} required here")
    pytest.skip(f"{what} not installed")


def _isolated() -> list[str] | None:
    """A PID namespace of the script's own (as root, or as a mapped root user), so that its `ray stop` stops
    only the Ray it started, never another cluster on this host (this test session's included)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    for prefix in ([unshare], [unshare, "--user", "--map-root-user"]):
        command = [*prefix, "--pid", "--fork", "--mount-proc", "--kill-child"]
        if subprocess.run([*command, "true"], capture_output=True).returncode == 0:
            return command
    return None


def test_readme_scale_out_steps_survive_a_sigterm_mid_call(tmp_path, postgres_url, redis_url):  # noqa: F811
    _require("Ray (pip install torch==2.13.0 -e '.[scale]')", importlib.util.find_spec("ray") is not None)
    _require("curl and openssl", all(shutil.which(tool) for tool in ("curl", "openssl")))
    isolated = _isolated()
    _require("unshare with PID namespaces (util-linux)", isolated is not None)
    agent, debtor, _ = fleurs_call("en", turns=2)
    audio = tmp_path / "call.wav"
    sf.write(audio, np.stack([agent, debtor], axis=1), SAMPLE_RATE)
    ray_port, port_a, port_b = _free_ports(3)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "RUN_DIR": str(tmp_path),
           "RECOBRA_DATABASE_URL": postgres_url, "RECOBRA_REDIS_URL": redis_url, "CALL_AUDIO": str(audio),
           "RAY_PORT": str(ray_port), "PORT_A": str(port_a), "PORT_B": str(port_b),
           "RAY_AUTH_TOKEN": secrets.token_hex(32), "RECOBRA_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run([*isolated, "bash", str(SCRIPT)], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    front_a = (tmp_path / "front-a.log").read_text() if (tmp_path / "front-a.log").exists() else ""
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}\nfront end A:\n{front_a[-3000:]}"
    assert "Stopped all" in run.stderr + run.stdout  # ray stop found the cluster and stopped it

    # front end A shut down gracefully (uvicorn re-raises SIGTERM at the end: 128 + 15), not Ray's exit(15)
    assert (tmp_path / "front-a.status").read_text().strip() == "143", front_a[-3000:]
    assert "Application shutdown complete" in front_a
    assert not any(bad in front_a for bad in ("Aborted", "Fatal error", "SystemExit")), front_a[-3000:]

    events = json.loads((tmp_path / "log-on-b.json").read_text())
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert any(e["type"] == "transcript.final" for e in events)
    ended = [e for e in events if e["type"] == "call.ended"]
    assert [e["reason"] for e in ended] == ["service stopped"]
    assert events[-1]["type"] == "qa.score"

    engine = create_engine(postgres_url)
    with Session(engine) as s:
        call = s.scalars(select(Call).where(Call.id == "scaleout-call")).one()
        row = (call.status, call.end_reason, call.node_id, call.score is not None)
    engine.dispose()
    assert row == ("ended", "service stopped", "front-a", True)


def test_readme_scale_out_commands_are_the_scripts():
    """Each command of README "Scaling out" that the script runs appears there as written (so neither rots
    alone); the script's variables stand where the README has the operator's values."""
    readme = README.read_text().split("## Scaling out", 1)[1].split("\n## ", 1)[0]
    script = SCRIPT.read_text()
    for command in ("export RAY_AUTH_MODE=token", "ray get-auth-token --generate",
                    "serve start --proxy-location=Disabled",
                    "serve run --non-blocking --name recobra assist.distributed.ray_asr:build_app",
                    "RECOBRA_INFERENCE_BACKEND=ray RECOBRA_EVENT_BUS=redis", "recobra serve --host",
                    "serve shutdown -y", "ray stop", "ray start --head --port="):
        assert command in readme, f"README lacks {command!r}"
        assert command in script, f"deploy/scaleout.sh lacks {command!r}"
