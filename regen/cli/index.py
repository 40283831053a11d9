"""`regen index ...` and `regen db ...`: building, versioning and tuning the index; migrations."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from regen.cli.common import (
    CorpusDir,
    Home,
    Json,
    Rate,
    ReportsCsv,
    SkipBad,
    Source,
    _err,
    db_app,
    index_app,
)
from regen.errors import RegenError

if TYPE_CHECKING:
    from regen.rebuild import BuildResult
    from regen.settings import Settings


Chunk = Annotated[int, typer.Option(help="records embedded and staged together (the unit "
                                          "a resumed job skips)")]


Workers = Annotated[int, typer.Option(help="local engine: processes reading and preparing "
                                            "the records; dask/ray: local cluster workers")]


Engine = Annotated[str | None, typer.Option(help="where chunks are embedded: local (this "
                                                 "process), dask or ray (a cluster; setting "
                                                 "engine)")]


EngineAddress = Annotated[str | None, typer.Option(help="cluster to use instead of a local one: "
                                                        "tcp://HOST:8786 (dask) or ray://HOST:"
                                                        "10001 (setting engine_address)")]


def _search_params(items: list[str] | None) -> dict[str, float]:
    from regen.settings import parse_params

    return parse_params(",".join(items or []), "--search-param")


def _build_json(res: BuildResult) -> dict:
    from dataclasses import asdict

    return asdict(res)


@index_app.command("rebuild")
def index_rebuild(data: CorpusDir,
                  source: Source = "ptbxl",
                  folds: Annotated[str, typer.Option(help="strat_folds for the corpus")] = "1-8",
                  rate: Rate = 100,
                  reports: ReportsCsv = None,
                  factory: Annotated[str | None, typer.Option(
                      help="FAISS factory string")] = None,
                  search_param: Annotated[list[str] | None, typer.Option(
                      help="FAISS parameter saved with the index, NAME=VALUE (repeatable): "
                           "efSearch, nprobe, k_factor_rf as `regen index tune` found; "
                           "efConstruction (HNSW) applies while building (default: the "
                           "search_params setting)")] = None,
                  skip_bad: SkipBad = False,
                  force: Annotated[bool, typer.Option(help="rebuild even if up to date")] = False,
                  resume: Annotated[bool, typer.Option(
                      help="reuse the chunks an interrupted run of the same content "
                           "embedded")] = False,
                  chunk: Chunk = 1024, workers: Workers = 1, engine: Engine = None,
                  engine_address: EngineAddress = None,
                  home: Home = None, json_out: Json = False) -> None:
    """Embed a corpus and atomically replace the active index and database rows."""
    from regen.rebuild import load_corpus, rebuild
    from regen.settings import load_settings

    settings = load_settings(home, factory=factory, engine=engine,
                             engine_address=engine_address)
    records = load_corpus(data, source, folds, rate, reports)
    _err(f"corpus: {len(records)} records from {data} (folds {folds}, {rate} Hz)")
    res = rebuild(settings, records, data_source=f"{source}:{data}:{folds}:{rate}",
                  skip_bad=skip_bad, force=force, resume=resume, chunk=chunk, workers=workers,
                  search_params=(_search_params(search_param) if search_param
                                 else settings.search_param_values),
                  progress=sys.stderr.isatty(),
                  log=_err)
    _fit_findings(settings)
    if json_out:
        typer.echo(json.dumps(_build_json(res)))
    else:
        typer.echo(f"{'up to date' if res.up_to_date else 'built'}: {res.count} ECGs -> "
                   f"{res.path}")


def _fit_findings(settings: Settings) -> None:
    """Fit (or load) the active build's findings and answer models and make its text index
    now (CV in the corpus; MiniLM over its reports), so the first report does not wait for
    them; a build that cannot hold them (too few folds or records) is fitted, or refused, on
    first use instead."""
    from regen.api import Regen

    try:
        with Regen.from_settings(settings) as rg:
            _ = (rg.diagnoser, rg.answers, rg.text_index)   # loading them fits and saves them
    except (RegenError, ValueError) as exc:
        _err(f"findings not fitted now ({exc}); they are fitted on first use")


@index_app.command("add")
def index_add(data: CorpusDir,
              source: Source = "ptbxl",
              folds: Annotated[str, typer.Option(help="strat_folds to add")] = "1-8",
              rate: Rate = 100,
              reports: ReportsCsv = None,
              skip_bad: SkipBad = False,
              resume: Annotated[bool, typer.Option(
                  help="reuse the chunks an interrupted add of the same records "
                       "embedded")] = False,
              chunk: Chunk = 1024, workers: Workers = 1, engine: Engine = None,
              engine_address: EngineAddress = None,
              home: Home = None, json_out: Json = False) -> None:
    """Embed only the records the active build lacks; activate active + new as a new build."""
    from regen.rebuild import add, load_corpus
    from regen.settings import load_settings

    settings = load_settings(home, engine=engine, engine_address=engine_address)
    records = load_corpus(data, source, folds, rate, reports)
    _err(f"corpus: {len(records)} records from {data} (folds {folds}, {rate} Hz)")
    res = add(settings, records, data_source=f"{source}:{data}:{folds}:{rate}",
              skip_bad=skip_bad, resume=resume, chunk=chunk, workers=workers,
              progress=sys.stderr.isatty(), log=_err)
    _fit_findings(settings)
    if json_out:
        typer.echo(json.dumps(_build_json(res)))
    elif res.up_to_date:
        typer.echo(f"nothing to add: the active build already holds all {len(records)} "
                   f"records ({res.count} ECGs)")
    else:
        typer.echo(f"added {res.added}: {res.count} ECGs -> {res.path}")


@index_app.command("list")
def index_list(home: Home = None, json_out: Json = False) -> None:
    """List the builds, newest first: the active one is marked with *."""
    from regen.builds import list_builds
    from regen.settings import load_settings

    builds = list_builds(load_settings(home))
    if json_out:
        typer.echo(json.dumps([b.to_json() for b in builds]))
        return
    if not builds:
        _err("no builds yet; run `regen index rebuild --data DIR`")
    typer.echo(f"  {'id':<12} {'created':<25} {'status':<7} {'count':>8} {'factory':<22} "
               f"{'encoder':<12} {'total s':>8}  path")
    for b in builds:
        total = b.timings.get("total_s")
        typer.echo(f"{'*' if b.active else ' '} {b.id[:12]:<12} {b.created:<25} {b.status:<7} "
                   f"{b.count:>8} {b.factory[:22]:<22} {b.encoder[:12]:<12} "
                   f"{'-' if total is None else f'{total:.1f}':>8}  "
                   f"{b.path}{'' if b.exists else '  (missing)'}")


@index_app.command("activate")
def index_activate(build_id: Annotated[str, typer.Argument(help="build id (or a unique "
                                                           "prefix of 6+ characters)")],
                   home: Home = None, json_out: Json = False) -> None:
    """Make another build the active one (readers opened afterwards use it)."""
    from regen.builds import activate
    from regen.encoder import Encoder
    from regen.settings import load_settings

    settings = load_settings(home)
    b = activate(settings, build_id, Encoder.load(settings.encoder).fingerprint)
    if json_out:
        typer.echo(json.dumps(b.to_json()))
    else:
        typer.echo(f"active: {b.id} ({b.count} ECGs, {b.factory}) -> {b.path}")


@index_app.command("gc")
def index_gc(keep: Annotated[int, typer.Option(help="inactive builds to keep (newest "
                                               "first); the active one is always kept")] = 2,
             dry_run: Annotated[bool, typer.Option(help="only say what would be deleted")]
             = False,
             staging: Annotated[bool, typer.Option(help="also delete the staged chunks of "
                                                   "interrupted jobs")] = False,
             home: Home = None, json_out: Json = False) -> None:
    """Delete old inactive builds (directory and database row) and orphaned directories."""
    from regen.builds import gc
    from regen.settings import load_settings

    res = gc(load_settings(home), keep, dry_run=dry_run, staging=staging)
    served = [b.id for b in res.deleted if b.status == "ready"]
    if served:  # gc cannot see running servers; say what deleting a once-active build means
        _err(f"warning: {'would delete' if dry_run else 'deleted'} build(s) {', '.join(served)}, "
             f"which were active at some point: a server or process opened on one of them "
             f"answers from the copy it loaded until restarted, and can no longer reopen it; "
             f"restart such servers (they then open the active build)")
    if json_out:
        typer.echo(json.dumps(res.to_json()))
        return
    verb = "would delete" if dry_run else "deleted"
    for b in res.deleted:
        typer.echo(f"{verb} build {b.id} ({b.count} ECGs, {b.created}) {b.path}")
    for p in res.orphans:
        typer.echo(f"{verb} orphaned directory {p}")
    for p in res.staging:
        typer.echo(f"{verb if staging else 'kept (use --staging)'} staged chunks {p}")
    typer.echo(f"{verb} {len(res.deleted)} build(s), {res.freed_bytes / 2**20:.1f} MiB; kept "
               f"{len(res.kept)}")


@index_app.command("tune")
def index_tune(factory: Annotated[list[str] | None, typer.Option(
                   help="candidate FAISS factory (repeatable; {n}: IVF lists for the corpus "
                        "size, {m}: PQ sub-quantizers); default Flat, HNSW32, IVF{n},Flat, "
                        "IVF{n},PQ{m}x8np,RFlat")] = None,
               k: Annotated[int, typer.Option("--k", "-k", help="neighbours")] = 10,
               queries: Annotated[int, typer.Option(help="corpus vectors used as queries")]
               = 1000,
               target: Annotated[float, typer.Option(help="recall@k to reach")] = 0.95,
               max_p50_ms: Annotated[float, typer.Option(
                   help="latency budget: the least memory among candidates this fast wins")]
               = 2.0,
               home: Home = None, json_out: Json = False) -> None:
    """Measure candidate indexes on the active build's vectors and recommend one."""
    from regen.settings import load_settings
    from regen.tune import DEFAULT_FACTORIES, tune

    res = tune(load_settings(home), factories=factory or DEFAULT_FACTORIES, k=k,
               n_queries=queries, target=target, max_p50_ms=max_p50_ms, log=_err)
    if json_out:
        typer.echo(json.dumps(res.to_json()))
        return
    typer.echo(f"{res.n} vectors of {res.dim}-d, {res.queries} queries, recall@{res.k} "
               "against exact search")
    typer.echo(f"{'factory':<26} {'params':<28} {'recall':>7} {'p50 ms':>8} {'p99 ms':>8} "
               f"{'QPS':>9} {'build s':>8} {'MiB':>8}")
    for c in res.candidates:
        if c.skipped:
            typer.echo(f"{c.factory:<26} skipped: {c.skipped}")
            continue
        params = ",".join(f"{n}={v:g}" for n, v in c.params.items()) or "-"
        typer.echo(f"{c.factory:<26} {params:<28} {c.recall:>7.3f} {c.p50_ms:>8.3f} "
                   f"{c.p99_ms:>8.3f} {c.qps:>9.0f} {c.build_s:>8.2f} "
                   f"{c.bytes / 2**20:>8.1f}")
    if res.recommended is None:
        typer.echo(f"no recommendation: {res.reason}")
        return
    r = res.recommended
    typer.echo(f"recommended: {r.factory} ({res.reason})")
    flags = " ".join(f"--search-param {n}={v:g}" for n, v in r.params.items())
    typer.echo(f"apply with: regen index rebuild --data DIR --factory '{r.factory}' {flags}"
               .rstrip())
    if r.params:
        pairs = ",".join(f"{n}={v:g}" for n, v in r.params.items())
        typer.echo(f"or, if the active build is already {r.factory!r}, set search_params = "
                   f"\"{pairs}\" in HOME/config.toml (no rebuild)")


@index_app.command("info")
def index_info(home: Home = None, json_out: Json = False) -> None:
    """Show the active build and its manifest."""
    import db as store
    from index import VectorIndex
    from regen.settings import load_settings

    settings = load_settings(home)
    database = settings.open_database()
    with database.session() as s:
        builds = [{"id": b.id, "active": b.active, "status": b.status, "count": b.count,
                   "factory": b.factory, "encoder": b.encoder_fingerprint, "path": b.path,
                   "created_at": str(b.created_at), "timings": b.timings,
                   "data_source": b.data_source} for b in store.list_builds(s)]
    database.dispose()
    active = next((b for b in builds if b["active"]), None)
    if active is None:
        raise RegenError(f"{settings.home}: no active index; run `regen index rebuild --data DIR`")
    manifest = VectorIndex.load(str(active["path"])).manifest.to_json()
    info = {"home": str(settings.home), "database": store.mask_url(settings.db_url),
            "active": active, "manifest": manifest, "builds": len(builds)}
    if json_out:
        typer.echo(json.dumps(info, default=str))
    else:
        for key, val in info.items():
            typer.echo(f"{key}: {val}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="target revision")] = "head",
               home: Home = None) -> None:
    """Migrate the database (SQLite or PostgreSQL) to a revision; opening one does this too."""
    import db as store
    from regen.settings import load_settings

    settings = load_settings(home)
    url, schema = settings.db_url, settings.database_schema or None
    store.upgrade(url, revision, schema=schema)
    typer.echo(f"{store.mask_url(url)}: at revision "
               f"{store.current_revision(url, schema=schema)}")


@db_app.command("current")
def db_current(home: Home = None) -> None:
    """Show the database's schema revision and the newest this code knows."""
    import db as store
    from regen.settings import load_settings

    settings = load_settings(home)
    url = settings.db_url
    rev = (store.current_revision(url, schema=settings.database_schema or None)
           or "none (unversioned or empty)")
    typer.echo(f"{store.mask_url(url)}: revision {rev}; code head {store.HEAD_REVISION}")
