"""Schema migrations on SQLite and PostgreSQL (skipped when no server is reachable).

The oracles: alembic's own comparison of a migrated database with `Base.metadata`, and a dump of
the catalog (columns, indexes with their WHERE clauses, constraints) of a migrated database
against one that `create_all` made.
"""

from __future__ import annotations

import multiprocessing
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect, text

import db
from db.migrate import alembic_config

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Place:
    """Where a fresh database lives: a SQLite file, or a PostgreSQL schema of its own."""

    url: str
    schema: str | None

    def database(self) -> db.Database:
        return db.Database(self.url, schema=self.schema)

    def engine(self) -> Engine:
        args = {} if self.schema is None else {"options": f"-csearch_path={self.schema}"}
        return create_engine(self.url, connect_args=args)

    def upgrade(self, revision: str = "head") -> str | None:
        return db.upgrade(self.url, revision, schema=self.schema)


def _pg_place(url: str) -> Iterator[Place]:
    schema = f"regen_mig_{uuid.uuid4().hex[:12]}"
    try:
        yield Place(url, schema)
    finally:
        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    """An empty place for a database; the PostgreSQL schema is dropped afterwards."""
    if request.param == "sqlite":
        yield Place(f"sqlite:///{tmp_path / 'regen.db'}", None)
        return
    yield from _pg_place(request.getfixturevalue("pg_url"))


@pytest.fixture
def twin(place: Place, tmp_path: Path) -> Iterator[Place]:
    """A second empty place on the same backend as `place`."""
    if place.schema is None:
        yield Place(f"sqlite:///{tmp_path / 'twin.db'}", None)
        return
    yield from _pg_place(place.url)


def model_diff(place: Place) -> list[Any]:
    engine = place.engine()
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, db.Base.metadata))
    finally:
        engine.dispose()


def catalog(place: Place) -> dict[str, Any]:
    """Every table's columns, indexes (with WHERE clauses) and constraints, as the server has
    them, with the schema name blanked out so two places compare equal."""
    engine = place.engine()
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                return _sqlite_catalog(conn)
            return _pg_catalog(conn, place.schema or "public")
    finally:
        engine.dispose()


def _sqlite_catalog(conn: Connection) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tables = conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'alembic_version'"
    )
    for (table,) in tables.fetchall():
        indexes = {}
        for row in conn.exec_driver_sql(f"PRAGMA index_list('{table}')").fetchall():
            name = row[1]
            cols = conn.exec_driver_sql(f"PRAGMA index_info('{name}')").fetchall()
            sql = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = ?", (name,)
            ).scalar()
            indexes[name] = (tuple(row[2:]), [c[2] for c in cols], sql)
        out[table] = {
            "columns": conn.exec_driver_sql(f"PRAGMA table_info('{table}')").fetchall(),
            "foreign_keys": sorted(
                tuple(r[2:]) for r in conn.exec_driver_sql(f"PRAGMA foreign_key_list('{table}')")
            ),
            "indexes": indexes,
        }
    return out


def _pg_catalog(conn: Connection, schema: str) -> dict[str, Any]:
    params = {"s": schema}
    columns = conn.execute(
        text(
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable,"
            " column_default FROM information_schema.columns WHERE table_schema = :s"
            " AND table_name != 'alembic_version' ORDER BY table_name, ordinal_position"
        ),
        params,
    ).fetchall()
    indexes = conn.execute(
        text(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = :s"
            " AND tablename != 'alembic_version' ORDER BY indexname"
        ),
        params,
    ).fetchall()
    constraints = conn.execute(
        text(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)"
            " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE n.nspname = :s AND c.conrelid::regclass::text != 'alembic_version'"
            " ORDER BY c.conname"
        ),
        params,
    ).fetchall()
    # Sequences are named after the schema-less table, but defaults and index definitions
    # may qualify names with the schema.
    blank = re.compile(re.escape(schema) + r"\.")
    return {
        "columns": [tuple(blank.sub("", str(v)) for v in row) for row in columns],
        "indexes": [tuple(blank.sub("", str(v)) for v in row) for row in indexes],
        "constraints": [tuple(blank.sub("", str(v)) for v in row) for row in constraints],
    }


def make_legacy(place: Place) -> None:
    """A database as the code before migrations left it: `create_all` of the revision-0001
    models (today's models without index_builds.notes and generation_logs.findings/input) and
    no alembic_version table."""
    engine = place.engine()
    try:
        with engine.begin() as conn:
            if place.schema is not None:
                conn.execute(text(f'CREATE SCHEMA "{place.schema}"'))
            db.Base.metadata.create_all(conn)
            conn.execute(text("ALTER TABLE index_builds DROP COLUMN notes"))
            conn.execute(text("ALTER TABLE generation_logs DROP COLUMN findings"))
            conn.execute(text("ALTER TABLE generation_logs DROP COLUMN input"))
    finally:
        engine.dispose()


def insert_rows(place: Place) -> None:
    """Two records with reports and labels, an active build of both, one generation log;
    written with Core on the tables as reflected, so any schema revision will do."""
    engine = place.engine()
    try:
        with engine.begin() as conn:
            meta = MetaData()
            meta.reflect(conn)
            t = meta.tables
            conn.execute(
                t["records"].insert(),
                [
                    {
                        "id": i,
                        "key": f"ptbxl:{i}",
                        "source": "ptbxl",
                        "path": f"records500/{i:05d}_hr",
                        "fs": 500.0,
                        "n_leads": 12,
                        "lead_names": ["I", "II"],
                        "n_samples": 5000,
                        "patient_id": "p1",
                        "split": "1",
                        "meta": {"age": 60 + i},
                        "created_at": NOW,
                    }
                    for i in (1, 2)
                ],
            )
            conn.execute(
                t["reports"].insert(),
                [{"record_id": i, "language": "en", "text": f"sinus rhythm {i}"} for i in (1, 2)],
            )
            conn.execute(
                t["labels"].insert(),
                [{"record_id": i, "kind": "scp", "code": "NORM", "weight": 100.0} for i in (1, 2)],
            )
            conn.execute(
                t["index_builds"].insert(),
                {
                    "id": "b1",
                    "created_at": NOW,
                    "finished_at": NOW,
                    "status": "ready",
                    "active": True,
                    "path": "/tmp/index/b1",
                    "encoder_fingerprint": "enc:abc",
                    "factory": "Flat",
                    "metric": "ip",
                    "dim": 256,
                    "count": 2,
                    "data_source": "ptbxl",
                    "params": {},
                    "timings": {"encode_s": 1.0},
                },
            )
            conn.execute(
                t["build_members"].insert(), [{"build_id": "b1", "record_id": i} for i in (1, 2)]
            )
            conn.execute(
                t["generation_logs"].insert(),
                {
                    "created_at": NOW,
                    "kind": "report",
                    "query": {"paths": ["a.hea"]},
                    "refiner": "consensus",
                    "settings": {"k": 5},
                    "neighbours": [{"id": 1, "score": 0.9}],
                    "output": "sinus rhythm",
                    "abstained": False,
                    "timings": {},
                },
            )
    finally:
        engine.dispose()


def assert_rows_intact(database: db.Database) -> None:
    with database.session() as s:
        records = db.fetch_records(s, [1, 2])
        build = db.active_build(s)
        members = db.build_record_ids(s, "b1")
        logs = db.list_generations(s)
    assert records[2].key == "ptbxl:2" and records[2].meta == {"age": 62}
    assert records[1].reports == {"en": "sinus rhythm 1"}
    assert records[1].labels == [("scp", "NORM", 100.0)]
    assert build is not None and build.id == "b1" and build.created_at == NOW
    assert build.timings == {"encode_s": 1.0}
    assert members == [1, 2]
    assert [g.neighbours for g in logs] == [[{"id": 1, "score": 0.9}]]


def columns_of(place: Place, table: str) -> list[str]:
    engine = place.engine()
    try:
        with engine.connect() as conn:
            return [c["name"] for c in inspect(conn).get_columns(table)]
    finally:
        engine.dispose()


def test_head_revision_is_the_last_of_a_linear_history() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [db.HEAD_REVISION]
    assert [s.revision for s in script.walk_revisions()] == ["0003", "0002", "0001"]


def test_empty_to_head_matches_the_models(place: Place) -> None:
    assert db.current_revision(place.url, schema=place.schema) is None
    assert place.upgrade() == db.HEAD_REVISION
    assert db.current_revision(place.url, schema=place.schema) == db.HEAD_REVISION
    assert model_diff(place) == []


def test_revision_0001_is_the_models_without_notes(place: Place) -> None:
    assert place.upgrade("0001") == "0001"
    diff = model_diff(place)
    assert sorted((op[0], op[2], op[3].name) for op in diff) == [
        ("add_column", "generation_logs", "findings"), ("add_column", "generation_logs", "input"),
        ("add_column", "index_builds", "notes")]


def test_revision_0003_adds_the_findings_and_input_of_each_generation(place: Place) -> None:
    assert place.upgrade("0002") == "0002"
    diff = model_diff(place)
    assert sorted((op[0], op[2], op[3].name) for op in diff) == [
        ("add_column", "generation_logs", "findings"), ("add_column", "generation_logs", "input")]
    assert place.upgrade() == "0003"
    assert model_diff(place) == []


def test_migrated_catalog_equals_create_all(place: Place, twin: Place) -> None:
    place.upgrade()
    engine = twin.engine()
    with engine.begin() as conn:
        if twin.schema is not None:
            conn.execute(text(f'CREATE SCHEMA "{twin.schema}"'))
        db.Base.metadata.create_all(conn)
    engine.dispose()
    assert catalog(place) == catalog(twin)


def test_legacy_database_is_adopted_and_upgraded(place: Place) -> None:
    make_legacy(place)
    insert_rows(place)
    assert db.current_revision(place.url, schema=place.schema) is None
    database = place.database()
    try:
        assert db.current_revision(place.url, schema=place.schema) == db.HEAD_REVISION
        assert_rows_intact(database)
        assert model_diff(place) == []
    finally:
        database.dispose()


def test_upgrade_from_0001_keeps_rows_and_downgrade_returns(place: Place) -> None:
    place.upgrade("0001")
    insert_rows(place)
    assert "notes" not in columns_of(place, "index_builds")

    assert place.upgrade() == db.HEAD_REVISION
    database = place.database()
    try:
        assert_rows_intact(database)
        with database.session() as s:
            build = db.active_build(s)
            assert build is not None and build.notes is None
            build.notes = "first build after the migration"
        with database.session() as s:
            assert db.list_builds(s)[0].notes == "first build after the migration"
    finally:
        database.dispose()

    assert db.downgrade(place.url, "0001", schema=place.schema) == "0001"
    assert "notes" not in columns_of(place, "index_builds")
    assert place.upgrade() == db.HEAD_REVISION
    database = place.database()
    try:
        assert_rows_intact(database)
    finally:
        database.dispose()

    assert db.downgrade(place.url, "base", schema=place.schema) is None
    engine = place.engine()
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_reopening_at_head_reads_and_does_not_migrate(
    place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    place.database().dispose()

    def no_migration(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a database at head was migrated again")

    monkeypatch.setattr("db.migrate.migrate", no_migration)
    database = place.database()
    with database.session() as s:
        db.upsert_records(s, [])
    database.dispose()
    engine = place.engine()
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert version == [(db.HEAD_REVISION,)]
    engine.dispose()


def test_a_failed_migration_leaves_nothing_behind(place: Place) -> None:
    # An index name 0001 needs is taken, so it fails after creating its first tables.
    engine = place.engine()
    with engine.begin() as conn:
        if place.schema is not None:
            conn.execute(text(f'CREATE SCHEMA "{place.schema}"'))
        conn.execute(text("CREATE TABLE other (x INTEGER)"))
        conn.execute(text("CREATE INDEX ix_records_source ON other (x)"))
    with pytest.raises(db.DatabaseError, match="cannot open database"):
        place.database()
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"other"}
    engine.dispose()


def test_database_newer_than_the_code_is_refused(place: Place) -> None:
    place.upgrade()
    engine = place.engine()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(db.DatabaseError, match=r"revision '9999'.*upgrade regen"):
        place.database()


def test_half_made_legacy_schema_is_refused(place: Place) -> None:
    engine = place.engine()
    with engine.begin() as conn:
        if place.schema is not None:
            conn.execute(text(f'CREATE SCHEMA "{place.schema}"'))
        db.Base.metadata.create_all(conn, tables=[db.Base.metadata.tables["records"]])
    engine.dispose()
    with pytest.raises(db.DatabaseError, match=r"has the regen tables \['records'\]"):
        place.database()


def test_unknown_revision_is_a_database_error(place: Place) -> None:
    with pytest.raises(db.DatabaseError, match="unknown schema revision 'nope'"):
        place.upgrade("nope")
    place.upgrade()
    with pytest.raises(db.DatabaseError, match="cannot migrate up"):
        place.upgrade("0001")


def _open(url: str, schema: str | None, barrier: Any) -> None:
    barrier.wait()
    db.Database(url, schema=schema).dispose()


@pytest.mark.slow
def test_concurrent_openers_of_a_new_database_migrate_it_once(place: Place) -> None:
    ctx = multiprocessing.get_context("spawn")
    n = 4
    barrier = ctx.Barrier(n)
    procs = [ctx.Process(target=_open, args=(place.url, place.schema, barrier)) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * n
    assert model_diff(place) == []
    engine = place.engine()
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert version == [(db.HEAD_REVISION,)]
    engine.dispose()
