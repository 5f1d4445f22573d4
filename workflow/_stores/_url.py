"""``store_from_url``: one string (a CLI flag, an env var) picks and configures a store."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from workflow._checkpoint import CheckpointStore

from ._common import StoreUsageError
from ._file import FileCheckpointStore
from ._memory import InMemoryCheckpointStore
from ._postgres import PostgresCheckpointStore
from ._postgres_db import redact
from ._sqlite import SQLiteCheckpointStore

__all__ = ("store_from_url",)

_FORMS = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db "
    "(optionally ?synchronous=NORMAL), file:///absolute/dir, file://relative/dir, "
    "postgresql://user@host:port/db (or postgres://; optionally ?schema=NAME)"
)


def store_from_url(url: str) -> CheckpointStore:
    """Build the store ``url`` names; creating it does no I/O.

    URLs follow SQLAlchemy's convention for SQLite: three slashes then a relative path, four
    for an absolute one.

    Raises:
        StoreUsageError: an unknown scheme or a malformed URL (a ``CheckpointError`` and a
            ``ValueError``); the message lists the accepted forms.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise StoreUsageError(f"not a store URL: {url!r}; use one of: {_FORMS}")
    if scheme == "memory":
        if rest.strip("/"):
            raise StoreUsageError(f"memory:// takes no path, got {url!r}")
        return InMemoryCheckpointStore()
    if scheme == "sqlite":
        path, _, query = rest.partition("?")
        if not path.startswith("/") or path in ("/", "/:memory:"):
            raise StoreUsageError(
                f"bad SQLite URL {url!r}: expected sqlite:///relative.db or sqlite:////abs.db "
                "(use memory:// for a store in memory)"
            )
        options = dict(parse_qsl(query, strict_parsing=bool(query)))
        synchronous = options.pop("synchronous", "FULL").upper()
        if options:
            raise StoreUsageError(f"unknown SQLite URL options {sorted(options)} in {url!r}")
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise StoreUsageError(f"synchronous must be FULL, NORMAL or EXTRA in {url!r}")
        return SQLiteCheckpointStore(path[1:], synchronous=synchronous)  # type: ignore[arg-type]
    if scheme == "file":
        if not rest or rest == "/" or "?" in rest:
            raise StoreUsageError(
                f"bad file URL {url!r}: expected file:///abs/dir or file://rel/dir"
            )
        return FileCheckpointStore(rest)
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        parts = urlsplit("postgresql://" + rest)
        pairs = parse_qsl(parts.query)
        kept = urlencode([(k, v) for k, v in pairs if k != "schema"])
        dsn = urlunsplit(parts._replace(query=kept))
        schemas = [v for k, v in pairs if k == "schema"]
        if schemas:
            return PostgresCheckpointStore(dsn, schema=schemas[-1])
        return PostgresCheckpointStore(dsn)
    # A mistyped scheme (postgress://) still carries the password: never echo it.
    raise StoreUsageError(
        f"unknown store URL scheme {scheme!r} in {redact(url)!r}; use one of: {_FORMS}"
    )
