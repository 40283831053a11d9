"""The persistence layer on SQLite and on PostgreSQL (skipped when no server is reachable)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, event, func, select, text
from sqlalchemy.engine import Engine

import db
from db import (
    BuildMember,
    Database,
    DatabaseError,
    IndexBuild,
    Label,
    Record,
    RecordRow,
    Report,
)


# Trust-auth servers in CI and dev containers differ in which role exists; the first that
# connects is used.
@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'regen.db'}")
        yield database
        database.dispose()
        return
    url = request.getfixturevalue("pg_url")
    schema = f"regen_test_{uuid.uuid4().hex[:12]}"
    database = Database(url, schema=schema)
    try:
        yield database
    finally:
        database.dispose()
        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def make_row(i: int) -> RecordRow:
    return RecordRow(
        key=f"ptbxl:{i}",
        source="ptbxl",
        path=f"records500/{i:05d}_hr",
        fs=500.0,
        n_leads=12,
        lead_names=["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"],
        n_samples=5000,
        patient_id=f"p{i // 2}",
        split=str(i % 10 + 1),
        meta={"age": 50 + i, "sex": "F"},
        reports={"orig": f"sinusrhythmus {i}", "en": f"sinus rhythm {i}"},
        labels=[("scp", "NORM", 100.0), ("superclass", "NORM", None)],
    )


def count(database: Database, model: type[db.Base]) -> int:
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def build_kwargs(record_ids: list[int], **over: Any) -> dict[str, Any]:
    kwargs = dict(
        path="/tmp/index/b1",
        encoder_fingerprint="enc:abc123",
        factory="HNSW32,Flat",
        metric="ip",
        dim=256,
        count=len(record_ids),
        data_source="ptbxl",
        params={"efSearch": 64},
        timings={"encode_s": 1.5},
        record_ids=record_ids,
    )
    kwargs.update(over)
    return kwargs


def test_public_surface_is_pinned() -> None:
    assert sorted(db.__all__) == db.__all__
    assert set(db.__all__) == {
        "Base", "BuildMember", "Database", "DatabaseError", "GenerationLog", "HEAD_REVISION",
        "IndexBuild", "current_revision", "downgrade", "upgrade",
        "Label", "LabelTuple", "Record", "RecordRow", "RecordView", "Report", "activate_build",
        "active_build", "build_keys", "build_record_ids", "create_build", "delete_build",
        "fetch_records", "get_generation", "list_builds",
        "list_generations", "log_generation", "mask_url", "record_id_for_key", "upsert_records",
    }  # fmt: skip


def test_upsert_is_idempotent(database: Database) -> None:
    rows = [make_row(i) for i in range(5)]
    with database.session() as s:
        first = db.upsert_records(s, rows)
    with database.session() as s:
        second = db.upsert_records(s, rows)
    assert first == second
    assert sorted(first) == sorted(r.key for r in rows)
    assert len(set(first.values())) == 5
    assert count(database, Record) == 5
    assert count(database, Report) == 10
    assert count(database, Label) == 10
    with database.session() as s:
        assert db.record_id_for_key(s, "ptbxl:3") == first["ptbxl:3"]
        assert db.record_id_for_key(s, "ptbxl:missing") is None


def test_update_replaces_fields_reports_and_labels(database: Database) -> None:
    with database.session() as s:
        ids = db.upsert_records(s, [make_row(1), make_row(2)])
    changed = dataclasses.replace(
        make_row(1),
        path="moved/00001_hr",
        meta={"age": 99},
        reports={"en": "atrial fibrillation"},
        labels=[("scp", "AFIB", 80.0)],
    )
    with database.session() as s:
        assert db.upsert_records(s, [changed]) == {"ptbxl:1": ids["ptbxl:1"]}
    with database.session() as s:
        views = db.fetch_records(s, [ids["ptbxl:1"], ids["ptbxl:2"]])
    one = views[ids["ptbxl:1"]]
    assert one.path == "moved/00001_hr"
    assert one.meta == {"age": 99}
    assert one.reports == {"en": "atrial fibrillation"}
    assert one.labels == [("scp", "AFIB", 80.0)]
    # The other record is untouched.
    assert views[ids["ptbxl:2"]].reports == {"orig": "sinusrhythmus 2", "en": "sinus rhythm 2"}


def test_fetch_records_returns_reports_and_labels(database: Database) -> None:
    with database.session() as s:
        ids = db.upsert_records(s, [make_row(i) for i in range(3)])
    wanted = [ids["ptbxl:2"], ids["ptbxl:0"], 10_000]
    with database.session() as s:
        views = db.fetch_records(s, wanted)
    assert set(views) == {ids["ptbxl:0"], ids["ptbxl:2"]}  # unknown ids are simply absent
    view = views[ids["ptbxl:2"]]
    assert view.key == "ptbxl:2"
    assert view.source == "ptbxl"
    assert view.patient_id == "p1"
    assert view.split == "3"
    assert view.meta == {"age": 52, "sex": "F"}
    assert view.reports == {"orig": "sinusrhythmus 2", "en": "sinus rhythm 2"}
    assert view.labels == [("scp", "NORM", 100.0), ("superclass", "NORM", None)]


def _count_statements(engine: Engine) -> list[str]:
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        statement = args[2]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    return seen


def test_upsert_and_fetch_are_batched(database: Database) -> None:
    # Mixed None values are what real corpora have, and what breaks naive bulk inserts.
    rows = [
        dataclasses.replace(
            make_row(i),
            patient_id=None if i % 2 else f"p{i}",
            split=None if i % 3 else "1",
            labels=[("scp", "NORM", None if i % 5 else 100.0)],
        )
        for i in range(3000)
    ]
    seen = _count_statements(database.engine)
    with database.session() as s:
        ids = db.upsert_records(s, rows)
    inserted = len(seen)
    with database.session() as s:
        db.upsert_records(s, rows)
    updated = len(seen) - inserted
    with database.session() as s:
        views = db.fetch_records(s, list(ids.values()))
    fetched = len(seen) - inserted - updated
    assert len(views) == 3000
    # One statement per row would be thousands; batches keep each phase to a few dozen.
    assert inserted < 60 and updated < 60 and fetched < 20, (inserted, updated, fetched)


def test_create_build_activates_exactly_one(database: Database) -> None:
    with database.session() as s:
        ids = list(db.upsert_records(s, [make_row(i) for i in range(4)]).values())
    with database.session() as s:
        first = db.create_build(s, **build_kwargs(ids))
    with database.session() as s:
        second = db.create_build(s, **build_kwargs(ids[:2], path="/tmp/index/b2"))
    with database.session() as s:
        builds = db.list_builds(s)
        active = db.active_build(s)
        assert sorted(db.build_record_ids(s, first)) == sorted(ids)
        assert db.build_record_ids(s, second) == sorted(ids[:2])
    assert {b.id for b in builds} == {first, second}
    assert [b.id for b in builds if b.active] == [second]
    assert active is not None and active.id == second
    assert active.status == "ready" and active.path == "/tmp/index/b2"
    assert active.params == {"efSearch": 64} and active.timings == {"encode_s": 1.5}
    assert active.created_at.tzinfo is not None
    assert active.created_at.utcoffset() == UTC.utcoffset(None)

    with database.session() as s:
        third = db.create_build(s, **build_kwargs(ids, activate=False))
        assert db.active_build(s).id == second
        assert third in {b.id for b in db.list_builds(s)}


def test_activate_build_switches(database: Database) -> None:
    with database.session() as s:
        ids = list(db.upsert_records(s, [make_row(0)]).values())
    with database.session() as s:
        first = db.create_build(s, **build_kwargs(ids))
        second = db.create_build(s, **build_kwargs(ids))
    with database.session() as s:
        db.activate_build(s, first)
    with database.session() as s:
        assert db.active_build(s).id == first
        assert [b.id for b in db.list_builds(s) if b.active] == [first]
    with database.session() as s:
        db.activate_build(s, second)
        db.activate_build(s, second)  # activating the active build is a no-op
    with database.session() as s:
        assert db.active_build(s).id == second
    with pytest.raises(DatabaseError, match="no index build 'nope'"), database.session() as s:
        db.activate_build(s, "nope")


def test_database_refuses_two_active_builds(database: Database) -> None:
    with database.session() as s:
        db.create_build(s, **build_kwargs([]))
    fields = build_kwargs([])
    del fields["record_ids"]
    # Bypasses create_build to check that the schema itself forbids a second active build.
    with pytest.raises(DatabaseError, match="nothing from this unit of work was saved"):
        with database.session() as s:
            s.add(IndexBuild(id="x" * 32, active=True, status="ready", **fields))
    assert count(database, IndexBuild) == 1


def test_failed_unit_of_work_writes_nothing(database: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"), database.session() as s:
        ids = db.upsert_records(s, [make_row(i) for i in range(3)])
        db.create_build(s, **build_kwargs(list(ids.values())))
        db.log_generation(s, kind="report", refiner="template", output="x")
        raise RuntimeError("boom")
    for model in (Record, Report, Label, IndexBuild, BuildMember, db.GenerationLog):
        assert count(database, model) == 0, model.__tablename__


def test_unknown_record_in_build_is_a_database_error(database: Database) -> None:
    with pytest.raises(DatabaseError, match="nothing from this unit of work was saved"):
        with database.session() as s:
            db.create_build(s, **build_kwargs([123_456]))
    assert count(database, IndexBuild) == 0


def test_deleting_a_record_cascades(database: Database) -> None:
    with database.session() as s:
        ids = db.upsert_records(s, [make_row(0), make_row(1)])
        build = db.create_build(s, **build_kwargs(list(ids.values())))
    gone, kept = ids["ptbxl:0"], ids["ptbxl:1"]
    with database.session() as s:
        # A bulk DELETE bypasses ORM cascades, so this checks the ON DELETE CASCADE in the schema.
        s.execute(delete(Record).where(Record.id == gone))
    with database.session() as s:
        for model in (Report, Label, BuildMember):
            n = s.scalar(select(func.count()).select_from(model).where(model.record_id == gone))
            assert n == 0, model.__tablename__
        assert db.build_record_ids(s, build) == [kept]
        assert set(db.fetch_records(s, [gone, kept])) == {kept}
    with database.session() as s:
        s.execute(delete(IndexBuild).where(IndexBuild.id == build))
    assert count(database, BuildMember) == 0
    assert count(database, Record) == 1


def test_generation_log_round_trip(database: Database) -> None:
    with database.session() as s:
        first = db.log_generation(
            s,
            kind="report",
            query={"paths": ["a.hea"], "record_ids": [3]},
            refiner="llm",
            model="qwen2.5-7b",
            prompt_hash="sha256:abc",
            settings={"k": 5, "language": "en"},
            neighbours=[{"id": 3, "score": 0.91}],
            output="Sinus rhythm.",
            confidence=0.8,
            timings={"retrieve_s": 0.01},
        )
        second = db.log_generation(
            s, kind="ask", question="Is there AF?", refiner="template", output="", abstained=True,
            error="no neighbours above threshold",
        )  # fmt: skip
    with database.session() as s:
        logs = db.list_generations(s)
        assert [g.id for g in db.list_generations(s, limit=1)] == [second]
    assert [g.id for g in logs] == [second, first]
    ask, report = logs
    assert ask.question == "Is there AF?" and ask.abstained and ask.query == {}
    assert ask.error == "no neighbours above threshold" and ask.confidence is None
    assert report.query == {"paths": ["a.hea"], "record_ids": [3]}
    assert report.neighbours == [{"id": 3, "score": 0.91}]
    assert report.settings == {"k": 5, "language": "en"}
    assert report.model == "qwen2.5-7b" and report.prompt_hash == "sha256:abc"
    assert report.confidence == pytest.approx(0.8) and not report.abstained
    assert report.created_at.tzinfo is not None


def test_generation_log_stores_undecodable_file_names_and_nul(database: Database) -> None:
    # a query file whose name is not UTF-8 reaches Python as lone surrogates (os.fsdecode), and
    # SQLAlchemy's drivers raised UnicodeEncodeError; PostgreSQL also refuses NUL in text
    name = b"/data/\xff\xfe.npy".decode("utf-8", "surrogateescape")
    with database.session() as s:
        db.log_generation(s, kind="report", refiner="consensus", output="sinus\x00 rhythm",
                          query={"paths": [name]}, question=name, error=f"{name}: bad")
    with database.session() as s:
        (row,) = db.list_generations(s, 1)
    assert row.query == {"paths": ["/data/\\xff\\xfe.npy"]}
    assert row.question == "/data/\\xff\\xfe.npy" and row.error.startswith("/data/\\xff")
    assert row.output == "sinus\\x00 rhythm"


def test_unreachable_server_is_a_database_error_with_masked_password() -> None:
    with pytest.raises(DatabaseError) as info:
        Database("postgresql+psycopg://u:s3cret@127.0.0.1:1/x")
    message = str(info.value)
    assert "s3cret" not in message
    assert "postgresql+psycopg://u:***@127.0.0.1:1/x" in message
    assert "check that the server is running" in message


def test_bad_urls_are_database_errors() -> None:
    with pytest.raises(DatabaseError, match="malformed"):
        Database("not a url")
    with pytest.raises(DatabaseError, match="no driver"):
        Database("postgresql+nosuchdriver://u:pw@localhost/x")
    with pytest.raises(DatabaseError, match="only supported on PostgreSQL"):
        Database("sqlite://", schema="s")


def test_mask_url() -> None:
    assert db.mask_url("postgresql://u:pw@h/d") == "postgresql://u:***@h/d"
    assert db.mask_url("sqlite:///:memory:") == "sqlite:///:memory:"


def test_build_keys_and_delete_build(database: Database) -> None:
    with database.session() as s:
        ids = db.upsert_records(s, [make_row(i) for i in range(4)])
        old = db.create_build(s, **build_kwargs([ids["ptbxl:0"], ids["ptbxl:1"]]))
        new = db.create_build(s, **build_kwargs(list(ids.values()), path="/tmp/index/b2"))
    with database.session() as s:
        assert db.build_keys(s, old) == {"ptbxl:0", "ptbxl:1"}
        assert db.build_keys(s, new) == {f"ptbxl:{i}" for i in range(4)}
        assert db.build_keys(s, "unknown") == set()
        assert not db.delete_build(s, new)               # the active build is never deleted
        assert not db.delete_build(s, "unknown")
        assert db.delete_build(s, old)
    with database.session() as s:
        assert [b.id for b in db.list_builds(s)] == [new]
        assert db.build_record_ids(s, old) == []
        assert s.scalar(select(func.count()).select_from(BuildMember)) == 4
        assert s.scalar(select(func.count()).select_from(Record)) == 4   # records stay
