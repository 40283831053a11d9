"""Versioned index builds: list them, switch the active one, delete old ones, and the lock that
keeps two index jobs from writing one home at once.

A build is a directory under HOME/indexes (the FAISS index and its manifest) plus a database
row naming its records. Readers load the active build once (`Regen.open`) and keep it, so
switching or deleting builds never disturbs a reader that is already open.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import db as store
from regen.errors import IndexMismatchError, RegenError
from regen.settings import Settings

LOCK_FILE = ".index-job.lock"
STAGING_DIR = "staging"


@dataclass(frozen=True)
class BuildInfo:
    """One build as `regen index list` shows it; `exists` is whether its directory is there."""

    id: str
    active: bool
    status: str
    count: int
    factory: str
    encoder: str                  # the encoder fingerprint the vectors came from
    created: str                  # ISO-8601 UTC
    timings: dict[str, Any]
    path: str
    exists: bool
    data_source: str
    params: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GcResult:
    """What `gc` deleted (or, with dry_run, would delete) and what it kept."""

    deleted: tuple[BuildInfo, ...]
    kept: tuple[BuildInfo, ...]
    orphans: tuple[str, ...]      # build directories no database row names
    staging: tuple[str, ...]      # embedding progress of unfinished jobs (deleted with staging)
    freed_bytes: int
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        return {"deleted": [b.to_json() for b in self.deleted],
                "kept": [b.to_json() for b in self.kept], "orphans": list(self.orphans),
                "staging": list(self.staging), "freed_bytes": self.freed_bytes,
                "dry_run": self.dry_run}


def _info(b: store.IndexBuild) -> BuildInfo:
    return BuildInfo(id=b.id, active=bool(b.active), status=b.status, count=int(b.count),
                     factory=b.factory, encoder=b.encoder_fingerprint,
                     created=b.created_at.isoformat(timespec="seconds"),
                     timings=dict(b.timings or {}), path=b.path,
                     exists=(Path(b.path) / "manifest.json").exists(),
                     data_source=b.data_source, params=dict(b.params or {}))


def list_builds(settings: Settings) -> list[BuildInfo]:
    """Every build of the home, newest first."""
    database = settings.open_database()
    try:
        with database.session() as s:
            return [_info(b) for b in store.list_builds(s)]
    finally:
        database.dispose()


def _resolve(builds: list[BuildInfo], build_id: str) -> BuildInfo:
    """The build whose id is `build_id` or starts with it (a unique prefix of 6+ characters)."""
    exact = [b for b in builds if b.id == build_id]
    found = exact or ([b for b in builds if b.id.startswith(build_id)] if len(build_id) >= 6
                      else [])
    if len(found) == 1:
        return found[0]
    known = ", ".join(b.id[:12] for b in builds[:5]) or "none"
    why = "matches several builds" if found else "matches no build"
    raise RegenError(f"build id {build_id!r} {why}; known builds (newest first): {known}; "
                     "see `regen index list`")


def activate(settings: Settings, build_id: str, encoder_fingerprint: str) -> BuildInfo:
    """Make `build_id` (or a unique prefix of it) the active build, in one transaction.

    Refused, with the reason, when the build's directory is missing or when its vectors came
    from another encoder than `encoder_fingerprint` (the configured one): readers would
    otherwise compare embeddings of two different models.
    """
    build = _resolve(list_builds(settings), build_id)
    manifest = Path(build.path) / "manifest.json"
    if not build.exists or not (Path(build.path) / "index.faiss").exists():
        raise IndexMismatchError(
            f"build {build.id} cannot be activated: its directory {build.path} is missing or "
            "incomplete (deleted by hand or by `regen index gc`?); pick another build from "
            "`regen index list` or run `regen index rebuild`")
    try:
        built_by = {build.encoder, json.loads(manifest.read_text("utf-8"))["encoder_fingerprint"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexMismatchError(f"build {build.id} cannot be activated: {manifest} is "
                                 f"unreadable ({exc}); pick another build or rebuild") from exc
    if built_by != {encoder_fingerprint}:
        raise IndexMismatchError(
            f"build {build.id} was embedded by encoder {sorted(built_by)[0]!r} but the "
            f"configured encoder is {encoder_fingerprint!r}; activate a build of this encoder, "
            "configure the encoder that made it (REGEN_ENCODER), or run `regen index rebuild`")
    database = settings.open_database()
    try:
        with database.session() as s:
            store.activate_build(s, build.id)
    finally:
        database.dispose()
    return next(b for b in list_builds(settings) if b.id == build.id)


def _dir_bytes(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def gc(settings: Settings, keep: int = 2, *, dry_run: bool = False,
       staging: bool = False) -> GcResult:
    """Delete the inactive builds beyond the `keep` newest inactive ones (their directory and
    database row), and build directories that no row names. The active build is never deleted,
    so `keep` counts rollback targets. With `staging`, also delete the embedding progress of
    unfinished rebuilds (`--resume` then starts over). Records stay in the database: readers
    still open on a deleted build keep answering from the index they loaded.
    """
    if keep < 0:
        raise RegenError(f"keep={keep}; expected 0 or more inactive builds to keep")
    with home_lock(settings.home, "gc", wait=False) if not dry_run else _no_lock():
        builds = list_builds(settings)
        inactive = [b for b in builds if not b.active]
        doomed, kept = inactive[keep:], [b for b in builds if b.active] + inactive[:keep]
        named = {str(Path(b.path).resolve()) for b in builds}
        idx = settings.index_dir
        orphans = sorted(str(p) for p in (idx.iterdir() if idx.exists() else ())
                         if p.is_dir() and str(p.resolve()) not in named
                         and (p.name.startswith("build-") or p.name.startswith(".tmp-")))
        stage_root = settings.home / STAGING_DIR
        stages = sorted(str(p) for p in stage_root.iterdir()) if stage_root.exists() else []
        doomed_dirs = [Path(b.path) for b in doomed] + [Path(p) for p in orphans]
        doomed_dirs += [Path(p) for p in stages] if staging else []
        freed = sum(_dir_bytes(p) for p in doomed_dirs)
        if dry_run:
            return GcResult(tuple(doomed), tuple(kept), tuple(orphans), tuple(stages), freed,
                            True)
        deleted = []
        database = settings.open_database()
        try:
            for b in doomed:
                with database.session() as s:
                    gone = store.delete_build(s, b.id)
                if gone:  # the row first: a build activated meanwhile keeps its files
                    shutil.rmtree(b.path, ignore_errors=True)
                    deleted.append(b)
        finally:
            database.dispose()
        for p in orphans + (stages if staging else []):
            shutil.rmtree(p, ignore_errors=True)
        return GcResult(tuple(deleted), tuple(kept), tuple(orphans), tuple(stages), freed, False)


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


@contextmanager
def home_lock(home: Path, job: str, *, wait: bool = False) -> Iterator[None]:
    """Hold HOME's index-job lock for the block: one rebuild, add or gc per home at a time.

    An flock, so a job killed with SIGKILL releases it with its process. Raises RegenError
    naming the holder when another job has it (unless `wait`).
    """
    home.mkdir(parents=True, exist_ok=True)
    path = home / LOCK_FILE
    fh = path.open("a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise RegenError(f"{home}: another index job is running ({holder}); wait for it "
                             f"to finish, then run {job} again (lock: {path})") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{job}, pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        fh.close()  # closing the descriptor releases the flock
