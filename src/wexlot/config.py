"""Settings: one typed, documented object, built explicitly and passed in (never a module global).

Each field carries its default, help text and ``WEXLOT_*`` environment name in its metadata, so the
CLI's ``--help`` and the README table are generated from, and tested against, this one place.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRET_FILE = "jwt-secret"
MIN_SECRET_LENGTH = 32
PLACEHOLDER_SECRETS = {
    "changethis",
    "changeme",
    "secret",
    "your-super-secret-jwt-token-with-at-least-32-characters-long",
}


class ConfigError(Exception):
    """A setting has a value the server refuses to run with."""


def setting(default: Any, env: str, help: str) -> Any:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    data_dir: str = setting("./wexlot-data", "WEXLOT_DATA_DIR", "Directory for the SQLite database and secrets.")
    database_url: str = setting(
        "",
        "WEXLOT_DATABASE_URL",
        "sqlite:///<data dir>/wexlot.db by default; postgresql://… selects PostgreSQL.",
    )
    host: str = setting("127.0.0.1", "WEXLOT_HOST", "Address to listen on (0.0.0.0 serves the LAN).")
    port: int = setting(54321, "WEXLOT_PORT", "TCP port to listen on.")
    jwt_secret: str = setting(
        "",
        "WEXLOT_JWT_SECRET",
        "HS256 secret for tokens and API keys; generated into the data dir when unset.",
    )
    jwt_expiry: int = setting(3600, "WEXLOT_JWT_EXPIRY", "Access-token lifetime in seconds.")
    public_url: str = setting(
        "",
        "WEXLOT_PUBLIC_URL",
        "URL other machines use (JWT issuer, printed keys); default http://HOST:PORT.",
    )
    trusted_proxies: str = setting(
        "",
        "WEXLOT_TRUSTED_PROXIES",
        "Comma-separated proxy addresses whose X-Forwarded-* headers are believed.",
    )
    signup_enabled: bool = setting(
        False, "WEXLOT_SIGNUP_ENABLED", "Allow self sign-up on /auth/v1/signup (off: admins invite staff)."
    )
    max_body_bytes: int = setting(10 * 1024 * 1024, "WEXLOT_MAX_BODY_BYTES", "Largest accepted request body.")
    max_rows: int = setting(1000, "WEXLOT_MAX_ROWS", "Most rows one REST read returns (PostgREST db-max-rows).")
    realtime_retention_seconds: int = setting(
        604800, "WEXLOT_REALTIME_RETENTION", "Seconds of change history kept for catch-up after a reconnect."
    )
    realtime_max_connections: int = setting(
        20000, "WEXLOT_REALTIME_MAX_CONNECTIONS", "Most concurrent realtime WebSocket connections."
    )
    realtime_outbox_bytes: int = setting(
        16 * 1024 * 1024,
        "WEXLOT_REALTIME_OUTBOX_BYTES",
        "Bytes queued for one realtime client before it counts as stalled.",
    )
    realtime_stall_seconds: int = setting(
        10, "WEXLOT_REALTIME_STALL_SECONDS", "How long a realtime client may stay stalled before it is disconnected."
    )
    realtime_max_channels: int = setting(
        100, "WEXLOT_REALTIME_MAX_CHANNELS", "Most channels one realtime connection may join."
    )
    realtime_max_joins_per_second: int = setting(
        100, "WEXLOT_REALTIME_MAX_JOINS_PER_SECOND", "Most channel joins per second on one connection."
    )
    realtime_max_events_per_second: int = setting(
        100,
        "WEXLOT_REALTIME_MAX_EVENTS_PER_SECOND",
        "Most broadcast/presence messages per second from one connection (database changes are never limited).",
    )
    realtime_max_payload_bytes: int = setting(
        3_000 * 1024, "WEXLOT_REALTIME_MAX_PAYLOAD_BYTES", "Largest broadcast or presence payload, in bytes."
    )
    log_format: str = setting("text", "WEXLOT_LOG_FORMAT", "Server log format: text or json (one object per line).")
    node_id: str = setting("node1", "WEXLOT_NODE_ID", "Name of this server node (one replication slot per node).")

    @classmethod
    def fields(cls) -> list[dataclasses.Field[Any]]:
        return list(dataclasses.fields(cls))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``WEXLOT_*`` variables, then explicit overrides (CLI options) that are not None."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in cls.fields():
            raw = environ.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _cast(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    # Derived values -------------------------------------------------------------------------------

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_path / 'wexlot.db'}"

    @property
    def is_postgres(self) -> bool:
        return self.db_url.startswith(("postgresql", "postgres:"))

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def proxies(self) -> set[str]:
        return {p.strip() for p in self.trusted_proxies.split(",") if p.strip()}

    def with_secret(self) -> Settings:
        """Return settings whose ``jwt_secret`` is set: the configured one, or the data dir's file.

        The file is created once with mode 0600. Placeholder or short secrets are refused, because
        every API key and session is only as strong as this value.
        """
        secret = self.jwt_secret or self._secret_from_file()
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"WEXLOT_JWT_SECRET is a placeholder or shorter than {MIN_SECRET_LENGTH} characters; "
                "unset it to have one generated, or set a long random value"
            )
        return dataclasses.replace(self, jwt_secret=secret)

    @property
    def secret_path(self) -> Path:
        return self.data_path / SECRET_FILE

    def _secret_from_file(self) -> str:
        path = self.secret_path
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
        return secret


def _cast(f: dataclasses.Field[Any], raw: str) -> Any:
    kind = f.type if isinstance(f.type, type) else {"int": int, "bool": bool, "str": str}[str(f.type)]
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{f.metadata['env']} must be true or false, not {raw!r}")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{f.metadata['env']} must be a whole number, not {raw!r}") from None
    return raw
