"""Database URLs: parsing into a dialect-neutral form, and masking passwords wherever shown.

A password must never reach output, logs, history rows, reports or file names. Everything that
turns a URL into text goes through :func:`mask_url` or :meth:`DatabaseURL.masked`, and every
message built from a driver error goes through :func:`scrub`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from backout.model.errors import ConfigError

#: scheme → dialect name
SCHEMES: dict[str, str] = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "sqlite": "sqlite",
    "file": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
}

MASK = "***"
# The password runs to the *last* "@" of the URL: one typed without percent-encoding may hold
# "@" or "/" itself, and masking too much is harmless where showing a fragment is not.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][\w+.-]*://[^\s:/@]*:)(?P<pw>\S*)(?P<at>@)")
# password=..., and sslpassword=..., PGPASSWORD=... as well
#: a conninfo value: quoted runs and other non-blank characters up to the first blank
#: or an escaped one (``password=''0``, ``password='a b'c`` and ``password=a\ b`` are one value
#: each, as libpq reads them)
_KV_PASSWORD = re.compile(
    r"(?P<head>\b\w*password\s*=\s*)(?P<pw>(?:'(?:[^'\\]|\\.)*'|\\.|\S)+)",
    re.I,
)


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL. ``str()`` is masked; use :attr:`raw` only to connect."""

    raw: str = field(repr=False)
    dialect: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    #: SQLite: absolute path of the database file (None for ``:memory:``)
    path: Path | None = None
    #: query parameters the driver understands (Prisma-only ones are moved out); not in
    #: repr() because ``?password=`` is one of them
    params: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: PostgreSQL schema from Prisma's ``?schema=`` (None: the server's search_path)
    schema: str | None = None

    def masked(self) -> str:
        """The URL with its password replaced by ``***`` (also one :func:`mask_url` cannot
        find in text, such as one holding a space)."""
        text = mask_url(self.raw)
        for secret in self.secrets:
            text = text.replace(f":{secret}@", f":{MASK}@")
        return text

    def __str__(self) -> str:
        return self.masked()

    def with_database(self, database: str) -> DatabaseURL:
        """The same server, another database (PostgreSQL/MySQL) — used for scratch copies."""
        parts = urlsplit(self.raw)
        new = urlunsplit((parts.scheme, parts.netloc, "/" + quote(database), parts.query, ""))
        return parse_url(new)

    def with_path(self, path: Path) -> DatabaseURL:
        """Another SQLite file."""
        return parse_url(f"sqlite:///{path.resolve()}")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be shown (passwords, raw and URL-encoded).

        Besides the URL's own password, that is any ``password=`` or ``sslpassword=`` query
        parameter, which libpq accepts too.
        """
        found = [self.password] if self.password else []
        query = urlsplit(self.raw).query if "://" in self.raw else ""
        found += [v for k, v in parse_qsl(query) if k.lower().endswith("password") and v]
        return tuple({s for secret in found for s in (secret, quote(secret, safe=""))})


def mask_url(text: str) -> str:
    """Replace the password in every URL or ``password=`` pair within ``text``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['at']}", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask URLs in ``text`` and remove any literal occurrence of the given secrets."""
    text = mask_url(text)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text


_PRISMA_ONLY_PARAMS = frozenset(
    {
        "schema",
        "connection_limit",
        "pool_timeout",
        "pgbouncer",
        "socket_timeout",
        "statement_cache_size",
        "sslidentity",
        "sslpassword",
        "sslaccept",
        "single_use_connections",
    }
)


def parse_url(raw: str, *, base_dir: Path | None = None) -> DatabaseURL:
    """Parse a database URL. Relative SQLite paths are resolved against ``base_dir``.

    Accepts ``postgresql://``/``postgres://``, ``sqlite:///relative.db``,
    ``sqlite:////absolute.db``, Prisma's ``file:./dev.db``, and ``mysql://``/``mariadb://``.
    """
    raw = raw.strip()
    base = base_dir or Path.cwd()
    scheme = raw.split(":", 1)[0].lower() if ":" in raw else ""
    dialect = SCHEMES.get(scheme)
    if dialect is None:
        known = ", ".join(sorted({f"{s}://" for s in SCHEMES if s != "file"} | {"file:"}))
        # repeated masked only when a password in it would be found: after "://", or none
        if "://" in raw or ":" not in raw:
            shown = f" {mask_url(raw)!r}"
        else:
            shown = f" ({scheme}:)" if scheme.isalnum() else ""
        raise ConfigError(f"unsupported database URL{shown}: expected one of {known}")
    if dialect == "sqlite":
        return _parse_sqlite(raw, scheme, base)
    parts = urlsplit(raw)
    _check_authority(raw, scheme, parts.netloc)
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid port in database URL {mask_url(raw)!r}") from exc
    database = unquote(parts.path.lstrip("/")) or None
    params: list[tuple[str, str]] = []
    schema: str | None = None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            schema = value or None
        elif key not in _PRISMA_ONLY_PARAMS:
            params.append((key, value))
    return DatabaseURL(
        raw=raw,
        dialect=dialect,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        # ``?password=`` (libpq accepts it) counts as the password where user-info has none,
        # so every dialect connects with it and keeps it off client programs' command lines.
        password=unquote(parts.password)
        if parts.password is not None
        else dict(params).get("password"),
        database=database,
        params=tuple(params),
        schema=schema,
    )


def _check_authority(raw: str, scheme: str, netloc: str) -> None:
    """ConfigError (the URL not repeated) when the URL is not ``scheme://…``, or when its user
    or password holds an unencoded ``@``, ``/``, ``?`` or ``#``: Python and libpq would split it
    differently, connect somewhere else, and echo a piece of the password in their errors."""
    if not raw[len(scheme) :].startswith("://"):
        raise ConfigError(
            f"invalid database URL: expected {scheme}:// then the user, password, host, port "
            "and database"
        )
    authority = raw[len(scheme) + 3 :].split("?", 1)[0]
    if authority.count("@") > 1 or ("@" in authority and "@" not in netloc):
        raise ConfigError(
            "invalid database URL: its user or password holds an unencoded @, /, ? or # "
            "(percent-encode them: %40, %2F, %3F, %23)"
        )


def _parse_sqlite(raw: str, scheme: str, base: Path) -> DatabaseURL:
    if scheme == "file":
        # Prisma: file:./dev.db, file:dev.db or file:/abs/dev.db, optionally with ?params
        target = raw[len("file:") :].split("?", 1)[0]
        if target.startswith("//"):
            target = target[2:]
    else:
        rest = raw[len(scheme) + 1 :]
        if not rest.startswith("///"):
            raise ConfigError(
                f"invalid SQLite URL {raw!r}: use sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        target = rest[3:].split("?", 1)[0]
    target = unquote(target)
    if not target:
        raise ConfigError(f"invalid SQLite URL {raw!r}: no file name")
    if target == ":memory:":
        return DatabaseURL(raw=raw, dialect="sqlite", path=None, database=":memory:")
    path = Path(target)
    if not path.is_absolute():
        path = (base / path).resolve()
    return DatabaseURL(raw=raw, dialect="sqlite", path=path, database=str(path))


def with_params(url: DatabaseURL, **params: str) -> str:
    """Raw URL string with extra query parameters (for drivers)."""
    parts = urlsplit(url.raw)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote), "")
    )
