"""Reads and writes in corpus-sized batches: records, index builds, generation logs.

Every function takes an open Session and neither commits nor rolls back: the caller's
`with db.session():` block is the unit of work, so a failure anywhere in it leaves nothing behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session, selectinload

from db.database import DatabaseError
from db.models import BuildMember, GenerationLog, IndexBuild, Label, Record, Report, utcnow

# Keeps each IN (...) list well under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 900

_T = TypeVar("_T")
_V = TypeVar("_V")

LabelTuple: TypeAlias = tuple[str, str, float | None]


@dataclass(frozen=True)
class RecordRow:
    """One record to insert or update, identified by `key` (e.g. "ptbxl:123").

    `reports` maps a language ("en", "orig") to the text; `labels` are (kind, code, weight)
    with kind e.g. "scp" or "superclass" and weight None when the source gives none.
    """

    key: str
    source: str
    path: str
    fs: float
    n_leads: int
    lead_names: Sequence[str]
    n_samples: int
    patient_id: str | None = None
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    labels: Sequence[LabelTuple] = ()


@dataclass(frozen=True)
class RecordView:
    """A stored record with its reports and labels, detached from any session.

    `labels` are sorted by (kind, code) so two reads of the same record compare equal.
    """

    id: int
    key: str
    source: str
    path: str
    patient_id: str | None
    split: str | None
    reports: dict[str, str]
    labels: list[LabelTuple]
    meta: dict[str, Any]


def _table(model: type) -> Table:
    """A mapped class's Table, for Core bulk INSERTs (the ORM types `__table__` as FromClause)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ids_for_keys(session: Session, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(keys):
        rows = session.execute(select(Record.key, Record.id).where(Record.key.in_(chunk)))
        found.update({key: rid for key, rid in rows})
    return found


def upsert_records(session: Session, rows: Sequence[RecordRow]) -> dict[str, int]:
    """Insert new keys and update existing ones; returns key -> record id for every row.

    An existing record keeps its id (so its FAISS vector id stays valid); its fields are
    overwritten and its reports and labels replaced by the row's. Running it twice with the same
    rows changes nothing. When a key appears twice in `rows` the last one wins. Statements are
    batched (a few per ~1000 rows), so a 20k-record corpus takes seconds, not minutes.
    """
    by_key = {row.key: row for row in rows}  # last one wins
    if not by_key:
        return {}
    session.flush()  # pending ORM changes must land before the bulk statements below
    keys = list(by_key)
    existing = _ids_for_keys(session, keys)

    def fields(row: RecordRow) -> dict[str, Any]:
        return {
            "key": row.key,
            "source": row.source,
            "path": row.path,
            "fs": float(row.fs),
            "n_leads": int(row.n_leads),
            "lead_names": list(row.lead_names),
            "n_samples": int(row.n_samples),
            "patient_id": row.patient_id,
            "split": row.split,
            "meta": dict(row.meta),
        }

    # Inserts go to the Core tables: the ORM's bulk insert starts a new batch wherever a row's
    # None values differ from the previous row's (no patient id, no label weight), which
    # degrades to one statement per row on real corpora.
    updates = [{"id": existing[k], **fields(by_key[k])} for k in keys if k in existing]
    if updates:
        session.execute(update(Record), updates)  # ORM bulk UPDATE by primary key
    new_keys = [k for k in keys if k not in existing]
    if new_keys:
        session.execute(insert(_table(Record)), [fields(by_key[k]) for k in new_keys])
        existing.update(_ids_for_keys(session, new_keys))

    ids = [existing[k] for k in keys]
    for chunk in _chunks(ids):
        session.execute(delete(Report).where(Report.record_id.in_(chunk)))
        session.execute(delete(Label).where(Label.record_id.in_(chunk)))
    reports = [
        {"record_id": existing[k], "language": lang, "text": body}
        for k in keys
        for lang, body in by_key[k].reports.items()
    ]
    labels: list[dict[str, Any]] = []
    for k in keys:
        # One (kind, code) per record is what the unique constraint allows; the last weight wins.
        unique = {(kind, code): weight for kind, code, weight in by_key[k].labels}
        labels.extend(
            {"record_id": existing[k], "kind": kind, "code": code, "weight": weight}
            for (kind, code), weight in unique.items()
        )
    if reports:
        session.execute(insert(_table(Report)), reports)
    if labels:
        session.execute(insert(_table(Label)), labels)
    # Bulk statements bypass the identity map; records loaded earlier must not show old values.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, (Record, Report, Label)):
            session.expire(obj)
    return {k: existing[k] for k in keys}


def record_id_for_key(session: Session, key: str) -> int | None:
    """The id of the record with this key, or None if there is none."""
    return session.scalar(select(Record.id).where(Record.key == key))


def fetch_records(session: Session, ids: Sequence[int]) -> dict[int, RecordView]:
    """The records with these ids, with reports and labels; ids not stored are absent.

    Three queries per ~1000 ids (records, then all their reports, then all their labels).
    """
    wanted = list(dict.fromkeys(int(i) for i in ids))
    views: dict[int, RecordView] = {}
    for chunk in _chunks(wanted):
        stmt = (
            select(Record)
            .where(Record.id.in_(chunk))
            .options(selectinload(Record.reports), selectinload(Record.labels))
        )
        for rec in session.scalars(stmt):
            views[rec.id] = RecordView(
                id=rec.id,
                key=rec.key,
                source=rec.source,
                path=rec.path,
                patient_id=rec.patient_id,
                split=rec.split,
                reports={r.language: r.text for r in rec.reports},
                labels=sorted(
                    ((lb.kind, lb.code, lb.weight) for lb in rec.labels), key=_label_order
                ),
                meta=dict(rec.meta or {}),
            )
    return views


def _label_order(label: LabelTuple) -> tuple[str, str]:
    return label[0], label[1]


def create_build(
    session: Session,
    *,
    path: str,
    encoder_fingerprint: str,
    factory: str,
    metric: str,
    dim: int,
    count: int,
    data_source: str,
    params: dict[str, Any],
    timings: dict[str, Any],
    record_ids: Sequence[int],
    activate: bool = True,
) -> str:
    """Record a finished index build (status "ready") and the records it contains.

    With `activate`, every other build is deactivated in the same unit of work, so readers see
    either the old active build or the new one, never none or two. Returns the build id.
    """
    build_id = uuid.uuid4().hex
    if activate:
        # Before the insert: the partial unique index allows one active row at any instant.
        session.execute(update(IndexBuild).where(IndexBuild.active).values(active=False))
    now = utcnow()
    session.add(
        IndexBuild(
            id=build_id,
            created_at=now,
            finished_at=now,
            status="ready",
            active=activate,
            path=str(path),
            encoder_fingerprint=encoder_fingerprint,
            factory=factory,
            metric=metric,
            dim=int(dim),
            count=int(count),
            data_source=data_source,
            params=dict(params),
            timings=dict(timings),
        )
    )
    session.flush()  # the members' foreign key needs the build row first
    members = [{"build_id": build_id, "record_id": int(r)} for r in dict.fromkeys(record_ids)]
    if members:
        session.execute(insert(_table(BuildMember)), members)
    return build_id


def active_build(session: Session) -> IndexBuild | None:
    """The active build, or None when no build has been activated yet."""
    return session.scalar(select(IndexBuild).where(IndexBuild.active))


def list_builds(session: Session) -> list[IndexBuild]:
    """Every build, newest first."""
    stmt = select(IndexBuild).order_by(IndexBuild.created_at.desc(), IndexBuild.id)
    return list(session.scalars(stmt))


def activate_build(session: Session, build_id: str) -> None:
    """Make `build_id` the only active build; DatabaseError if it is unknown or not ready."""
    build = session.get(IndexBuild, build_id)
    if build is None:
        known = ", ".join(b.id for b in list_builds(session)[:5]) or "none"
        raise DatabaseError(
            f"no index build {build_id!r}; known builds (newest first): {known}; "
            "list them with `regen index info`"
        )
    if build.status != "ready":
        raise DatabaseError(
            f"index build {build_id!r} has status {build.status!r}; only a 'ready' build can be "
            "activated, rebuild the index with `regen index rebuild`"
        )
    session.execute(
        update(IndexBuild).where(IndexBuild.active, IndexBuild.id != build_id).values(active=False)
    )
    session.flush()
    build.active = True
    session.flush()


def build_record_ids(session: Session, build_id: str) -> list[int]:
    """The ids of the records a build contains, ascending."""
    stmt = (
        select(BuildMember.record_id)
        .where(BuildMember.build_id == build_id)
        .order_by(BuildMember.record_id)
    )
    return list(session.scalars(stmt))


def build_keys(session: Session, build_id: str) -> set[str]:
    """The record keys a build contains (what an incremental add must not embed again)."""
    stmt = (
        select(Record.key)
        .join(BuildMember, BuildMember.record_id == Record.id)
        .where(BuildMember.build_id == build_id)
    )
    return set(session.scalars(stmt))


def delete_build(session: Session, build_id: str) -> bool:
    """Delete an inactive build's row and its memberships; records stay.

    Returns False, deleting nothing, when the build is unknown or active (also when another
    unit of work activated it meanwhile: the active check is part of the DELETE).
    """
    gone = session.execute(
        delete(IndexBuild)
        .where(IndexBuild.id == build_id, IndexBuild.active.is_(False))
        .execution_options(synchronize_session=False)
    )
    if not gone.rowcount:  # type: ignore[attr-defined]  # a CursorResult at runtime
        return False
    # Foreign keys cascade on PostgreSQL and on SQLite with PRAGMA foreign_keys; be explicit.
    session.execute(delete(BuildMember).where(BuildMember.build_id == build_id))
    return True


def _storable(value: _V) -> _V:
    """`value` with every string made storable as UTF-8 text on every backend: a file name that
    is not UTF-8 reaches Python as lone surrogates (PEP 383), which the drivers refuse, and
    PostgreSQL refuses NUL. Both become visible escapes ("\\xff", "\\x00")."""
    if isinstance(value, str):
        if value.isascii() and "\x00" not in value:
            return value
        text = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return text.replace("\x00", "\\x00")  # type: ignore[return-value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list | tuple):
        return type(value)(_storable(v) for v in value)  # type: ignore[return-value]
    return value


def log_generation(
    session: Session,
    *,
    kind: str,
    refiner: str,
    output: str,
    query: dict[str, Any] | None = None,
    question: str | None = None,
    model: str | None = None,
    prompt_hash: str | None = None,
    settings: dict[str, Any] | None = None,
    neighbours: list[Any] | None = None,
    confidence: float | None = None,
    abstained: bool = False,
    timings: dict[str, Any] | None = None,
    error: str | None = None,
    findings: list[Any] | None = None,
    input: dict[str, Any] | None = None,
) -> int:
    """Append one generation ("report", "ask" or "compare") to the log; returns its id.

    JSON fields must hold plain JSON values (str, numbers, bools, None, lists, dicts).
    """
    row = GenerationLog(
        kind=kind,
        refiner=refiner,
        output=_storable(output),
        query=_storable(dict(query or {})),
        question=_storable(question),
        model=model,
        prompt_hash=prompt_hash,
        settings=_storable(dict(settings or {})),
        neighbours=_storable(list(neighbours or [])),
        confidence=None if confidence is None else float(confidence),
        abstained=bool(abstained),
        timings=dict(timings or {}),
        error=_storable(error),
        findings=findings,
        input=input,
    )
    session.add(row)
    session.flush()
    return row.id


def get_generation(session: Session, generation_id: int) -> GenerationLog | None:
    """One generation log by its id, or None when there is none."""
    return session.get(GenerationLog, generation_id)


def list_generations(session: Session, limit: int = 20) -> list[GenerationLog]:
    """The `limit` most recent generation logs, newest first."""
    stmt = (
        select(GenerationLog)
        .order_by(GenerationLog.created_at.desc(), GenerationLog.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
