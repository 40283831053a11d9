"""Schema migrations: bring a database to the schema this code expects, one process at a time.

The revisions are alembic scripts in `db/migrations/versions`, configured here in code, so
nothing depends on the working directory or an ini file. Every migration runs in one
transaction that also holds a lock, and re-reads the revision once it has the lock, so two
processes opening the same new database migrate it once:

- PostgreSQL: DDL is transactional; a transaction-scoped advisory lock keyed by the schema
  serialises migrators, and creating the schema happens under it.
- SQLite: a dedicated connection on which SQLAlchemy, not the sqlite3 module, emits the BEGIN,
  so the DDL is inside the transaction too, and the BEGIN is IMMEDIATE: it takes the write lock
  before reading the revision. Foreign keys are off on that connection because batch mode
  rebuilds a table by drop-and-rename, which would otherwise cascade into its children; a
  foreign key check before the commit catches what that could let through.

A database made by `create_all` before migrations existed has every table of revision 0001 and
no alembic_version table; it is stamped 0001 and then upgraded like any other.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:    # alembic loads only to migrate: opening a database at head never needs it
    from alembic.config import Config
    from alembic.script import ScriptDirectory

HEAD_REVISION = "0003"
"""The newest revision this code knows; `Database` brings every database it opens to it."""

BASELINE_REVISION = "0001"
_BASELINE_TABLES = frozenset(
    {"build_members", "generation_logs", "index_builds", "labels", "records", "reports"}
)
_SCRIPTS = Path(__file__).resolve().parent / "migrations"
# How long a SQLite migrator waits for another one (or a long write) to finish.
_SQLITE_LOCK_TIMEOUT_S = 300


class SchemaStateError(Exception):
    """The database's schema is in a state no migration can start from, or the revision asked
    for does not exist; the message says which and what to do."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config for the regen revisions; with `connection`, env.py migrates on it
    (inside the caller's transaction) instead of opening its own engine."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def revision_of(connection: Connection) -> str | None:
    """The revision the database is at, or None when it has no alembic_version table (empty,
    or made by `create_all` before migrations). Read with SQL, as alembic stores it, so that
    opening a database already at head does not import alembic."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(found) > 1:
        raise SchemaStateError(f"the database's alembic_version table names several revisions "
                               f"{sorted(found)}; regen's history is linear: keep one row")
    return found[0] if found else None


def ensure_head(engine: Engine, *, schema: str | None = None) -> None:
    """Upgrade to HEAD_REVISION unless already there; when it is, one read and no lock."""
    with engine.connect() as conn:
        if revision_of(conn) == HEAD_REVISION:
            return
    migrate(engine, "head", schema=schema)


def migrate(
    engine: Engine, revision: str, *, schema: str | None = None, downgrade: bool = False
) -> str | None:
    """Upgrade (or, with `downgrade`, downgrade) to `revision` ("head", "base" or an id) under
    the lock described above; returns the revision the database is at afterwards.

    `schema` (PostgreSQL) is created if missing; the engine's connections must already have it
    first on their search_path. Raises SchemaStateError for an unknown revision, a database
    newer than this code, or a half-made legacy schema; SQLAlchemy errors pass through.
    """
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory.from_config(alembic_config())
    known = [s.revision for s in script.walk_revisions()]
    try:
        target = script.get_revision(revision)
    except CommandError as exc:
        raise SchemaStateError(
            f"unknown schema revision {revision!r} ({exc}); expected 'head', 'base' or one of "
            f"{sorted(known)}"
        ) from exc
    target_id = None if target is None else target.revision
    with _locked(engine, schema) as conn:
        current = revision_of(conn)
        if current is None:
            current = _adopt_legacy(conn)
        elif current not in known:
            raise SchemaStateError(
                f"the database is at schema revision {current!r}, which this version of regen "
                f"does not know (its newest is {HEAD_REVISION!r}); upgrade regen, or open the "
                "database with the version that created it"
            )
        if current == target_id:
            return current
        # History is linear: the target is behind the current revision or ahead of it.
        behind = target_id is None or (
            current is not None and target_id in _ancestors(script, current)
        )
        if behind != downgrade:
            way, other = ("down", "upgrade") if downgrade else ("up", "downgrade")
            raise SchemaStateError(
                f"cannot migrate {way} from schema revision {current!r} to {target_id!r}, "
                f"which is {'behind' if behind else 'ahead of'} it; use {other} instead"
            )
        config = alembic_config(conn)
        if downgrade:
            command.downgrade(config, target_id or "base")
        else:
            command.upgrade(config, target_id or "base")
        return revision_of(conn)


def _ancestors(script: ScriptDirectory, revision: str) -> set[str]:
    return {s.revision for s in script.iterate_revisions(revision, "base")}


def _adopt_legacy(conn: Connection) -> str | None:
    present = _BASELINE_TABLES & set(inspect(conn).get_table_names())
    if not present:
        return None
    if present != _BASELINE_TABLES:
        missing = sorted(_BASELINE_TABLES - present)
        raise SchemaStateError(
            f"the database has the regen tables {sorted(present)} but not {missing}, and no "
            "alembic_version table, so its schema cannot be identified; move those tables "
            "away (or point regen at an empty database) and open it again"
        )
    from alembic import command

    command.stamp(alembic_config(conn), BASELINE_REVISION)
    return BASELINE_REVISION


@contextlib.contextmanager
def _locked(engine: Engine, schema: str | None) -> Iterator[Connection]:
    """A connection inside a transaction that holds the migration lock; commits on exit."""
    if engine.dialect.name == "sqlite" and not _sqlite_in_memory(engine):
        yield from _sqlite_locked(engine)
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(_lock_key(schema))))
            if schema is not None:
                quoted = engine.dialect.identifier_preparer.quote_schema(schema)
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
        # An in-memory SQLite database lives in this process's one connection: nothing to race.
        yield conn


def _sqlite_locked(engine: Engine) -> Iterator[Connection]:
    lock_engine = create_engine(
        engine.url,
        echo=engine.echo,
        poolclass=NullPool,
        connect_args={"timeout": _SQLITE_LOCK_TIMEOUT_S},
    )
    event.listen(lock_engine, "connect", _sqlite_migration_connect)
    event.listen(lock_engine, "begin", _begin_immediate)
    try:
        with lock_engine.begin() as conn:
            yield conn
            orphans = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if orphans:
                raise SchemaStateError(
                    f"the migration would leave {len(orphans)} rows whose foreign key points "
                    f"at no row (first: table, rowid, parent = {tuple(orphans[0])[:3]}); it was "
                    "rolled back and the database is unchanged"
                )
    finally:
        lock_engine.dispose()


def _sqlite_migration_connect(dbapi_connection: Any, _record: Any) -> None:
    # No implicit BEGINs from the sqlite3 module (it would commit before DDL); ours comes from
    # the "begin" event below.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=OFF")
    finally:
        cursor.close()


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_in_memory(engine: Engine) -> bool:
    database = engine.url.database or ""
    return (
        database in ("", ":memory:")
        or "mode=memory" in database
        or engine.url.query.get("mode") == "memory"
    )


def _lock_key(schema: str | None) -> int:
    """A signed 64-bit advisory lock key per schema (advisory locks are per database)."""
    digest = hashlib.sha256(f"regen.db.migrate:{schema or ''}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
