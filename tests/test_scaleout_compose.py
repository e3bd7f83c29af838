"""deploy/compose.yaml, the scale-out stack on one host, checked for structure: there is no container
runtime here to run it (README "Scaling out" says so)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "deploy" / "compose.yaml"
RECOBRA = ("ray-head", "migrate", "front-a", "front-b")


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _command(service: dict) -> str:
    command = service["command"]
    return command if isinstance(command, str) else " ".join(command)


def test_the_stack_has_every_part_and_starts_in_order(services):
    assert set(services) == {"postgres", "redis", *RECOBRA}
    for name in ("postgres", "redis", "ray-head"):
        assert services[name]["healthcheck"]["test"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert _command(services["migrate"]) == "recobra db upgrade"
    for name in ("front-a", "front-b"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"},
                                                "ray-head": {"condition": "service_healthy"},
                                                "redis": {"condition": "service_healthy"}}


def test_ray_head_serves_asr_without_the_http_proxy(services):
    command = _command(services["ray-head"])
    assert "ray start --head --port=6380" in command
    assert command.index("serve start --proxy-location=Disabled") < command.index(
        "serve run --non-blocking --name recobra assist.distributed.ray_asr:build_app")
    assert "trap 'serve shutdown -y; ray stop; exit 0' TERM" in command


def test_front_ends_join_ray_and_run_in_production_mode(services):
    ports, nodes = [], []
    for name in ("front-a", "front-b"):
        front, env = services[name], services[name]["environment"]
        assert re.fullmatch(r"ray start --address=ray-head:6380 --num-cpus=0 .*&& exec recobra serve --host 0\.0\.0\.0 "
                            r"--port 8080", front["command"][-1])
        assert (env["RECOBRA_INFERENCE_BACKEND"], env["RECOBRA_EVENT_BUS"]) == ("ray", "redis")
        assert env["RECOBRA_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["RECOBRA_TENANTS"].startswith("${RECOBRA_TENANTS:?")  # required: no development mode
        assert env["RECOBRA_TOKEN_SECRET"].startswith("${RECOBRA_TOKEN_SECRET:?")
        assert front["stop_signal"] == "SIGTERM" and front["stop_grace_period"]
        ports += front["ports"]
        nodes.append(env["RECOBRA_NODE_ID"])
    assert ports == ["8081:8080", "8082:8080"] and len(set(nodes)) == 2


def test_only_the_front_ends_publish_ports_and_ray_requires_its_token(services):
    assert {name for name, service in services.items() if "ports" in service} == {"front-a", "front-b"}
    for name in RECOBRA:
        env = services[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?")


def test_docker_compose_accepts_it_where_compose_exists():
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no docker compose here: the file is checked for structure only")
    env = {**os.environ, "RAY_AUTH_TOKEN": "t", "RECOBRA_TOKEN_SECRET": "s" * 64, "RECOBRA_TENANTS": "[]"}
    done = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "-q"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
