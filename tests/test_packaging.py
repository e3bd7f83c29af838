"""What an image would hold, without a docker daemon: the wheel built from what the Dockerfile copies,
installed into a clean venv outside the checkout, serves the three browser pages (README "Browser pages")."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("overlay.html", "dashboard.html", "qa.html")
ASSETS = ("overlay.js", "overlay_signals.js", "dashboard.js", "qa.js", "qa_call.js", "qa_util.js", "common.js",
          "i18n.js", "words.js", "recobra.css", "qa.css")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _build_context(tmp: Path) -> Path:
    """What the Dockerfile's build stage copies (its COPY lines), copied out of the checkout."""
    src = tmp / "src"
    src.mkdir()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not parts[1].startswith("--"):
            for name in parts[1:-1]:
                if (ROOT / name).is_dir():
                    shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(ROOT / name, src / name)
    return src


def _venv_from_wheel(tmp: Path) -> Path:
    """A venv whose only Recobra is the wheel built from the Dockerfile's context; dependencies come from
    this interpreter's site-packages (a .pth line: its .pth files, the checkout's editable install among
    them, are not run)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "wheels"), str(_build_context(tmp))], check=True, cwd=tmp, timeout=120)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "recobra-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next((tmp / "wheels").glob("recobra-*.whl"))
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, cwd=tmp, timeout=120)
    return venv


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read()


def test_installed_wheel_serves_the_pages(tmp_path: Path) -> None:
    venv = _venv_from_wheel(tmp_path)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import assist, web_overlay; print(assist.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOBRA_")}
    env |= {"RECOBRA_DATABASE_URL": f"sqlite:///{tmp_path / 'recobra.db'}", "RECOBRA_HOST": "127.0.0.1",
            "RECOBRA_PORT": str(port)}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([str(venv / "bin" / "recobra"), "serve"], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/ui/"
        deadline = time.monotonic() + 90
        while True:
            try:
                _get(base + "overlay.html")
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "recobra serve did not answer in 90 s"
                time.sleep(0.5)
        for name in PAGES + ASSETS:
            status, body = _get(base + name)
            assert status == 200 and body, name
    finally:
        proc.terminate()
        proc.wait(30)
