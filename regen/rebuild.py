"""The index rebuild job: corpus -> encoder -> FAISS index + database rows, atomically.

The corpus is read, prepared and embedded `chunk` records at a time. Each embedded chunk is
written under HOME/staging/<content hash>/ by an atomic rename, so a job killed at any point
and restarted with `resume` embeds only the chunks it had not finished, and ends with the same
vectors, bit for bit, as an uninterrupted run (chunk boundaries, not timing, decide what is
embedded together). Nothing readers use is touched until every record is embedded. Then one
database transaction upserts the records, writes the index into a new build directory and
activates the build; if it fails the new directory is removed, so the previous index and
database stay as they were (the staged chunks stay, for a resume).

`add` is the incremental form: it embeds only the records the active build lacks and writes a
new build holding the active index's vectors plus theirs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import db as store
from index import VectorIndex
from regen.builds import STAGING_DIR, home_lock
from regen.corpus import CorpusRecord, load_folder, load_mimic_ecg, load_ptbxl
from regen.dataset import prepare_records
from regen.encoder import Encoder
from regen.engine import StagedChunk, embed_chunk, open_runner
from regen.errors import ConfigError, DataError, IndexMismatchError, StorageError
from regen.settings import ENGINES, Settings

DEFAULT_CHUNK = 1024
Log = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    build_id: str | None           # None when nothing was written (already up to date)
    count: int                     # vectors in the resulting active build
    skipped: tuple[str, ...]       # messages for records left out (only with skip_bad)
    timings: dict[str, Any]         # seconds per stage, and the engine, workers, chunks
    path: str
    up_to_date: bool = False
    resumed: int = 0               # chunks taken from an interrupted run's staging
    added: int = 0                 # records embedded by this job


@dataclass(frozen=True)
class Embedded:
    """The embedding step's output for the records that could be read, in corpus order.

    vectors: (N, dim) float32 unit norm; infos: per record, the recording as read
    (fs, lead names, samples); errors: messages of records left out (skip_bad).
    """

    records: list[CorpusRecord]
    vectors: np.ndarray
    infos: list[dict[str, Any]]
    errors: list[str]
    chunks: int
    resumed: int
    timings: dict[str, float]


def load_corpus(data: str | Path, source: str = "ptbxl", folds: str | None = "1-8",
                rate: int = 100, reports_csv: str | Path | None = None) -> list[CorpusRecord]:
    if source == "ptbxl":
        records = load_ptbxl(data, folds=folds, rate=rate)
    elif source == "folder":
        records = load_folder(data, reports_csv)
    elif source == "mimic":
        records = load_mimic_ecg(data, folds=folds)
    else:
        raise DataError(f"source {source!r} is unknown; expected 'ptbxl', 'mimic' or 'folder'")
    if not records:
        raise DataError(f"{data}: no {source} records with signal files and reports for folds "
                        f"{folds!r}" + (f" at {rate} Hz" if source == "ptbxl" else "")
                        + "; check the folder, --source and --folds/--rate")
    return records


def _rows(records: Sequence[CorpusRecord], infos: Sequence[dict]) -> list[store.RecordRow]:
    rows = []
    for rec, info in zip(records, infos):
        labels: list[tuple[str, str, float | None]] = [("scp", c, w) for c, w in rec.scp.items()]
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


def _check_unique(records: Sequence[CorpusRecord]) -> None:
    counts = Counter(r.key for r in records)
    if len(counts) != len(records):
        dup = next(k for k, n in counts.items() if n > 1)
        raise DataError(f"the corpus lists record {dup!r} more than once; expected each key "
                        "once (check the report CSV for repeated paths)")


# -- staged, resumable embedding ------------------------------------------------------------

def _staging_dir(settings: Settings, digest: str, meta: dict[str, Any], resume: bool,
                 log: Log) -> Path:
    """HOME/staging/<digest>, reused when `resume` and it was made with the same `meta`."""
    path = settings.home / STAGING_DIR / digest
    meta_file = path / "staging.json"
    if path.exists():
        try:
            old = json.loads(meta_file.read_text("utf-8"))
        except (OSError, ValueError):
            old = None
        if resume and old == meta:
            return path
        why = ("made with other settings (chunk size, skip_bad)" if resume
               else "--resume not given")
        log(f"discarding the staged chunks of an earlier run in {path} ({why})")
        shutil.rmtree(path)
    elif resume:
        log("nothing staged to resume; embedding from the first chunk")
    path.mkdir(parents=True)
    _write_atomic(meta_file, json.dumps(meta, sort_keys=True).encode())
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _embed_staged(settings: Settings, encoder: Encoder, records: Sequence[CorpusRecord],
                  digest: str, *, chunk: int, workers: int, skip_bad: bool, resume: bool,
                  progress: bool, log: Log, what: str) -> tuple[Path, Embedded]:
    """Embed `records` through HOME/staging/<digest> (resumable); at least one must read."""
    meta = {"content": digest, "chunk": chunk, "records": len(records),
            "skip_bad": skip_bad, "encoder": encoder.fingerprint}
    staging = _staging_dir(settings, digest, meta, resume, log)
    emb = embed_records(records, encoder, staging, chunk=chunk, workers=workers,
                        skip_bad=skip_bad, batch_size=max(1, settings.batch_size),
                        engine=settings.engine, engine_address=settings.engine_address,
                        progress=progress, log=log)
    for msg in emb.errors:
        log(f"skipped: {msg}")
    if not emb.records:
        raise DataError(f"{what}: none of {len(records)} records could be read")
    return staging, emb


def _chunk_file(staging: Path, i: int) -> Path:
    return staging / f"chunk-{i:06d}.npz"


def _save_chunk(path: Path, chunk: StagedChunk) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        with tmp.open("wb") as fh:
            np.savez(fh, **chunk.arrays())  # type: ignore[arg-type]  # numpy's stub: allow_pickle
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # a reader (or a resume) sees the whole chunk or none of it
    except OSError as exc:  # a full disk above all: leave no partial file filling it further
        tmp.unlink(missing_ok=True)
        raise StorageError(f"{path.parent}: cannot stage a chunk ({exc.strerror or exc}); "
                           f"free space (or fix permissions) there, then rerun with --resume "
                           f"to keep the chunks already embedded") from exc


def _load_chunk(path: Path, records: Sequence[CorpusRecord], dim: int) -> dict | None:
    """A staged chunk of `records`, or None when it is absent or not theirs."""
    try:
        with np.load(path) as z:
            chunk = {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError):
        return None
    keys = [str(k) for k in chunk.get("keys", [])]
    have = set(keys)
    ok = ("vectors" in chunk and chunk["vectors"].shape == (len(keys), dim)
          and keys == [r.key for r in records if r.key in have]   # a subsequence, in order
          and len(keys) + len(chunk.get("errors", [])) == len(records))
    return chunk if ok else None


def _pool_context() -> Any:
    import multiprocessing

    # fork starts a worker in milliseconds; spawn would import torch again in each (seconds).
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")


def embed_records(records: Sequence[CorpusRecord], encoder: Encoder, staging: Path, *,
                  chunk: int = DEFAULT_CHUNK, workers: int = 1, skip_bad: bool = False,
                  batch_size: int = 256, engine: str = "local", engine_address: str = "",
                  progress: bool = True, log: Log = lambda m: None) -> Embedded:
    """Read, prepare and embed `records` chunk by chunk, staging each chunk in `staging`.

    Chunks already staged there are loaded instead of embedded. With the "local" engine and
    `workers` > 1 each chunk's records are read and prepared by that many processes (the same
    function on contiguous slices, concatenated in order) while the previous chunk is
    embedded; with "dask" or "ray" each chunk is one `embed_chunk` task on a cluster of
    `workers` local processes (or the cluster at `engine_address`). Every engine gives the
    same vectors as one process.
    """
    if chunk < 1 or workers < 1:
        raise ConfigError(f"chunk={chunk}, workers={workers}; expected both >= 1")
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is unknown; expected one of {list(ENGINES)}")
    staging.mkdir(parents=True, exist_ok=True)
    spans = [(a, min(a + chunk, len(records))) for a in range(0, len(records), chunk)]
    todo = [i for i, (a, b) in enumerate(spans)
            if _load_chunk(_chunk_file(staging, i), records[a:b], encoder.dim) is None]
    resumed = len(spans) - len(todo)
    if resumed:
        log(f"resuming: {resumed} of {len(spans)} chunks were embedded by an earlier run")
    t_read = t_embed = 0.0
    t_start = time.perf_counter()
    with tqdm(total=len(records), desc="embedding", unit="ecg", disable=not progress,
              leave=False, initial=sum(b - a for i, (a, b) in enumerate(spans)
                                       if i not in todo)) as bar:
        if engine == "local":
            results = _embed_local(records, spans, todo, encoder, workers=workers,
                                   skip_bad=skip_bad, batch_size=batch_size)
        else:
            results = _embed_cluster(records, spans, todo, encoder, engine=engine,
                                     address=engine_address, workers=workers,
                                     skip_bad=skip_bad, batch_size=batch_size, log=log)
        for i, staged in results:
            _save_chunk(_chunk_file(staging, i), staged)   # the checkpoint: one chunk
            t_read, t_embed = t_read + staged.read_s, t_embed + staged.embed_s
            bar.update(spans[i][1] - spans[i][0])
    by_key = {r.key: r for r in records}
    kept, vecs, infos, errs = [], [], [], []
    for i, (a, b) in enumerate(spans):
        z = _load_chunk(_chunk_file(staging, i), records[a:b], encoder.dim)
        assert z is not None, f"chunk {i} was staged but cannot be read back"
        kept += [by_key[str(k)] for k in z["keys"]]
        vecs.append(z["vectors"])
        infos += [{"fs": float(fs), "leads": tuple(ld.split(",")) if ld else (),
                   "n_samples": int(n)} for fs, ld, n in zip(z["fs"], z["leads"], z["n_samples"])]
        errs += [str(e) for e in z["errors"]]
    vectors = np.concatenate(vecs) if vecs else np.zeros((0, encoder.dim), np.float32)
    return Embedded(kept, vectors, infos, errs, len(spans), resumed,
                    {"read_s": round(t_read, 3), "embed_s": round(t_embed, 3),
                     "embed_wall_s": round(time.perf_counter() - t_start, 3)})


def _embed_local(records: Sequence[CorpusRecord], spans: Sequence[tuple[int, int]],
                 todo: Sequence[int], encoder: Encoder, *, workers: int, skip_bad: bool,
                 batch_size: int) -> Iterator[tuple[int, StagedChunk]]:
    """This process embeds; with `workers` > 1 a process pool reads and prepares the next
    chunk meanwhile."""
    if workers == 1:
        for i in todo:
            a, b = spans[i]
            yield i, embed_chunk(records[a:b], encoder, skip_bad, batch_size)
        return
    pool = ProcessPoolExecutor(min(workers, max(b - a for a, b in spans)),
                               mp_context=_pool_context())

    def submit(i: int) -> list[Future]:
        a, b = spans[i]
        cuts = np.linspace(a, b, min(workers, b - a) + 1).astype(int)
        return [pool.submit(prepare_records, records[lo:hi], encoder.cfg, skip_bad=skip_bad,
                            progress=False) for lo, hi in zip(cuts[:-1], cuts[1:])]

    try:
        pending = submit(todo[0]) if todo else []
        for j, i in enumerate(todo):
            futures, pending = pending, submit(todo[j + 1]) if j + 1 < len(todo) else []
            t0 = time.perf_counter()
            prepared, errors = [], []
            for f in futures:
                p, _, e = f.result()
                prepared += p
                errors += e
            t1 = time.perf_counter()
            vectors = encoder.embed(prepared, batch_size=batch_size)
            yield i, StagedChunk.of(prepared, vectors, errors, read_s=t1 - t0,
                                    embed_s=time.perf_counter() - t1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _embed_cluster(records: Sequence[CorpusRecord], spans: Sequence[tuple[int, int]],
                   todo: Sequence[int], encoder: Encoder, *, engine: str, address: str,
                   workers: int, skip_bad: bool, batch_size: int,
                   log: Log) -> Iterator[tuple[int, StagedChunk]]:
    if not todo:
        return
    with open_runner(engine, address, workers, log=log) as runner:
        jobs = [(i, records[spans[i][0]:spans[i][1]]) for i in todo]
        yield from runner.run(jobs, encoder, skip_bad, batch_size)


# -- writing a build ------------------------------------------------------------------------

def _new_build_dir(settings: Settings, digest: str) -> Path:
    # The random part keeps two builds of the same content in the same second apart.
    return settings.index_dir / (f"build-{time.strftime('%Y%m%d-%H%M%S')}-{digest[:8]}-"
                                 f"{uuid.uuid4().hex[:6]}")


def _write_build(settings: Settings, database: store.Database, encoder: Encoder,
                 emb: Embedded, vi: VectorIndex, *, factory: str, digest: str,
                 data_source: str, params: dict[str, Any], base_ids: Sequence[int],
                 timings: dict[str, Any], t_start: float,
                 fail_before_commit: Callable[[], None] | None) -> tuple[str, Path]:
    """One transaction: upsert the records, add their vectors to `vi`, save it into a new
    build directory and activate the build. On failure the directory is removed."""
    build_dir = _new_build_dir(settings, digest)
    t0 = time.perf_counter()
    try:
        with database.session() as s:
            ids = store.upsert_records(s, _rows(emb.records, emb.infos))
            id_arr = np.array([ids[r.key] for r in emb.records], dtype=np.int64)
            vi.add(emb.vectors, id_arr)
            vi.save(build_dir)
            timings["index_s"] = round(time.perf_counter() - t0, 3)
            timings["total_s"] = round(time.perf_counter() - t_start, 3)
            build_id = store.create_build(
                s, path=str(build_dir.resolve()), encoder_fingerprint=encoder.fingerprint,
                factory=factory, metric="ip", dim=encoder.dim, count=vi.ntotal,
                data_source=data_source,
                params={"content": digest, "encoder": str(settings.encoder),
                        "skipped": len(emb.errors), **params},
                timings=timings, record_ids=[*base_ids, *id_arr.tolist()], activate=True)
            if fail_before_commit:
                fail_before_commit()
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    return build_id, build_dir


@contextmanager
def _job(settings: Settings, records: Sequence[CorpusRecord], encoder: Encoder | None,
         name: str) -> Iterator[tuple[Encoder, store.Database]]:
    """What every index job does around its work: unique keys, the encoder, the database, and
    the home's job lock (one rebuild/add/gc at a time); the database is closed on the way out."""
    _check_unique(records)
    encoder = encoder or Encoder.load(settings.encoder)
    settings.home.mkdir(parents=True, exist_ok=True)
    database = settings.open_database()
    try:
        with home_lock(settings.home, name):
            yield encoder, database
    finally:
        database.dispose()


def rebuild(settings: Settings, records: Sequence[CorpusRecord], *, data_source: str,
            encoder: Encoder | None = None, skip_bad: bool = False, force: bool = False,
            resume: bool = False, chunk: int = DEFAULT_CHUNK, workers: int = 1,
            search_params: dict[str, float] | None = None, progress: bool = True,
            log: Log = lambda m: None,
            fail_before_commit: Callable[[], None] | None = None) -> BuildResult:
    """Build and activate a new index of `records`. Idempotent: when the active build already
    holds exactly this content (same encoder, factory and records) nothing is written unless
    `force`. `resume` reuses the chunks a killed run of the same content staged (without it
    they are discarded). `search_params` (efSearch, nprobe, ...) are saved with the index.
    `fail_before_commit` is a test hook called inside the transaction."""
    t0 = time.perf_counter()
    with _job(settings, records, encoder, "rebuild") as (encoder, database):
        search = ",".join(f"{k}={v:g}" for k, v in sorted((search_params or {}).items()))
        digest = content_hash(encoder, f"{settings.factory}|{search}" if search
                              else settings.factory, records)
        with database.session() as s:
            active = store.active_build(s)
            if active and not force and (active.params or {}).get("content") == digest \
                    and Path(active.path).exists():
                log(f"index is up to date (build {active.id}); use --force to rebuild")
                return BuildResult(None, active.count, (), {}, active.path, up_to_date=True)
        # Staged by what the vectors depend on, so a resume may change the factory.
        stage = content_hash(encoder, "", records)
        staging, emb = _embed_staged(settings, encoder, records, stage, chunk=chunk,
                                     workers=workers, skip_bad=skip_bad, resume=resume,
                                     progress=progress, log=log, what=data_source)
        vi = VectorIndex.create(encoder.dim, factory=settings.factory, metric="ip",
                                encoder_fingerprint=encoder.fingerprint,
                                use_gpu=settings.use_gpu)
        timings = {**emb.timings,
                   "engine": settings.engine, "workers": workers, "chunks": emb.chunks,
                   "resumed_chunks": emb.resumed}
        if search_params:
            vi.set_search_params(**search_params)  # kept through add, save and load
        build_id, build_dir = _write_build(
            settings, database, encoder, emb, vi, factory=settings.factory, digest=digest,
            data_source=data_source, params={"search": dict(search_params or {})},
            base_ids=(), timings=timings, t_start=t0, fail_before_commit=fail_before_commit)
        shutil.rmtree(staging, ignore_errors=True)
    log(f"build {build_id}: {len(emb.records)} ECGs indexed in {timings['total_s']:.1f} s "
        f"(read {timings['read_s']:.1f}, embed {timings['embed_s']:.1f}, "
        f"index {timings['index_s']:.2f}; {emb.resumed} of {emb.chunks} chunks resumed)")
    return BuildResult(build_id, len(emb.records), tuple(emb.errors), timings, str(build_dir),
                       resumed=emb.resumed, added=len(emb.records))


def add(settings: Settings, records: Sequence[CorpusRecord], *, data_source: str,
        encoder: Encoder | None = None, skip_bad: bool = False, resume: bool = False,
        chunk: int = DEFAULT_CHUNK, workers: int = 1, progress: bool = True,
        log: Log = lambda m: None) -> BuildResult:
    """Embed only the records whose key the active build lacks and activate a new build
    holding the active index (loaded from disk, so any factory works and nothing is embedded
    again) plus their vectors. Adding records that are all present writes nothing."""
    t0 = time.perf_counter()
    with _job(settings, records, encoder, "add") as (encoder, database):
        with database.session() as s:
            active = store.active_build(s)
            if active is None:
                raise IndexMismatchError(f"{settings.home}: no active build to add to; "
                                         "build one with `regen index rebuild --data DIR`")
            base_id, base_path, factory = active.id, active.path, active.factory
            base_fp, base_count = active.encoder_fingerprint, active.count
            base_search = dict((active.params or {}).get("search") or {})
            present = store.build_keys(s, active.id)
            base_ids = store.build_record_ids(s, active.id)
        if base_fp != encoder.fingerprint:
            raise IndexMismatchError(
                f"the active build {base_id} was embedded by encoder {base_fp!r}, the "
                f"configured encoder is {encoder.fingerprint!r}; adding would mix two "
                "encoders' embeddings, so run `regen index rebuild` instead")
        if not (Path(base_path) / "manifest.json").exists():
            raise IndexMismatchError(
                f"the active build {base_id} has no index at {base_path}; activate another "
                "build (`regen index list`) or run `regen index rebuild`")
        new = [r for r in records if r.key not in present]
        if not new:
            log(f"nothing to add: all {len(records)} records are already in build "
                f"{base_id}")
            return BuildResult(None, base_count, (), {}, base_path, up_to_date=True)
        log(f"adding {len(new)} of {len(records)} records to build {base_id} "
            f"({base_count} vectors, factory {factory!r})")
        digest = hashlib.sha256(
            f"add|{base_id}|{content_hash(encoder, factory, new)}".encode()).hexdigest()[:16]
        staging, emb = _embed_staged(settings, encoder, new, digest, chunk=chunk,
                                     workers=workers, skip_bad=skip_bad, resume=resume,
                                     progress=progress, log=log,
                                     what=f"{data_source} (new records)")
        vi = VectorIndex.load(base_path, expected_fingerprint=encoder.fingerprint,
                              use_gpu=settings.use_gpu)
        timings = {**emb.timings,
                   "engine": settings.engine, "workers": workers, "chunks": emb.chunks,
                   "resumed_chunks": emb.resumed}
        build_id, build_dir = _write_build(
            settings, database, encoder, emb, vi, factory=factory, digest=digest,
            data_source=data_source,
            params={"base_build": base_id, "added": len(emb.records),
                    "search": base_search},
            base_ids=base_ids, timings=timings, t_start=t0, fail_before_commit=None)
        shutil.rmtree(staging, ignore_errors=True)
    log(f"build {build_id}: added {len(emb.records)} ECGs to {base_count} in "
        f"{timings['total_s']:.1f} s")
    return BuildResult(build_id, base_count + len(emb.records), tuple(emb.errors), timings,
                       str(build_dir), resumed=emb.resumed, added=len(emb.records))
