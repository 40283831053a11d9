"""Persistence for regen: records, reports, labels, index builds and generation logs.

SQLAlchemy only; nothing here knows about ECG signals, encoders or FAISS. Open a `Database`, and
do each unit of work inside `with db.session() as s:` using the functions below.
"""

from db.database import (
    Database,
    DatabaseError,
    current_revision,
    downgrade,
    mask_url,
    upgrade,
)
from db.migrate import HEAD_REVISION
from db.models import (
    Base,
    BuildMember,
    GenerationLog,
    IndexBuild,
    Label,
    Record,
    Report,
)
from db.store import (
    LabelTuple,
    RecordRow,
    RecordView,
    activate_build,
    active_build,
    build_keys,
    build_record_ids,
    create_build,
    delete_build,
    fetch_records,
    get_generation,
    list_builds,
    list_generations,
    log_generation,
    record_id_for_key,
    upsert_records,
)

__all__ = [
    "Base",
    "BuildMember",
    "Database",
    "DatabaseError",
    "GenerationLog",
    "HEAD_REVISION",
    "IndexBuild",
    "Label",
    "LabelTuple",
    "Record",
    "RecordRow",
    "RecordView",
    "Report",
    "activate_build",
    "active_build",
    "build_keys",
    "build_record_ids",
    "create_build",
    "current_revision",
    "delete_build",
    "downgrade",
    "fetch_records",
    "get_generation",
    "list_builds",
    "list_generations",
    "log_generation",
    "mask_url",
    "record_id_for_key",
    "upgrade",
    "upsert_records",
]
