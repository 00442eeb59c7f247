"""`threadline serve | worker | migrate | create-admin | demo | mail-sink`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import logging
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypedDict

import uvicorn

from server.actions.agents import do_create_agent
from server.actions.context import perform
from server.actions.workspaces import do_create_workspace
from server.app import create_app
from server.demo import (
    DEMO_ADMIN_EMAIL,
    DEMO_AGENTS,
    DEMO_PASSWORD,
    DEMO_SUPPORT_ADDRESS,
    allow_demo_site,
    ensure_demo_workspace,
)
from server.demo_shop import shop_app
from server.domain.actors import system_actor
from server.domain.errors import DomainError
from server.domain.values import Role
from server.mail_sink import MailSink, default_sink_dir, run_mail_sink
from server.realtime.protocol import MAX_FRAME_BYTES
from server.runtime import Runtime
from server.serving import ThreadlineServer, WebSocketProtocol
from server.settings import Settings
from server.storage.migrate import upgrade_to_head
from server.workers.background import background_workers
from server.workers.runner import WorkerHost

log = logging.getLogger("threadline")


class WebsocketOptions(TypedDict):
    ws: type[asyncio.Protocol]
    ws_max_size: int
    ws_per_message_deflate: bool
    ws_ping_interval: float
    ws_ping_timeout: float


# How `serve` runs websockets (PROTOCOLS.md P2); the live tests use the same.
WEBSOCKET_OPTIONS: WebsocketOptions = {
    # uvicorn's websockets-sansio, the fastest of its implementations on
    # Threadline's own fan-out (bench/RESULTS.md: wsproto 0.80x, legacy
    # websockets 0.59x of it), with what restarts need (server.serving).
    "ws": WebSocketProtocol,
    "ws_max_size": MAX_FRAME_BYTES,  # larger frames: close 1009
    # Compression costs ~35 KB per connection (bench/RESULTS.md) and chat
    # frames are small, so it stays off.
    "ws_per_message_deflate": False,
    "ws_ping_interval": 20.0,
    "ws_ping_timeout": 20.0,
}


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "host", None):
        overrides["THREADLINE_HOST"] = args.host
    if getattr(args, "port", None):
        overrides["THREADLINE_PORT"] = str(args.port)
    return Settings.from_env(**overrides)


class _SecondServer(uvicorn.Server):
    """A second uvicorn server in the process (the demo shop): the main
    server owns the signal handlers and stops this one when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def demo_shop_url(settings: Settings) -> str:
    """Where the demo shop is served: the server's public host, next port
    (another origin, as a customer's site would be)."""
    rest = settings.public_origin.partition("://")[2]
    host = rest if rest.endswith("]") else rest.rsplit(":", 1)[0]
    return f"http://{host}:{settings.port + 1}"


def _bind(host: str, port: int) -> socket.socket | None:
    """A listening socket, or None if the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        log.warning("demo shop not started: %s:%s: %s", host, port, exc)
        return None
    sock.listen(100)
    sock.setblocking(False)
    return sock


async def _demo_shop(
    settings: Settings, runtime: Runtime
) -> tuple[bool, tuple[_SecondServer, socket.socket, str] | None]:
    """Ensure the demo workspace; prepare the shop that embeds its widget.
    Returns (created, (server, socket, url) or None)."""
    made = await ensure_demo_workspace(runtime)
    if made.widget_public_token is None:
        return made.created, None
    url = demo_shop_url(settings)
    await allow_demo_site(runtime, made, url)
    sock = _bind(settings.host, settings.port + DEMO_SHOP_OFFSET)
    if sock is None:
        return made.created, None
    app = shop_app(settings.public_url, made.widget_public_token, made.widget_secret)
    config = uvicorn.Config(app, lifespan="off", log_level=settings.log_level, server_header=False)
    return made.created, (_SecondServer(config), sock, url)


async def _serve(
    settings: Settings, *, migrate: bool, demo: bool, sent_mail: Path | None = None
) -> None:
    if migrate:
        await upgrade_to_head(settings.database_url, settings.secret_key)
    runtime = Runtime.create(settings)
    try:
        shop = None
        if demo:
            created, shop = await _demo_shop(settings, runtime)
            _print_demo_banner(
                settings,
                created=created,
                shop_url=shop[2] if shop else None,
                sent_mail=sent_mail,
            )
        app = create_app(runtime)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            **WEBSOCKET_OPTIONS,
            log_level=settings.log_level,
            server_header=False,
        )
        workers = WorkerHost(
            background_workers(runtime, smtp_listener=True), grace=settings.shutdown_grace
        )
        loop = asyncio.get_running_loop()
        shop_task = loop.create_task(shop[0].serve(sockets=[shop[1]])) if shop else None
        try:
            # The HTTP side stops first (it owns the signals), then the workers.
            async with workers:
                # manage_heap: the start-up heap and the sockets' state frozen,
                # for short full collections (server.heap).
                server = ThreadlineServer(
                    config, app.state.hub, settings.shutdown_grace, manage_heap=True
                )
                await server.serve()
        finally:
            if shop is not None and shop_task is not None:
                shop[0].should_exit = True
                await shop_task
                shop[1].close()
    finally:
        await runtime.close()


async def _work(settings: Settings, *, migrate: bool) -> None:
    """`threadline worker`: the background workers without HTTP, until
    SIGTERM or SIGINT (then they stop within the shutdown grace, exit 0)."""
    if migrate:
        await upgrade_to_head(settings.database_url, settings.secret_key)
    runtime = Runtime.create(settings)
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        workers = background_workers(runtime, smtp_listener=False)
        async with WorkerHost(workers, grace=settings.shutdown_grace):
            log.info("running workers: %s", ", ".join(w.name for w in workers))
            await stop.wait()
    finally:
        await runtime.close()


WORKER_HELP = (
    "Run the background work without HTTP: email delivery, IMAP polling, chat "
    "continuity, scheduled jobs (snoozes waking) and event-log pruning. `serve` runs "
    "these too; start several `worker` processes on one database to share the load "
    "(jobs and outgoing mail are claimed in the database; the other rounds are safe to "
    "repeat). The "
    "SMTP listener (THREADLINE_SMTP_LISTEN) binds a port, so only `serve` runs it. "
    "Stops on SIGTERM or SIGINT within THREADLINE_SHUTDOWN_GRACE seconds, exit code 0."
)


# The demo's ports, relative to the server's (--port / THREADLINE_PORT).
DEMO_SHOP_OFFSET = 1
DEMO_SMTP_IN_OFFSET = 25
DEMO_SINK_OFFSET = 26
DEMO_HELP = (
    "Serve with a demo workspace (created on first run). Ports, counted from the "
    "server's PORT (--port, THREADLINE_PORT, default 8000): PORT the server and inbox, "
    f"PORT+{DEMO_SHOP_OFFSET} a demo shop embedding the chat widget, "
    f"PORT+{DEMO_SMTP_IN_OFFSET} SMTP for incoming mail (THREADLINE_SMTP_LISTEN overrides), "
    f"PORT+{DEMO_SINK_OFFSET} on 127.0.0.1 a built-in mail sink that receives the demo's "
    "outgoing mail (a free port if that one is taken; not started when THREADLINE_SMTP_URL "
    "is set) and saves each mail in the data directory's sent-mail/ folder."
)


def demo_mail_defaults(settings: Settings) -> Settings:
    """The demo receives mail on its own SMTP listener (port + 25, unless
    THREADLINE_SMTP_LISTEN says otherwise)."""
    return dataclasses.replace(
        settings,
        smtp_listen=settings.smtp_listen
        or f"{settings.host}:{settings.port + DEMO_SMTP_IN_OFFSET}",
    )


async def _start_demo_sink(settings: Settings) -> MailSink:
    """The mail sink the demo sends to: port + 26 on loopback, or any free
    port when that one is taken (a second demo, another program)."""
    directory = default_sink_dir(settings.data_dir)
    try:
        sink = MailSink("127.0.0.1", settings.port + DEMO_SINK_OFFSET, directory)
        await sink.start()
    except OSError as exc:
        log.warning(
            "mail sink port %s taken (%s): using a free one", settings.port + DEMO_SINK_OFFSET, exc
        )
        sink = MailSink("127.0.0.1", 0, directory)
        await sink.start()
    return sink


async def _demo(settings: Settings) -> None:
    """`threadline demo`: the server, the demo shop and, unless
    THREADLINE_SMTP_URL names a mail server, a mail sink in this process
    that the demo's replies are delivered to (nothing else to start)."""
    settings = demo_mail_defaults(settings)
    if settings.smtp_url:
        await _serve(settings, migrate=True, demo=True)
        return
    sink = await _start_demo_sink(settings)
    try:
        await _serve(
            dataclasses.replace(settings, smtp_url=f"smtp://127.0.0.1:{sink.port}?security=none"),
            migrate=True,
            demo=True,
            sent_mail=sink.directory,
        )
    finally:
        await sink.stop()


def _print_demo_banner(
    settings: Settings, *, created: bool, shop_url: str | None, sent_mail: Path | None
) -> None:
    agents = ", ".join(email for email, _ in DEMO_AGENTS)
    shop = f"  Shop:     {shop_url}/ (a demo site with the chat widget)\n" if shop_url else ""
    out = (
        f"saved in {sent_mail}/ (built-in mail sink, {settings.smtp_url})"
        if sent_mail is not None
        else settings.smtp_url
    )
    mail = (
        f"  Mail in:  SMTP {settings.smtp_listen}, to {DEMO_SUPPORT_ADDRESS}\n  Mail out: {out}\n"
        if settings.smtp_listen
        else ""
    )
    print(
        "\n"
        "  Threadline demo " + ("created" if created else "already set up") + "\n"
        f"  Server:   {settings.public_url}/\n"
        f"{shop}"
        f"{mail}"
        f"  API docs: {settings.public_url}/api/v1/openapi.json\n"
        f"  Login:    {DEMO_ADMIN_EMAIL} / {DEMO_PASSWORD}\n"
        f"  Agents:   {agents} (same password)\n"
        f"  Data in:  {settings.data_dir}\n",
        flush=True,
    )


async def _create_admin(
    settings: Settings, email: str, name: str, password: str, workspace: str
) -> int:
    await upgrade_to_head(settings.database_url, settings.secret_key)
    runtime = Runtime.create(settings)
    try:
        ws = await perform(runtime, system_actor(0), do_create_workspace, name=workspace)
        return await perform(
            runtime,
            system_actor(ws),
            do_create_agent,
            email=email,
            name=name,
            password=password,
            role=Role.ADMIN,
        )
    finally:
        await runtime.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise SystemExit("no terminal to ask for a password: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("passwords differ")
    return first


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="threadline", description="Threadline: one inbox for every channel."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="run the server and every worker (migrates the database first)"
    )
    serve.add_argument("--host", help="listen address (THREADLINE_HOST)")
    serve.add_argument("--port", type=int, help="listen port (THREADLINE_PORT)")
    serve.add_argument(
        "--no-migrate", action="store_true", help="don't upgrade the schema at start"
    )

    worker = sub.add_parser(
        "worker", help="run the background work without HTTP", description=WORKER_HELP
    )
    worker.add_argument(
        "--no-migrate", action="store_true", help="don't upgrade the schema at start"
    )

    sub.add_parser("migrate", help="upgrade the database schema to the newest version")

    admin = sub.add_parser("create-admin", help="create a workspace and its first admin")
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", required=True)
    admin.add_argument("--workspace", default="My workspace", help="name of the new workspace")
    admin.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    demo = sub.add_parser(
        "demo", help="serve with a demo workspace (created on first run)", description=DEMO_HELP
    )
    demo.add_argument("--host", help="listen address (THREADLINE_HOST)")
    demo.add_argument("--port", type=int, help="listen port (THREADLINE_PORT)")

    sink = sub.add_parser("mail-sink", help="a local SMTP server that shows every mail sent to it")
    sink.add_argument("--host", default="127.0.0.1")
    sink.add_argument("--mail-port", type=int, default=1025, help="port to listen on")
    sink.add_argument(
        "--dir",
        help="where to save the .eml files (default: sent-mail/ in the data directory, "
        "THREADLINE_DATA_DIR)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aiosmtpd logs every SMTP command at INFO: our own lines say what matters.
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, logging.root.level))
    # Alembic narrates every migration step at INFO ("Context impl...",
    # "Running upgrade..."): a dozen lines that push the demo's banner off
    # screen and say nothing when all is well. Shown at debug.
    if logging.root.level > logging.DEBUG:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            asyncio.run(_serve(settings, migrate=not args.no_migrate, demo=False))
        elif args.command == "worker":
            asyncio.run(_work(settings, migrate=not args.no_migrate))
        elif args.command == "demo":
            asyncio.run(_demo(settings))
        elif args.command == "mail-sink":
            directory = Path(args.dir) if args.dir else default_sink_dir(settings.data_dir)
            asyncio.run(run_mail_sink(args.host, args.mail_port, directory))
        elif args.command == "migrate":
            asyncio.run(upgrade_to_head(settings.database_url, settings.secret_key))
            print(f"database at head: {settings.database_url}")
        elif args.command == "create-admin":
            password = _read_password(args.password_stdin)
            agent_id = asyncio.run(
                _create_admin(settings, args.email, args.name, password, args.workspace)
            )
            print(f"created admin {args.email} (agent {agent_id}) in workspace {args.workspace!r}")
    except DomainError as exc:
        where = f" ({exc.field})" if exc.field else ""
        raise SystemExit(f"error{where}: {exc.message}") from None
    except KeyboardInterrupt:
        pass
