"""One frozen settings object, read from THREADLINE_* environment variables.

Every setting is documented in README.md (a test fails otherwise). The
embedded default needs none of them: a SQLite file and a generated secret
key in the data directory, the in-process bus.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

SECRET_KEY_FILE = "secret.key"  # noqa: S105 -- a file name


@dataclasses.dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str


SETTINGS: dict[str, Setting] = {
    s.env: s
    for s in [
        Setting(
            "THREADLINE_DATA_DIR",
            "./threadline-data",
            "Where the SQLite database, the generated secret key and uploaded files live.",
        ),
        Setting(
            "THREADLINE_DATABASE_URL",
            "",
            "SQLAlchemy URL; empty means a SQLite file in the data directory. PostgreSQL: postgresql+asyncpg://user:pass@host/db",
        ),
        Setting(
            "THREADLINE_REDIS_URL",
            "",
            "Redis URL for the bus across processes; empty means the in-process bus.",
        ),
        Setting(
            "THREADLINE_SECRET_KEY",
            "",
            "Key for signing and encrypting secrets; empty means one generated once and kept in the data directory.",
        ),
        Setting("THREADLINE_HOST", "127.0.0.1", "Address `threadline serve` listens on."),
        Setting("THREADLINE_PORT", "8000", "Port `threadline serve` listens on."),
        Setting(
            "THREADLINE_PUBLIC_URL",
            "",
            "The URL users reach the server at; empty means http://HOST:PORT. Its origin is allowed for cookie-authenticated writes.",
        ),
        Setting(
            "THREADLINE_ALLOWED_ORIGINS",
            "",
            "Extra origins (comma-separated) allowed to make cookie-authenticated requests.",
        ),
        Setting(
            "THREADLINE_COOKIE_SECURE",
            "auto",
            "Mark cookies Secure: true, false, or auto (true when PUBLIC_URL is https).",
        ),
        Setting("THREADLINE_SESSION_DAYS", "14", "How long a login session lasts."),
        Setting(
            "THREADLINE_LOGIN_LIMIT",
            "5/300",
            "Login attempts allowed per IP and per account: COUNT/SECONDS.",
        ),
        Setting(
            "THREADLINE_SEARCH_LIMIT",
            "120/60",
            "Searches allowed per account and per IP: COUNT/SECONDS.",
        ),
        Setting(
            "THREADLINE_MESSAGE_LIMIT",
            "200/60",
            "Messages and notes one account or one IP may add to one conversation (widget visitors: to their conversation): COUNT/SECONDS.",
        ),
        Setting("THREADLINE_MAX_BODY_BYTES", "1048576", "Largest JSON request body accepted."),
        Setting(
            "THREADLINE_MAX_UPLOAD_BYTES",
            "10485760",
            "Largest attachment accepted (agents and widget visitors); 413 beyond.",
        ),
        Setting("THREADLINE_LOG_LEVEL", "info", "Log level: debug, info, warning, error."),
        Setting(
            "THREADLINE_MAIL_DOMAIN",
            "",
            "Domain of Threadline's Message-IDs and signed reply addresses (reply+TOKEN@DOMAIN); its MX should point at the SMTP listener. Empty means the public URL's host name.",
        ),
        Setting(
            "THREADLINE_SMTP_LISTEN",
            "",
            "HOST:PORT for the built-in inbound SMTP listener (started by `threadline serve`); empty means off.",
        ),
        Setting(
            "THREADLINE_SMTP_TLS_CERT",
            "",
            "PEM certificate chain the SMTP listener offers STARTTLS with; empty means no STARTTLS.",
        ),
        Setting("THREADLINE_SMTP_TLS_KEY", "", "The PEM private key of THREADLINE_SMTP_TLS_CERT."),
        Setting(
            "THREADLINE_SMTP_URL",
            "",
            "Default outbound SMTP server for inboxes without their own: smtp://[user:pass@]host:port?security=starttls|tls|none. Empty means only inboxes with SMTP settings send mail.",
        ),
        Setting(
            "THREADLINE_EVENT_RETENTION_DAYS",
            "30",
            "How long the event log keeps events; a client resuming from an older point is told to resync.",
        ),
        Setting(
            "THREADLINE_SHUTDOWN_GRACE",
            "10",
            "Seconds a stopping server (SIGTERM) gives requests in flight and websocket clients (closed with 1001) before it cuts them off and exits.",
        ),
        Setting(
            "THREADLINE_WS_SEND_TIMEOUT",
            "10",
            "Seconds a websocket client may leave the server's writes to it untaken before it is disconnected (it reconnects and resumes).",
        ),
    ]
}


@dataclasses.dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str
    secret_key: str
    host: str
    port: int
    public_url: str
    allowed_origins: tuple[str, ...]
    cookie_secure: bool
    session_days: int
    login_limit: int
    login_window_seconds: int
    max_body_bytes: int
    max_upload_bytes: int
    log_level: str
    event_retention_days: int
    mail_domain: str = ""
    smtp_listen: str = ""
    smtp_tls_cert: str = ""
    smtp_tls_key: str = ""
    smtp_url: str = ""
    # (requests, per seconds)
    search_limit: tuple[int, int] = (120, 60)
    message_limit: tuple[int, int] = (200, 60)
    shutdown_grace: float = 10.0
    ws_send_timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str) -> Settings:
        """Read the environment (`overrides` win, keyed by env var name).

        Creates the data directory and, when no key is configured, the
        secret key file inside it (mode 0600), so a restart keeps sessions
        and encrypted secrets valid.
        """
        source = dict(os.environ if env is None else env)
        source.update(overrides)

        def get(name: str) -> str:
            return source.get(name, "") or SETTINGS[name].default

        data_dir = Path(get("THREADLINE_DATA_DIR")).expanduser().resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        database_url = get("THREADLINE_DATABASE_URL") or (
            f"sqlite+aiosqlite:///{data_dir / 'threadline.db'}"
        )
        host = get("THREADLINE_HOST")
        port = _int(get("THREADLINE_PORT"), "THREADLINE_PORT")
        public_url = (get("THREADLINE_PUBLIC_URL") or f"http://{host}:{port}").rstrip("/")
        cookie_secure_raw = get("THREADLINE_COOKIE_SECURE").lower()
        if cookie_secure_raw not in {"auto", "true", "false"}:
            raise ValueError("THREADLINE_COOKIE_SECURE must be auto, true or false")
        cookie_secure = (
            public_url.startswith("https://")
            if cookie_secure_raw == "auto"
            else cookie_secure_raw == "true"
        )
        login_limit = _rate(get("THREADLINE_LOGIN_LIMIT"), "THREADLINE_LOGIN_LIMIT")
        origins = tuple(
            o.strip().rstrip("/") for o in get("THREADLINE_ALLOWED_ORIGINS").split(",") if o.strip()
        )
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            redis_url=get("THREADLINE_REDIS_URL"),
            secret_key=get("THREADLINE_SECRET_KEY") or _stored_secret_key(data_dir),
            host=host,
            port=port,
            public_url=public_url,
            allowed_origins=origins,
            cookie_secure=cookie_secure,
            session_days=_int(get("THREADLINE_SESSION_DAYS"), "THREADLINE_SESSION_DAYS"),
            login_limit=login_limit[0],
            login_window_seconds=login_limit[1],
            search_limit=_rate(get("THREADLINE_SEARCH_LIMIT"), "THREADLINE_SEARCH_LIMIT"),
            message_limit=_rate(get("THREADLINE_MESSAGE_LIMIT"), "THREADLINE_MESSAGE_LIMIT"),
            max_body_bytes=_int(get("THREADLINE_MAX_BODY_BYTES"), "THREADLINE_MAX_BODY_BYTES"),
            max_upload_bytes=_int(
                get("THREADLINE_MAX_UPLOAD_BYTES"), "THREADLINE_MAX_UPLOAD_BYTES"
            ),
            log_level=get("THREADLINE_LOG_LEVEL"),
            event_retention_days=_int(
                get("THREADLINE_EVENT_RETENTION_DAYS"), "THREADLINE_EVENT_RETENTION_DAYS"
            ),
            mail_domain=get("THREADLINE_MAIL_DOMAIN").strip(),
            smtp_listen=get("THREADLINE_SMTP_LISTEN").strip(),
            smtp_tls_cert=get("THREADLINE_SMTP_TLS_CERT"),
            smtp_tls_key=get("THREADLINE_SMTP_TLS_KEY"),
            smtp_url=get("THREADLINE_SMTP_URL").strip(),
            shutdown_grace=_seconds(get("THREADLINE_SHUTDOWN_GRACE"), "THREADLINE_SHUTDOWN_GRACE"),
            ws_send_timeout=_seconds(
                get("THREADLINE_WS_SEND_TIMEOUT"), "THREADLINE_WS_SEND_TIMEOUT"
            ),
        )

    @property
    def public_origin(self) -> str:
        scheme, _, rest = self.public_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"


def _int(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def _rate(raw: str, name: str) -> tuple[int, int]:
    """COUNT/SECONDS, both positive."""
    count, slash, seconds = raw.partition("/")
    if not slash:
        raise ValueError(f"{name} must be COUNT/SECONDS, got {raw!r}")
    limit = (_int(count.strip(), name), _int(seconds.strip(), name))
    if min(limit) < 1:
        raise ValueError(f"{name} must be COUNT/SECONDS with both above 0, got {raw!r}")
    return limit


def _seconds(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 86_400:  # also refuses nan and inf
        raise ValueError(f"{name} must be a number of seconds above 0, got {raw!r}")
    return value


def _stored_secret_key(data_dir: Path) -> str:
    path = data_dir / SECRET_KEY_FILE
    if not path.exists():
        # O_EXCL: two processes starting at once must not each write a key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
