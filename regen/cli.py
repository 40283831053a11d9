"""The `regen` command line: thin wrappers over the API. Results on stdout, diagnostics on
stderr, `--json` for machines, errors as one line and a non-zero exit."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from regen.errors import RegenError

if TYPE_CHECKING:
    from regen.rebuild import BuildResult

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Retrieval-augmented ECG reports: decision support, not diagnosis.")
index_app = typer.Typer(no_args_is_help=True, help="Build and inspect the retrieval index.")
app.add_typer(index_app, name="index")
db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")
app.add_typer(db_app, name="db")
quality_app = typer.Typer(no_args_is_help=True, help="Signal quality per lead (noise), measured "
                                                     "from the ECG itself.")
app.add_typer(quality_app, name="quality")
eval_app = typer.Typer(no_args_is_help=True, help="Measure report quality, robustness, "
                       "retrieval and QA beside baselines.")
app.add_typer(eval_app, name="eval")

Home = Annotated[Path | None, typer.Option("--home", help="regen home (default $REGEN_HOME "
                                              "or ./.regen)")]
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]
Source = Annotated[str, typer.Option(help="ptbxl, mimic (MIMIC-IV-ECG: folds are patient "
                                          "hashes) or folder")]
Rate = Annotated[int, typer.Option(help="100 or 500 (PTB-XL)")]
ReportsCsv = Annotated[Path | None, typer.Option(help="report CSV for --source folder")]
SkipBad = Annotated[bool, typer.Option(help="leave unreadable records out instead of failing")]


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


def _print_report(r: object) -> None:
    from regen.types import Report

    assert isinstance(r, Report)
    typer.echo(f"== {r.query}")
    typer.echo(("ABSTAINED: " if r.abstained else "") + r.text)
    typer.echo(f"confidence: {r.confidence:.2f}   refiner: {r.refiner}"
               f"{f' ({r.model})' if r.model else ''}   cited: {', '.join(r.cited) or '-'}")
    if r.fallback_reason:
        typer.echo(f"written by consensus instead: {r.fallback_reason}")
    typer.echo("neighbours:")
    for n in r.neighbours:
        sc = ",".join(n.superclasses) or "-"
        typer.echo(f"  {n.key:<14} score {n.score:.3f}  [{sc}]  {n.report}")
    typer.echo(r.disclaimer)


@app.command()
def report(paths: Annotated[list[Path], typer.Argument(help="ECG files: WFDB records, .edf, "
                                                              ".npy or .npz")],
           k: Annotated[int | None, typer.Option("-k", help="neighbours")] = None,
           json_out: Json = False, home: Home = None,
           fs: Annotated[float | None, typer.Option(help="sampling rate for .npy")] = None,
           leads: Annotated[str | None, typer.Option(help="lead names for .npy, "
                                                        "comma-separated")] = None,
           language: Annotated[str | None, typer.Option(help="en or orig")] = None,
           no_log: Annotated[bool, typer.Option("--no-log", help="do not log")] = False) -> None:
    """Generate a report for each ECG from its nearest neighbours in the corpus."""
    from regen.api import Regen
    from regen.reader import read_ecg

    ecgs = [read_ecg(p, fs=fs, leads=tuple(leads.split(",")) if leads else None)
            for p in paths]
    with Regen.open(home, k=k, language=language) as rg:
        for r in rg.reports(ecgs, log=not no_log):
            if json_out:
                typer.echo(json.dumps(r.to_json()))
            else:
                _print_report(r)


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
def index_rebuild(data: Annotated[Path, typer.Option(help="PTB-XL folder (or a plain folder "
                                                     "with --source folder)")],
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
    if json_out:
        typer.echo(json.dumps(_build_json(res)))
    else:
        typer.echo(f"{'up to date' if res.up_to_date else 'built'}: {res.count} ECGs -> "
                   f"{res.path}")


@index_app.command("add")
def index_add(data: Annotated[Path, typer.Option(help="PTB-XL folder (or a plain folder "
                                                 "with --source folder)")],
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
    manifest = VectorIndex.load(active["path"]).manifest.to_json()
    info = {"home": str(settings.home), "database": store.mask_url(settings.db_url),
            "active": active, "manifest": manifest, "builds": len(builds)}
    if json_out:
        typer.echo(json.dumps(info, default=str))
    else:
        for key, val in info.items():
            typer.echo(f"{key}: {val}")


@app.command()
def train(data: Annotated[Path, typer.Option(help="PTB-XL folder")],
          folds: Annotated[str, typer.Option(help="training folds")] = "1-8",
          val_folds: Annotated[str | None, typer.Option(help="validation folds for the "
                                                           "kNN-AUC monitor")] = "9",
          out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/encoder"),
          config: Annotated[Path | None, typer.Option(
              help="TOML file of training settings ([train] table: any TrainConfig field); "
                   "flags given here win over it")] = None,
          epochs: Annotated[int | None, typer.Option(help="default 80")] = None,
          seed: Annotated[int | None, typer.Option(help="default 0")] = None,
          resume: Annotated[bool, typer.Option(help="continue from out/checkpoint.pt")] = False,
          rate: Annotated[int, typer.Option(help="PTB-XL rate to read")] = 100,
          text_weight: Annotated[float | None, typer.Option(
              help="weight of ECG-report embedding alignment (0: off; default 1)")] = None,
          label_weight: Annotated[float | None, typer.Option(
              help="weight of predicting the labels the report text states (0: off; "
                   "default 1)")] = None,
          full_first_view: Annotated[bool | None, typer.Option(
              help="one view keeps all leads, so lead subsets align to it (default on)")
          ] = None,
          language: Annotated[str, typer.Option(help="report language for alignment")] = "en"
          ) -> None:
    """Self-supervised training of the encoder on a PTB-XL folder: contrastive views plus,
    optionally, alignment with each ECG's own report (folds 1-8 only)."""
    from regen.corpus import load_ptbxl
    from regen.dataset import first_windows, prepare_records, superclass_matrix
    from regen.encoder import EncoderConfig
    from regen.train import knn_auc_monitor, train_config
    from regen.train import train as run_train

    tcfg = train_config(config, epochs=epochs, seed=seed, text_weight=text_weight,
                        label_weight=label_weight, full_first_view=full_first_view)
    cfg = EncoderConfig()
    records = load_ptbxl(data, folds=folds, rate=rate)
    prepared, kept, _ = prepare_records(records, cfg, progress=sys.stderr.isatty())
    monitor = None
    if val_folds:
        val = load_ptbxl(data, folds=val_folds, rate=rate)
        vp, vk, _ = prepare_records(val, cfg, progress=False)
        monitor = knn_auc_monitor(prepared, superclass_matrix(kept), vp, superclass_matrix(vk))
    w, m = first_windows(prepared)
    reports = [r.report(language) for r in kept]
    texts = labels = None
    if tcfg.text_weight > 0:
        from regen.text import embed_texts
        texts = embed_texts(reports)
    if tcfg.label_weight > 0:
        from regen.labeller import label_matrix
        labels = label_matrix(reports)
        labels[[not t.strip() for t in reports]] = -1
    _err(f"training on {len(w)} ECGs (folds {folds}) for {tcfg.epochs} epochs -> {out}")
    enc = run_train(w, m, out, enc_cfg=cfg, cfg=tcfg, resume=resume, evaluate=monitor,
                    eval_every=5, log=_err, texts=texts, report_labels=labels,
                    data_note=f"PTB-XL {data.name} folds {folds} at {rate} Hz: {len(w)} ECGs "
                              f"with their '{language}' reports")
    typer.echo(f"encoder {enc.fingerprint} saved to {out}")


@app.command()
def logs(n: Annotated[int, typer.Option("-n", help="how many")] = 20, home: Home = None,
         json_out: Json = False) -> None:
    """List recent generations (newest first)."""
    import db as store
    from regen.settings import load_settings

    settings = load_settings(home)
    database = settings.open_database()
    with database.session() as s:
        rows = [{"id": g.id, "created_at": str(g.created_at), "kind": g.kind,
                 "refiner": g.refiner, "query": g.query, "confidence": g.confidence,
                 "abstained": g.abstained, "output": g.output,
                 "neighbours": g.neighbours} for g in store.list_generations(s, n)]
    database.dispose()
    for r in rows:
        if json_out:
            typer.echo(json.dumps(r, default=str))
        else:
            conf = "-" if r["confidence"] is None else f"{r['confidence']:.2f}"
            typer.echo(f"{r['id']:>5} {r['created_at'][:19]} {r['kind']:<7} {conf} "
                       f"{r['query'].get('source', '')}: {r['output'][:80]}")


Data = Annotated[Path, typer.Option("--data", help="PTB-XL folder")]
CorpusFolds = Annotated[str, typer.Option("--corpus-folds", help="folds indexed")]
QueryFolds = Annotated[str, typer.Option("--query-folds", help="folds queried")]
Out = Annotated[Path | None, typer.Option("--out", help="write NAME.json, .md and .png here")]
K = Annotated[int, typer.Option("--k", "-k", help="neighbours")]


def _emit(result: dict, json_out: bool, out: Path | None) -> None:
    from regen.evalout import markdown, write

    if out is not None:
        for p in write(result, out):
            _err(f"wrote {p}")
    typer.echo(json.dumps(result, default=float) if json_out else markdown(result))


@eval_app.command("report")
def eval_report_cmd(data: Data, corpus_folds: CorpusFolds = "1-8", query_folds: QueryFolds = "9",
                    lang: Annotated[str, typer.Option("--lang", help="en or orig")] = "en",
                    refiner: Annotated[str | None, typer.Option(help="refiner")] = None,
                    k: K = 10, json_out: Json = False, out: Out = None, home: Home = None,
                    bert: Annotated[bool, typer.Option(help="BERTScore (slow)")] = True,
                    limit: Annotated[int | None, typer.Option(help="first N queries")] = None
                    ) -> None:
    """Generate reports for the query folds and score them against the references."""
    from regen.evaluate import eval_report
    from regen.settings import load_settings

    settings = load_settings(home, refiner=refiner)
    _emit(eval_report(settings, data, corpus_folds=corpus_folds, query_folds=query_folds,
                      language=lang, k=k, bert=bert, limit=limit, log=_err), json_out, out)


@eval_app.command("classify")
def eval_classify_cmd(data: Data, corpus_folds: CorpusFolds = "1-8",
                      query_folds: QueryFolds = "9",
                      leads: Annotated[str | None, typer.Option(
                          help="query leads, e.g. II or I,II,V2")] = None,
                      noise: Annotated[float | None, typer.Option(
                          help="white noise added to queries, SNR in dB")] = None,
                      k: K = 40, json_out: Json = False, out: Out = None,
                      home: Home = None) -> None:
    """kNN macro ROC-AUC over the five superclasses, with lead subsets and noise."""
    from regen.evaluate import eval_classify
    from regen.settings import load_settings

    _emit(eval_classify(load_settings(home), data, corpus_folds=corpus_folds,
                        query_folds=query_folds, leads=leads, snr_db=noise, k=k, log=_err),
          json_out, out)


@eval_app.command("retrieval")
def eval_retrieval_cmd(data: Data, corpus_folds: CorpusFolds = "1-8",
                       query_folds: QueryFolds = "9", k: K = 10,
                       factory: Annotated[str, typer.Option(
                           help="approximate index to compare with exact")] = "HNSW32",
                       json_out: Json = False, out: Out = None, home: Home = None) -> None:
    """precision@k of label agreement, recall@k of an approximate index against exact."""
    from regen.evaluate import eval_retrieval
    from regen.settings import load_settings

    _emit(eval_retrieval(load_settings(home), data, corpus_folds=corpus_folds,
                         query_folds=query_folds, k=k, factory=factory, log=_err),
          json_out, out)


@eval_app.command("qa")
def eval_qa_cmd(data: Data, ecgqa: Annotated[Path | None, typer.Option(
                    help="ECG-QA folder (its ptbxl/ samples are evaluated too)")] = None,
                corpus_folds: CorpusFolds = "1-8", query_folds: QueryFolds = "9", k: K = 10,
                per_template: Annotated[int, typer.Option(
                    help="derived questions per template")] = 50,
                json_out: Json = False, out: Out = None, home: Home = None) -> None:
    """ECG-QA accuracy per question type: regen (kNN vote; noise measured from the signal)
    beside the kNN vote alone and the majority answer."""
    from regen.evaluate import eval_qa
    from regen.settings import load_settings

    _emit(eval_qa(load_settings(home), data, ecgqa=ecgqa, corpus_folds=corpus_folds,
                  query_folds=query_folds, k=k, per_template=per_template, log=_err),
          json_out, out)


@app.command()
def serve(host: Annotated[str, typer.Option(help="address to bind; 127.0.0.1 keeps it on this "
                                                 "machine (no auth: put a gateway in front)")]
          = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port")] = 8080,
          home: Home = None) -> None:
    """Serve reports, questions and comparisons as JSON over HTTP (POST /v1/report, /v1/ask,
    /v1/compare; GET /health)."""
    from regen.server import serve as run

    run(home, host, port, announce=_err)


@quality_app.command("check")
def quality_check(paths: Annotated[list[Path], typer.Argument(help="ECG file(s)")],
                  json_out: Json = False,
                  model: Annotated[Path | None, typer.Option(
                      help="signal-quality model (default: the shipped one)")] = None) -> None:
    """Per lead, the model's probability of each kind of noise (PTB-XL annotators' sense)."""
    from regen.quality import DEFAULT_MODEL, QualityModel
    from regen.reader import read_ecg

    qm = QualityModel.load(model or DEFAULT_MODEL)
    for path in paths:
        probs = qm.probabilities(read_ecg(path))
        if json_out:
            typer.echo(json.dumps({"path": str(path), "probabilities": probs,
                                   "not_measured": list(qm.unsupported)}))
            continue
        leads = list(next(iter(probs.values())))
        typer.echo(f"{path}")
        typer.echo(f"  {'':16s}" + "".join(f"{lead:>6s}" for lead in leads))
        for t, by_lead in probs.items():
            typer.echo(f"  {t:16s}" + "".join(f"{by_lead[lead]:6.2f}" for lead in leads))
    if not json_out:
        typer.echo(f"not measured (too few annotated examples): {', '.join(qm.unsupported)}. "
                   "Probabilities of PTB-XL's annotations, for quality control: decision "
                   "support, not a substitute for looking at the tracing.")


@quality_app.command("train")
def quality_train(data: Data, folds: Annotated[str, typer.Option(
                      help="training folds (their noise annotations)")] = "1-8",
                  ecgqa: Annotated[Path | None, typer.Option(
                      help="ECG-QA folder: choose thresholds on its noise questions about "
                           "the training folds")] = None,
                  out: Annotated[Path, typer.Option(help="model file")] = Path(
                      "quality.json")) -> None:
    """Fit the per-lead noise model on a PTB-XL folder's annotations (training folds only)."""
    from regen.corpus import load_ptbxl
    from regen.qa_data import load_ecgqa, record_ecg_id
    from regen.quality import fit_quality

    items = []
    if ecgqa is not None:
        ids = {record_ecg_id(r) for r in load_ptbxl(data, folds=folds)}
        items = [it for it in load_ecgqa(ecgqa) if it.attribute_type == "noise"
                 and all(e in ids for e in it.ecg_ids)]
        _err(f"ECG-QA: {len(items)} noise questions about folds {folds}")
    model = fit_quality(data, folds, ecgqa_items=items, progress=sys.stderr.isatty(), log=_err)
    typer.echo(f"saved {model.save(out)}")


@app.command()
def ask(args: Annotated[list[str], typer.Argument(help="ECG path(s), then the question")],
        options: Annotated[str | None, typer.Option(
            help="candidate answers, comma-separated")] = None,
        k: Annotated[int | None, typer.Option("-k", help="neighbours")] = None,
        json_out: Json = False, home: Home = None,
        no_log: Annotated[bool, typer.Option("--no-log", help="do not log")] = False) -> None:
    """Answer a question about one ECG (or two, for a comparison question)."""
    from regen.api import Regen

    if len(args) < 2:
        raise RegenError("ask needs at least one ECG path and a question, e.g. "
                         "regen ask rec 'Does this ECG show atrial fibrillation?'")
    *paths, question = args
    opts = [o.strip() for o in options.split(",")] if options else None
    with Regen.open(home, k=k) as rg:
        ans = rg.ask(paths, question, opts, log=not no_log)
    if json_out:
        typer.echo(json.dumps(ans.to_json()))
        return
    typer.echo(f"Q: {question}")
    typer.echo(f"A: {', '.join(ans.options)}   (confidence {ans.confidence:.2f}"
               f"{', abstained' if ans.abstained else ''})")
    typer.echo(f"   {ans.text}")
    for i, ns in enumerate(ans.neighbours):
        typer.echo(f"neighbours of {paths[i]}: " + ", ".join(f"{n.key} ({n.score:.2f})"
                                                          for n in ns))
    typer.echo(ans.disclaimer)


@app.command()
def compare(a: Annotated[Path, typer.Argument(help="first (earlier) ECG")],
            b: Annotated[Path, typer.Argument(help="second (later) ECG")],
            k: Annotated[int | None, typer.Option("-k", help="neighbours")] = None,
            json_out: Json = False, home: Home = None,
            no_log: Annotated[bool, typer.Option("--no-log", help="do not log")] = False) -> None:
    """What changed from the first ECG to the second: new, resolved, unchanged findings."""
    from regen.api import Regen

    with Regen.open(home, k=k) as rg:
        cmp = rg.compare(a, b, log=not no_log)
    if json_out:
        typer.echo(json.dumps(cmp.to_json()))
        return
    typer.echo(cmp.text)
    typer.echo(f"confidence: {cmp.confidence:.2f}")
    typer.echo(f"neighbours of {a}: " + ", ".join(n.key for n in cmp.neighbours_a))
    typer.echo(f"neighbours of {b}: " + ", ".join(n.key for n in cmp.neighbours_b))
    typer.echo(cmp.disclaimer)


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


def main() -> None:
    """Console entry point: RegenError and store errors become one line and exit code 1."""
    from db import DatabaseError
    from index import IndexStoreError

    try:
        app()
    except (RegenError, DatabaseError, IndexStoreError) as exc:
        _err(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
