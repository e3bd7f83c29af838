"""Command line: `recobra serve`, `recobra db`, `recobra recordings`, `recobra rules`, `recobra replay`,
`recobra demo`, `recobra token`."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import uuid
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
import uvicorn

from assist.logs import configure_logging
from assist.settings import get_settings

app = typer.Typer(help="Recobra: realtime agent assist for collections calls.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema (RECOBRA_DATABASE_URL).", no_args_is_help=True)
app.add_typer(db_app, name="db")
recordings_app = typer.Typer(help="Call recordings (README 'Recordings').", no_args_is_help=True)
app.add_typer(recordings_app, name="recordings")
rules_app = typer.Typer(help="The rules files (README 'Rules').", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@app.command()
def serve(host: str = typer.Option(None), port: int = typer.Option(None)) -> None:
    """Start the service (without tenants, development mode: loopback addresses only); invalid rules stop it
    with each problem (file, field, what is wrong) and exit code 2."""
    from assist.app import create_app
    from assist.ruleset import RulesError

    s = get_settings()
    host = host or s.host
    if s.security.dev_mode and not _loopback(host):
        typer.secho(f"refusing to serve {host}: no tenants are configured (development mode, everything open). "
                    "Set RECOBRA_TENANTS (or RECOBRA_TENANTS_FILE) and RECOBRA_TOKEN_SECRET, or bind 127.0.0.1.",
                    fg="red", err=True)
        raise typer.Exit(2)
    configure_logging(s.log_level, s.log_json)
    try:
        service = create_app(s)
    except RulesError as exc:
        typer.secho(f"not starting: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(service, host=host, port=port or s.port, log_level=s.log_level.lower(),
                ws_max_size=s.limits.max_message_bytes + 4096, access_log=False)  # assist.auth logs requests


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations (also done by `serve` at start-up; safe when several run at once)."""
    from assist.storage.db import upgrade_database

    typer.echo(f"database at revision {upgrade_database(get_settings().storage.database_url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision (none: not migrated yet)."""
    from assist.storage.db import current_revision

    typer.echo(current_revision(get_settings().storage.database_url) or "none")


@recordings_app.command("purge")
def recordings_purge(dry_run: bool = typer.Option(False, help="List what would be deleted, delete nothing.")) -> None:
    """Delete the recordings past their tenant's retention (also done by `serve` at start-up); each is logged."""
    from assist.recording_store import Recordings
    from assist.storage.db import Database

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    db = Database(settings.storage.database_url)
    try:
        purged = Recordings(settings, db).purge(dry_run=dry_run)
    finally:
        db.close()
    typer.echo(f"{'would purge' if dry_run else 'purged'} {len(purged)} recording(s)")
    for call_id in purged:
        typer.echo(f"  {call_id}")


@rules_app.command("check")
def rules_check(
    folder: Annotated[Path | None, typer.Argument(
        help="A rules folder (its files replace the packaged ones of the same name); default: RECOBRA_RULES_DIR, "
        "else the packaged rules.")] = None,
) -> None:
    """Validate a folder of rules as the service would load it: prints OK, or each problem (file, field,
    what is wrong) and exits 1."""
    from assist.ruleset import check_rules

    folder = folder or get_settings().analysis.rules_dir
    problems = check_rules(folder)
    where = str(folder) if folder else "packaged rules"
    if not problems:
        typer.echo(f"OK: {where}")
        return
    typer.secho(f"{len(problems)} problem(s) in {where}:", fg="red", err=True)
    for problem in problems:
        typer.echo(f"  {problem}", err=True)
    raise typer.Exit(1)


@app.command()
def token(
    tenant: str = typer.Option(..., help="A configured tenant id."),
    role: str = typer.Option("agent", help="agent | supervisor | qa"),
    call_id: str = typer.Option(None, "--call", help="The call an agent token opens (required for agents)."),
    ttl: int = typer.Option(None, help="Lifetime in seconds (default token_ttl_s, at most token_max_ttl_s)."),
    subject: str = typer.Option("", help="Who it is for (agent id, reviewer); shown in logs."),
) -> None:
    """Mint an access token (signed with RECOBRA_TOKEN_SECRET) and print it."""
    from assist.auth import Authenticator

    auth = Authenticator(get_settings())
    if auth.dev_mode:
        raise typer.BadParameter("no tenants configured: development mode needs no tokens")
    try:
        minted, _ = auth.mint(tenant, role, call_id, ttl, subject)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    typer.echo(minted)


def _print_event(event: dict) -> None:
    kind = event["type"]
    if kind == "transcript.final":
        typer.echo(f"[{event['start']:6.2f}s] {event['speaker'].upper():6} {event['text']}")
    elif kind == "transcript.partial":
        typer.secho(f"         ...{event['speaker']:6} {event['text']}", dim=True)
    elif kind == "qa.score":
        card, category = event["scorecard"], event["category"]
        typer.secho(f"QA score {card['score']} ({card['band']}); category {category['primary']} "
                    f"({category['contact']})", bold=True)
        for item in card["gate"] + [i for i in card["items"] if i["result"] == "fail"]:
            typer.echo(f"  x {item['title']}: {item['why']}")
    elif kind == "call.ended":
        typer.secho(f"call ended ({event['reason']}) after {event['duration']:.1f}s: {json.dumps(event['summary'])}",
                    bold=True)
    else:
        body = {k: v for k, v in event.items() if k not in ("call_id", "at", "type", "seq")}
        typer.secho(f"[{event['t']:6.2f}s] {kind}: {json.dumps(body, ensure_ascii=False)[:200]}", fg="cyan")


@app.command()
def replay(
    files: list[Path] = typer.Argument(..., help="A mono/stereo WAV or FLAC (left agent, right debtor), or two files."),
    protocol: str = typer.Option("twilio", help="twilio | genesys | plain"),
    url: str = typer.Option("ws://127.0.0.1:8080"),
    speed: float = typer.Option(1.0, help="1 = real time, 0 = as fast as possible"),
    call_id: str = typer.Option(None),
    follow: bool = typer.Option(True, help="Print the call's live events."),
    api_key: str = typer.Option(None, envvar="RECOBRA_REPLAY_API_KEY",
                                help="Tenant X-API-KEY (plain, genesys) or Twilio auth token (twilio)."),
    client_secret: str = typer.Option(None, envvar="RECOBRA_REPLAY_CLIENT_SECRET",
                                      help="Genesys client secret (base64): sign the upgrade like AudioHook."),
    token: str | None = typer.Option(None, envvar="RECOBRA_REPLAY_TOKEN",
                              help="Access token for following the events (minted here when the settings allow)."),
) -> None:
    """Stream a recording into a running service and print its live events."""
    from assist.democall import load_mono
    from assist.replay import follow as follow_events
    from assist.replay import replay as send
    from streaming.codecs import load_audio, resample
    from streaming.types import SAMPLE_RATE

    if len(files) == 2:
        agent, debtor = load_mono(files[0]), load_mono(files[1])
        n = max(len(agent), len(debtor))
        agent, debtor = np.pad(agent, (0, n - len(agent))), np.pad(debtor, (0, n - len(debtor)))
    elif len(files) == 1:
        audio, rate = load_audio(files[0])
        audio = np.stack([resample(ch, rate, SAMPLE_RATE) for ch in audio])
        agent, debtor = (audio[0], audio[1]) if len(audio) > 1 else (np.zeros_like(audio[0]), audio[0])
    else:
        raise typer.BadParameter("give one stereo/mono file or two files (agent, debtor)")
    call_id = call_id or f"replay-{uuid.uuid4().hex[:8]}"
    token = token or (_local_token(api_key, call_id) if follow else None)

    async def run() -> None:
        sender = asyncio.create_task(send(url, protocol, agent, debtor, SAMPLE_RATE, call_id=call_id, speed=speed,
                                          api_key=api_key, client_secret=client_secret))
        if follow:
            await asyncio.sleep(0.5)
            await follow_events(url, call_id, _print_event, token=token)
        await sender

    asyncio.run(run())


def _local_token(api_key: str | None, call_id: str) -> str | None:
    """An agent token for the call when these settings hold the tenants and token secret."""
    from assist.auth import Authenticator

    auth = Authenticator(get_settings())
    if auth.dev_mode:
        return None
    tenant = auth.by_api_key(api_key) or next(
        (t for t in auth.tenants.values() if api_key and t.twilio_auth_token
         and t.twilio_auth_token.get_secret_value() == api_key), None)
    return auth.mint(tenant.id, "agent", call_id)[0] if tenant else None


@app.command()
def demo(
    protocol: str = typer.Option("twilio"),
    language: str = typer.Option("en", help="en or es: the call's language, sent in its metadata (the service's "
                                 "defaults route English to tiny.en and Spanish to multilingual base)"),
    call: str = typer.Option("collections", help="collections: the scripted collections call spoken by packaged "
                             "TTS voices (English; Spanish streams real recordings); recordings: real FLEURS read "
                             "speech"),
    speed: float = typer.Option(1.0, help="1 = real time"),
) -> None:
    """Start the service, stream a two-speaker call into it, print live events and the QA scorecard."""
    from assist.app import create_app
    from assist.democall import collections_call, collections_metadata, fleurs_call
    from assist.replay import follow as follow_events
    from assist.replay import replay as send
    from streaming.types import SAMPLE_RATE

    s = get_settings()
    configure_logging("WARNING", False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    if call == "collections" and language == "en":
        agent, debtor, _ = collections_call(language)
        metadata = collections_metadata(language)
    elif call in ("collections", "recordings"):
        agent, debtor, _ = fleurs_call(language)
        metadata = {"language": language}
    else:
        raise typer.BadParameter("use collections or recordings", param_hint="--call")
    url = f"ws://127.0.0.1:{port}"

    async def run() -> None:
        server = uvicorn.Server(uvicorn.Config(create_app(s), host="127.0.0.1", port=port, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.1)
        call_id = f"demo-{uuid.uuid4().hex[:8]}"
        typer.secho(f"service up on {url}; streaming a {len(agent) / SAMPLE_RATE:.0f} s call over {protocol}",
                    bold=True)
        typer.echo(f"agent overlay: http://127.0.0.1:{port}/ui/overlay.html?call={call_id}   "
                   f"dashboard: http://127.0.0.1:{port}/ui/dashboard.html")
        sender = asyncio.create_task(send(url, protocol, agent, debtor, SAMPLE_RATE, call_id=call_id, speed=speed,
                                          metadata=metadata))
        await asyncio.sleep(0.5)
        await follow_events(url, call_id, _print_event)
        await sender
        server.should_exit = True
        await serving

    asyncio.run(run())
