"""The index rebuild job: corpus -> encoder -> FAISS index + database rows, atomically.

Everything that can fail on bad input (reading, preparing, embedding) happens before anything is
written. Then one database transaction upserts the records, writes the index into a new build
directory (itself written atomically) and activates the build; if the transaction fails the new
directory is removed, so the previous index and database stay as they were.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import db as store
from index import VectorIndex
from regen.corpus import CorpusRecord, load_folder, load_ptbxl
from regen.dataset import prepare_records
from regen.encoder import Encoder
from regen.errors import DataError
from regen.settings import Settings


@dataclass(frozen=True)
class BuildResult:
    build_id: str | None           # None when the active build was already up to date
    count: int
    skipped: tuple[str, ...]       # messages for records left out (only with skip_bad)
    timings: dict[str, float]
    path: str
    up_to_date: bool = False


def load_corpus(data: str | Path, source: str = "ptbxl", folds: str | None = "1-8",
                rate: int = 100, reports_csv: str | Path | None = None) -> list[CorpusRecord]:
    if source == "ptbxl":
        records = load_ptbxl(data, folds=folds, rate=rate)
    elif source == "folder":
        records = load_folder(data, reports_csv)
    else:
        raise DataError(f"source {source!r} is unknown; expected 'ptbxl' or 'folder'")
    if not records:
        raise DataError(f"{data}: no records with signal files for folds {folds!r} at {rate} Hz; "
                        f"check the folder and --folds/--rate")
    return records


def _rows(records: Sequence[CorpusRecord], infos: Sequence[dict]) -> list[store.RecordRow]:
    rows = []
    for rec, info in zip(records, infos):
        labels = [("scp", c, w) for c, w in rec.scp.items()]
        labels += [("superclass", c, None) for c in rec.superclasses]
        labels += [(kind, value, None) for kind, value in rec.attributes]
        rows.append(store.RecordRow(
            key=rec.key, source=rec.source, path=str(Path(rec.path).resolve()), fs=info["fs"],
            n_leads=len(info["leads"]), lead_names=list(info["leads"]),
            n_samples=info["n_samples"], patient_id=rec.patient_id, split=rec.split,
            meta={}, reports=dict(rec.reports), labels=labels))
    return rows


def content_hash(encoder: Encoder, factory: str, records: Sequence[CorpusRecord]) -> str:
    """What a build contains: encoder, factory and the records' keys, paths and reports."""
    h = hashlib.sha256(f"{encoder.fingerprint}|{factory}".encode())
    for r in records:
        h.update(f"|{r.key}|{r.path}|{sorted(r.reports.items())}|{sorted(r.scp.items())}"
                 f"|{r.attributes}".encode())
    return h.hexdigest()[:16]


def rebuild(settings: Settings, records: Sequence[CorpusRecord], *, data_source: str,
            encoder: Encoder | None = None, skip_bad: bool = False, force: bool = False,
            progress: bool = True, log: Callable[[str], None] = lambda m: None,
            fail_before_commit: Callable[[], None] | None = None) -> BuildResult:
    """Build and activate a new index of `records`. Idempotent: when the active build already
    holds exactly this content (same encoder, factory and records) nothing is written unless
    `force`. `fail_before_commit` is a test hook called inside the transaction."""
    t0 = time.perf_counter()
    encoder = encoder or Encoder.load(settings.encoder)
    settings.home.mkdir(parents=True, exist_ok=True)
    database = store.Database(settings.db_url)
    try:
        digest = content_hash(encoder, settings.factory, records)
        with database.session() as s:
            active = store.active_build(s)
            if active and not force and (active.params or {}).get("content") == digest \
                    and Path(active.path).exists():
                log(f"index is up to date (build {active.id}); use --force to rebuild")
                return BuildResult(None, active.count, (), {}, active.path, up_to_date=True)
        prepared, kept, errors = prepare_records(records, encoder.cfg, skip_bad=skip_bad,
                                                 progress=progress)
        for msg in errors:
            log(f"skipped: {msg}")
        if not kept:
            raise DataError(f"{data_source}: none of {len(records)} records could be read")
        t_read = time.perf_counter()
        vectors = np.zeros((len(prepared), encoder.dim), dtype=np.float32)
        step = max(1, settings.batch_size)
        with tqdm(total=len(prepared), desc="embedding", unit="ecg", disable=not progress,
                  leave=False) as bar:
            for s0 in range(0, len(prepared), step):
                chunk = prepared[s0:s0 + step]
                vectors[s0:s0 + len(chunk)] = encoder.embed(chunk, batch_size=step)
                bar.update(len(chunk))
        t_embed = time.perf_counter()
        infos = [{"fs": p.source_fs, "leads": p.source_leads, "n_samples": p.source_samples}
                 for p in prepared]
        build_dir = settings.index_dir / f"build-{time.strftime('%Y%m%d-%H%M%S')}-{digest[:8]}"
        try:
            with database.session() as s:
                ids = store.upsert_records(s, _rows(kept, infos))
                id_arr = np.array([ids[r.key] for r in kept], dtype=np.int64)
                vi = VectorIndex.create(encoder.dim, factory=settings.factory, metric="ip",
                                        encoder_fingerprint=encoder.fingerprint,
                                        use_gpu=settings.use_gpu)
                vi.add(vectors, id_arr)
                vi.save(build_dir)
                t_index = time.perf_counter()
                timings = {"read_s": round(t_read - t0, 3), "embed_s": round(t_embed - t_read, 3),
                           "index_s": round(t_index - t_embed, 3)}
                build_id = store.create_build(
                    s, path=str(build_dir.resolve()), encoder_fingerprint=encoder.fingerprint,
                    factory=settings.factory, metric="ip", dim=encoder.dim, count=len(kept),
                    data_source=data_source,
                    params={"content": digest, "encoder": str(settings.encoder),
                            "skipped": len(errors)},
                    timings=timings, record_ids=id_arr.tolist(), activate=True)
                if fail_before_commit:
                    fail_before_commit()
        except BaseException:
            shutil.rmtree(build_dir, ignore_errors=True)
            raise
        timings["total_s"] = round(time.perf_counter() - t0, 3)
        log(f"build {build_id}: {len(kept)} ECGs indexed in {timings['total_s']:.1f} s "
            f"(read {timings['read_s']:.1f}, embed {timings['embed_s']:.1f}, "
            f"index {timings['index_s']:.2f})")
        return BuildResult(build_id, len(kept), tuple(errors), timings, str(build_dir))
    finally:
        database.dispose()
