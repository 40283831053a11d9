"""The ORM tables: records with their reports and labels, index builds, generation logs.

Persistence only: nothing here knows what an ECG is. A record's `id` doubles as its FAISS vector
id, so it is an integer primary key that the database assigns and never reuses for another key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# SQLite only auto-assigns ids to a column declared exactly INTEGER PRIMARY KEY; PostgreSQL gets
# a 64-bit id because archives of tens of millions of ECGs are on the scale path.
_ID = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no offset, so values are normalised to UTC on the way in and tagged UTC on the
    way out; naive datetimes are refused because their zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}; pass a timezone-aware one (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base; `Base.metadata` holds every table of the schema."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, list[str]: JSON}


class Record(Base):
    """One corpus recording: where it lives, its shape, and who it belongs to."""

    __tablename__ = "records"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String, unique=True, nullable=False)
    source: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String)
    fs: Mapped[float] = mapped_column(Float)
    n_leads: Mapped[int] = mapped_column(Integer)
    lead_names: Mapped[list[str]] = mapped_column(default=list)
    n_samples: Mapped[int] = mapped_column(Integer)
    # Indexed because the leakage guard excludes every record of the query's patient.
    patient_id: Mapped[str | None] = mapped_column(String(128), index=True)
    split: Mapped[str | None] = mapped_column(String(32))
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    reports: Mapped[list[Report]] = relationship(
        back_populates="record", cascade="all, delete-orphan", passive_deletes=True
    )
    labels: Mapped[list[Label]] = relationship(
        back_populates="record", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Record(id={self.id!r}, key={self.key!r})"


class Report(Base):
    """A record's free-text report in one language ("orig" is the text as the corpus has it)."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("record_id", "language", name="uq_reports_record_lang"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("records.id", ondelete="CASCADE"), nullable=False
    )
    language: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)

    record: Mapped[Record] = relationship(back_populates="reports")


class Label(Base):
    """One coded statement about a record, e.g. kind "scp", code "NORM", weight 100.0."""

    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("record_id", "kind", "code", name="uq_labels_record_kind_code"),
        # Finding every record with a given code (label-stratified evaluation, filters).
        Index("ix_labels_kind_code", "kind", "code"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("records.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float | None] = mapped_column(Float)

    record: Mapped[Record] = relationship(back_populates="labels")


class IndexBuild(Base):
    """One FAISS index built on disk at `path`; at most one build is active at a time."""

    __tablename__ = "index_builds"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="building")
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    path: Mapped[str] = mapped_column(String)
    encoder_fingerprint: Mapped[str] = mapped_column(String(128))
    factory: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(16))
    dim: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(BigInteger)
    data_source: Mapped[str] = mapped_column(String)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Free text from whoever made the build; added by revision 0002, so older builds have None.
    notes: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"IndexBuild(id={self.id!r}, status={self.status!r}, active={self.active!r})"


# A partial unique index makes "two active builds" impossible, not merely unlikely.
Index(
    "uq_index_builds_one_active",
    IndexBuild.active,
    unique=True,
    sqlite_where=IndexBuild.active == true(),
    postgresql_where=IndexBuild.active == true(),
)


class BuildMember(Base):
    """Which records a build contains (its FAISS ids are these record ids)."""

    __tablename__ = "build_members"

    build_id: Mapped[str] = mapped_column(
        ForeignKey("index_builds.id", ondelete="CASCADE"), primary_key=True
    )
    # Indexed on its own so deleting a record finds its memberships without a scan.
    record_id: Mapped[int] = mapped_column(
        ForeignKey("records.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class GenerationLog(Base):
    """One report, answer or comparison produced: inputs, prompt hash, neighbours, output."""

    __tablename__ = "generation_logs"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    query: Mapped[dict[str, Any]] = mapped_column(default=dict)
    question: Mapped[str | None] = mapped_column(Text)
    refiner: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(256))
    prompt_hash: Mapped[str | None] = mapped_column(String(128))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    neighbours: Mapped[list[Any]] = mapped_column(default=list)
    output: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    abstained: Mapped[bool] = mapped_column(Boolean, default=False)
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    findings: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    input: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    def __repr__(self) -> str:
        return f"GenerationLog(id={self.id!r}, kind={self.kind!r})"
