"""The connection: one engine per database URL, sessions as atomic units of work.

SQLite (the default home) and PostgreSQL (the scale path) run the same code; the differences
are confined to `_open_engine`: SQLite needs foreign keys switched on per connection, and
PostgreSQL may be asked to keep the tables in a named schema. The tables themselves come from
the alembic revisions, applied by `db.migrate` when a Database opens.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db.migrate import SchemaStateError, ensure_head, migrate, revision_of

# psycopg waits forever on a host that drops packets; a bounded wait turns it into an error.
_CONNECT_TIMEOUT_S = 10
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Pauses between attempts to switch a new SQLite file to WAL; None: give up and raise.
_WAL_RETRY_WAITS_S = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, None)


class DatabaseError(Exception):
    """The database could not be opened or a unit of work failed; the message names the URL
    (password masked) and what to do about it."""


def mask_url(url: str | URL) -> str:
    """The URL as a string with its password replaced by `***`, safe to print or log."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Unparseable, so mask anything between "user:" and "@" by pattern.
        return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", url)
    # Rendering re-escapes the database part (":memory:" -> "%3Amemory%3A"), so only when needed.
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection SQLite settings: SQLite ignores ON DELETE CASCADE unless foreign keys are
    on, and WAL lets readers (the API) run while the rebuild job writes."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return  # WAL is a property of the file: set once, by its first opener
        for wait_s in _WAL_RETRY_WAITS_S:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                # Two first openers of a new file: switching needs an exclusive lock, and SQLite
                # answers "locked" at once, without waiting, to the one that would deadlock.
                if "locked" not in str(exc) or wait_s is None:
                    raise
                time.sleep(wait_s)
    finally:
        cursor.close()


def _open_engine(url: str, *, echo: bool, schema: str | None) -> Engine:
    """An engine for `url` with the per-backend connection settings; connects to nothing yet."""
    masked = mask_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(
            f"database URL {masked!r} is malformed ({exc}); expected e.g. "
            "'sqlite:///path/regen.db' or 'postgresql+psycopg://user@host:5432/dbname'"
        ) from exc
    backend = parsed.get_backend_name()
    if schema is not None and backend != "postgresql":
        raise DatabaseError(
            f"schema={schema!r} was given for {masked!r}; schemas are only supported on "
            "PostgreSQL, drop the schema argument or use a postgresql+psycopg:// URL"
        )
    connect_args: dict[str, Any] = {}
    if backend == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
    if parsed.get_driver_name() == "psycopg" and "prepare_threshold" not in parsed.query:
        # psycopg prepares a statement after 5 runs, and PostgreSQL's generic plan for the
        # batched `key IN ($1..$900)` lookups compares every row with every parameter
        # (0.5 s per batch at 20k records, against 5 ms when planned with the values).
        connect_args["prepare_threshold"] = None
    if schema is not None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise DatabaseError(
                f"schema name {schema!r} for {masked!r} is not a plain identifier; use "
                "letters, digits and underscores, starting with a letter or underscore"
            )
        # A libpq startup option rather than a SET: every pooled connection has it from the
        # start, and no rollback or pool reset can undo it.
        connect_args["options"] = f"-csearch_path={schema}"
    try:
        engine = create_engine(parsed, echo=echo, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(
            f"no driver for database URL {masked!r} ({exc}); for PostgreSQL install it "
            "with: pip install 'regen[postgres]' and use a postgresql+psycopg:// URL"
        ) from exc
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _read_only_sqlite(url: str) -> str | None:
    """For an existing SQLite file on a read-only folder or file system (a read-only home): a URL
    opening it read-only and immutable, so SQLite needs no -wal/-shm files or locks and readers
    (reports with no log, `regen logs`) keep working. None for any other database."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" \
            or path.startswith("file:") or not os.path.isfile(path):
        return None
    folder = os.path.dirname(os.path.abspath(path))
    if os.access(folder, os.W_OK) and os.access(path, os.W_OK):
        return None
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro&immutable=1"
    return str(parsed.set(database=uri, query={**parsed.query, "uri": "true"}))


def _sqlite_read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


@contextlib.contextmanager
def _migration_errors(engine: Engine, masked: str) -> Iterator[None]:
    """Turns what can go wrong while reading or migrating the schema into DatabaseError."""
    try:
        yield
    except SchemaStateError as exc:
        engine.dispose()
        raise DatabaseError(f"database {masked!r}: {exc}") from exc
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DatabaseError(
            f"cannot open database {masked!r}: {reason}; check that the server is "
            "running and reachable, that the database exists and the user may create tables "
            "in it (for SQLite: that the folder exists and is writable)"
        ) from exc


def upgrade(url: str, revision: str = "head", *, schema: str | None = None) -> str | None:
    """Migrate the database at `url` up to `revision` (default: HEAD_REVISION); returns the
    revision it is at afterwards. A database made before migrations existed is adopted first.

    `Database(url)` already does this for "head"; this is for upgrading ahead of time (e.g. a
    `regen db upgrade` command) or to an intermediate revision. DatabaseError as for Database,
    and for an unknown revision or a database newer than this code.
    """
    engine = _open_engine(url, echo=False, schema=schema)
    with _migration_errors(engine, mask_url(url)):
        result = migrate(engine, revision, schema=schema)
    engine.dispose()
    return result


def downgrade(url: str, revision: str, *, schema: str | None = None) -> str | None:
    """Migrate the database at `url` down to `revision` (an id, or "base" to drop every regen
    table, data included); returns the revision it is at afterwards (None for base)."""
    engine = _open_engine(url, echo=False, schema=schema)
    with _migration_errors(engine, mask_url(url)):
        result = migrate(engine, revision, schema=schema, downgrade=True)
    engine.dispose()
    return result


def current_revision(url: str, *, schema: str | None = None) -> str | None:
    """The schema revision of the database at `url`, or None when it has no alembic_version
    table (empty, or made before migrations existed). Changes nothing."""
    engine = _open_engine(url, echo=False, schema=schema)
    with _migration_errors(engine, mask_url(url)), engine.connect() as conn:
        result = revision_of(conn)
    engine.dispose()
    return result


class Database:
    """A database at `url`, migrated to HEAD_REVISION if it is not there yet.

    `url` is an SQLAlchemy URL, e.g. `sqlite:///home/regen.db` or
    `postgresql+psycopg://user:pw@host:5432/regen`. `schema` (PostgreSQL with a libpq driver,
    i.e. psycopg or psycopg2) keeps every table in that schema, created if missing, which lets
    several homes or test runs share one database.
    Opening a database already at head costs one read. Otherwise the schema is created or
    upgraded (see `db.migrate`): concurrent openers of the same new database wait for one
    another and migrate it once, and a database made by `create_all` before migrations existed
    is adopted as revision 0001 and upgraded.
    Raises DatabaseError when the URL is malformed, its driver is missing, the server cannot
    be reached, or the schema cannot be migrated (e.g. it is newer than this code).
    """

    def __init__(self, url: str, *, echo: bool = False, schema: str | None = None) -> None:
        self._url = mask_url(url)
        read_only = _read_only_sqlite(url)
        if read_only is None:
            self._engine = _open_engine(url, echo=echo, schema=schema)
        else:  # nothing can be written: reads work, a write fails as one DatabaseError
            self._engine = create_engine(read_only, echo=echo)
            event.listen(self._engine, "connect", _sqlite_read_only_pragmas)
        self._schema = schema
        self._sessions = sessionmaker(bind=self._engine, expire_on_commit=False)
        with _migration_errors(self._engine, self._url):
            ensure_head(self._engine, schema=schema)

    @property
    def url(self) -> str:
        """The URL with its password masked."""
        return self._url

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema holding the tables, or None for the default."""
        return self._schema

    @property
    def engine(self) -> Engine:
        """The engine, for migrations and maintenance."""
        return self._engine

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back everything if it raises.

        Objects loaded inside stay readable after the block (they are not expired on commit).
        Database failures are re-raised as DatabaseError; other exceptions pass through as-is.
        """
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except SQLAlchemyError as exc:
                session.rollback()
                reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
                raise DatabaseError(
                    f"database {self._url!r}: {reason}; nothing from this unit of work was saved"
                ) from exc
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        """Close every pooled connection; the Database can still open new ones afterwards."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self._url!r})"
