"""`regen serve`: the Python API as a JSON service (FastAPI on uvicorn) with a page for
clinicians at `/`, OpenAPI at `/docs` and `/openapi.json`.

    GET  /health                 {"status", "build", "encoder", "count"} (no token needed)
    GET  /v1/examples            the bundled example ECGs a client may name
    POST /v1/report              {"ecg": ECG, "k": 10}                    -> Report.to_json()
    POST /v1/ask                 {"ecgs": [ECG], "question": "...", "options": [...]} -> Answer
    POST /v1/compare             {"a": ECG, "b": ECG}                     -> Comparison
    POST /v1/plot                {"ecg": ECG, "format": "png"|"svg"}      -> the 12-lead picture
    POST /v1/report/upload       multipart: files (.hea + .dat, .edf, .npz, .npy), fs, leads, k
    POST /v1/plot/upload         multipart: the same files -> the picture
    POST /v1/compare/upload      multipart: files_a or example_a, files_b or example_b
    POST /v1/measure             {"ecg": ECG}                             -> measurements
    POST /v1/scan                {"ecg": ECG, "window", "step", "async"}  -> Scan.to_json(), or
                                 202 {"job_id", ...} for a long record (scan_async_after_s)
    GET  /v1/scan/{job_id}       {"job_id", "status", "progress", ...} + "result" when done

An ECG is {"path"} (a file under a `data_roots` folder; none by default: 403), {"example"}, or
inline {"signal", "fs", "leads", "id"}. Errors are {"error": "..."}: 400 bad input, 401 no or
wrong token (when `api_token` is set), 403 a path outside the data roots, 413 a body over
`max_body_bytes`, 504 over `request_timeout_s`; a 500 never carries exception text. The CPU
work runs in a pool of `serve_workers` threads sharing one `Regen`, so `/health` and the page
answer while reports compute; concurrent report requests are computed as one batch
(`regen.serve_batch`). Every answer is logged (a client's `"log": false` is ignored),
names corpus records by key or relative path (unless `show_paths`), and has secrets redacted.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import logging
import os
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

import db as store
from regen.api import Regen
from regen.ecg import ECG
from regen.errors import ConfigError, RegenError, TooManyJobs
from regen.reader import read_ecg
from regen.scan_jobs import ScanJobs
from regen.serve_batch import ReportBatcher
from regen.serve_guard import Guard, idle_timeout_protocol
from regen.serve_models import (
    AnswerOut,
    AskIn,
    BadRequest,
    CompareIn,
    ComparisonOut,
    Error,
    ExampleOut,
    Forbidden,
    HealthOut,
    MeasureIn,
    Paths,
    PlotIn,
    ReportIn,
    ReportOut,
    ScanIn,
    check_fs,
    ecg_from_request,
    upload_name,
)
from regen.settings import PACKAGE_DIR, Settings

log = logging.getLogger("regen.server")
WEB = PACKAGE_DIR / "web"
EXAMPLES = PACKAGE_DIR.parent / "data" / "ptbxl-sample"
ERRORS: dict[int | str, dict[str, Any]] = {c: {"model": Error} for c in (400, 401, 403, 413, 504)}
T = TypeVar("T")
Files = Annotated[list[UploadFile], File(description="one .edf/.npz/.npy, or .hea + .dat")]
OptFiles = Annotated[list[UploadFile] | None, File(description="one .edf/.npz/.npy, or .hea + "
                                                               ".dat")]
FormFloat = Annotated[float | None, Form(description="sampling rate (Hz) for .npy")]
FormText = Annotated[str | None, Form(description="lead names for .npy, comma-separated")]


def bundled_examples(root: Path = EXAMPLES, fold: int = 9, n: int = 8) -> dict[str, Path]:
    """Up to `n` records of the sample's held-out fold (name -> record path); {} without it."""
    table = root / "ptbxl_database.csv"
    if not table.exists():
        return {}
    with table.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("strat_fold") == str(fold)]
    return {Path(r["filename_lr"]).name: root / r["filename_lr"] for r in rows[:n]}


def example_notes(root: Path = EXAMPLES) -> dict[str, str]:
    """ecg_id -> English report of the bundled sample ("" per record without one)."""
    table = root / "reports_en.csv"
    if not table.exists():
        return {}
    with table.open(newline="") as f:
        return {r["ecg_id"]: r["report_en"] for r in csv.DictReader(f)}


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "[redacted]")
    return text


def _clean(obj: Any, paths: Paths, secrets: tuple[str, ...], show_paths: bool) -> Any:
    """An answer as clients see it: corpus paths relative (records carry "key" and "path"),
    bundled examples by name, secrets redacted from every string."""
    if isinstance(obj, dict):
        out = {k: _clean(v, paths, secrets, show_paths) for k, v in obj.items()}
        if "key" in out and isinstance(out.get("path"), str) and not show_paths:
            out["path"] = paths.relative(out["path"])
        return out
    if isinstance(obj, list | tuple):
        return [_clean(v, paths, secrets, show_paths) for v in obj]
    if isinstance(obj, str):
        for name, where in paths.examples.items():
            obj = obj.replace(str(where), f"example:{name}")
        for root in () if show_paths else paths.roots:
            obj = obj.replace(f"{root}{os.sep}", "")
        return redact(obj, secrets)
    return obj


def make_app(rg: Regen, settings: Settings | None = None,
             examples: dict[str, Path] | None = None) -> Guard:
    """The ASGI app answering from `rg` (settings: `rg.settings` unless given)."""
    s = settings or rg.settings
    paths = Paths(s.data_root_paths, bundled_examples() if examples is None else examples)
    secrets = tuple(x for x in (s.api_token, s.llm_api_key) if x)
    limiter = anyio.CapacityLimiter(s.serve_workers)
    app = FastAPI(title="regen", version="0.1.0", summary="Retrieval-augmented ECG reports: "
                  "decision support, not diagnosis.", responses=ERRORS)

    batcher = ReportBatcher(rg, limiter, finish=lambda r: answer(r.to_json()))
    jobs = ScanJobs(limiter, s.scan_job_ttl_s, s.scan_max_jobs,
                    clean=lambda text: _clean(text, paths, secrets, s.show_paths),
                    store=s.home / "scan-jobs")

    async def within(work: Awaitable[T]) -> T:
        """`work`, answering 504 after request_timeout_s (a thread computing it finishes on
        its own: Python threads cannot be stopped)."""
        try:
            with anyio.fail_after(s.request_timeout_s):
                return await work
        except TimeoutError:
            raise HTTPException(504, f"not answered within {s.request_timeout_s} s (setting "
                                "request_timeout_s)") from None

    async def compute(fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the worker pool, within the request timeout."""
        return await within(anyio.to_thread.run_sync(partial(fn, *args), limiter=limiter,
                                                     abandon_on_cancel=True))

    def k_of(k: int | None) -> int | None:
        top = min(s.max_k, max(1, rg.index.ntotal))
        if k is not None and k > top:
            raise BadRequest(f"k={k}; at most {top} neighbours (setting max_k={s.max_k}, corpus "
                             f"of {rg.index.ntotal})")
        return k

    def answer(obj: dict[str, Any]) -> bytes:
        """The answer's JSON as sent: cleaned and encoded in the worker thread, so the event
        loop (which answers /health) does no per-answer work. Returned as a Response, FastAPI
        does not revalidate it against the response model (which documents it)."""
        return json.dumps(_clean(obj, paths, secrets, s.show_paths)).encode()

    @app.exception_handler(RegenError)
    async def regen_error(request: Request, exc: RegenError) -> JSONResponse:
        code = 403 if isinstance(exc, Forbidden) else 400
        return JSONResponse({"error": _clean(str(exc), paths, secrets, s.show_paths)},
                            status_code=code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:3]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{loc or 'body'}: {e.get('msg', 'invalid')}"
                         + (f" ({e['ctx']['error']})" if e.get("type") == "json_invalid" else ""))
        return JSONResponse({"error": "; ".join(parts)[:1000]}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, request.url.path,
                  redact(repr(exc), secrets)[:500])
        return JSONResponse({"error": "internal error; the server's log has the details"},
                            status_code=500)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/health")
    async def health() -> HealthOut:
        return HealthOut(status="ok", build=rg.build_id, encoder=rg.encoder.fingerprint,
                         count=rg.index.ntotal)

    @app.get("/v1/examples")
    async def list_examples() -> list[ExampleOut]:
        notes = example_notes()
        return [ExampleOut(name=n, report=notes.get(n.split("_")[0].lstrip("0"), ""))
                for n in paths.examples]

    @app.post("/v1/report", response_model=ReportOut)
    async def report(body: ReportIn) -> Response:
        ecg = ecg_from_request(body.ecg, "ecg", paths)
        return JSONBytes(await within(batcher.report(ecg, k_of(body.k))))

    @app.post("/v1/ask", response_model=AnswerOut)
    async def ask(body: AskIn) -> Response:
        if not body.ecgs:
            raise BadRequest("ask: expected 'ecgs' (a non-empty list) and 'question' (text)")
        ecgs = [ecg_from_request(e, f"ecgs[{i}]", paths) for i, e in enumerate(body.ecgs)]
        return JSONBytes(await compute(lambda: answer(rg.ask(
            ecgs, body.question, body.options, k_of(body.k), log=True).to_json())))

    @app.post("/v1/compare", response_model=ComparisonOut)
    async def compare(body: CompareIn) -> Response:
        a, b = ecg_from_request(body.a, "a", paths), ecg_from_request(body.b, "b", paths)
        return JSONBytes(await compute(lambda: answer(rg.compare(a, b, k_of(body.k),
                                                                  log=True).to_json())))

    @app.post("/v1/measure", response_model=dict[str, Any])
    async def measure(body: MeasureIn) -> Response:
        """Rate, intervals, QTc, axis and premature beats measured from the signal, with the
        findings they imply (no retrieval)."""
        from regen.measured import all_findings

        ecg = ecg_from_request(body.ecg, "ecg", paths)

        def run() -> bytes:
            m = rg.measure(ecg)
            return answer({**m.to_json(), "line": m.line(), "findings": [
                {"label": f.label, "probability": f.probability, "present": f.present,
                 "evidence": f.evidence} for f in all_findings(m)]})

        return JSONBytes(await compute(run))

    @app.post("/v1/scan", response_model=dict[str, Any],
              responses={202: {"description": "a scan job: {job_id, status, progress}"},
                         429: {"model": Error}})
    async def scan(body: ScanIn) -> Response:
        """A long recording scanned window by window: summary, episodes, windows, events. A
        record longer than scan_async_after_s, or `"async": true`, answers 202 with a job id
        to poll at GET /v1/scan/{job_id}; a shorter one is answered here (504 past
        request_timeout_s)."""
        from regen.scan import record_duration_s

        ecg = ecg_from_request(body.ecg, "ecg", paths)
        duration = await compute(record_duration_s, ecg)    # the header only, for a file

        def work(on_progress: Callable[[int, int], None] | None = None) -> bytes:
            return answer(rg.scan(ecg, window_s=body.window, step_s=body.step,
                                  progress=False, on_progress=on_progress).to_json())

        if not body.run_async and duration <= s.scan_async_after_s:
            return JSONBytes(await compute(work))
        try:
            job = jobs.submit(work)
        except TooManyJobs as exc:
            raise HTTPException(429, str(exc)) from None
        return Response(job.to_json_bytes(), status_code=202, media_type="application/json",
                        headers={"Location": f"/v1/scan/{job.id}"})

    @app.get("/v1/scan/{job_id}", response_model=dict[str, Any], responses={404: {"model": Error}})
    async def scan_job(job_id: str) -> Response:
        """A scan job: {job_id, status (queued, running, done, failed), progress (0..1),
        windows_done, windows} and, when done, "result" (what POST /v1/scan answers); when
        failed, "error". Jobs are forgotten scan_job_ttl_s after they finish: 404."""
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"scan job {job_id[:40]!r} is unknown, or finished more "
                                f"than {s.scan_job_ttl_s:g} s ago (setting scan_job_ttl_s)")
        return JSONBytes(job.to_json_bytes())

    @app.post("/v1/plot", response_class=Response,
              responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}})
    async def plot(body: PlotIn) -> Response:
        def run() -> Response:
            ecg = ecg_from_request(body.ecg, "ecg", paths, corpus_file)
            try:
                return draw(ecg, body.format)
            except RegenError as exc:
                if body.ecg.record is None:
                    raise
                raise BadRequest(f"ecg.record: {body.ecg.record!r} cannot be read from the "
                                 "corpus folder (moved or deleted since indexing?)") from exc
        return await compute(run)

    def corpus_file(key: str) -> str | None:
        """The file of a corpus record (the server's own data, so not bound to data_roots)."""
        with rg.db.session() as session:
            return session.execute(select(store.Record.path)
                                   .where(store.Record.key == key)).scalar_one_or_none()

    @app.post("/v1/report/upload", response_model=ReportOut)
    async def report_upload(files: Files, fs: FormFloat = None, leads: FormText = None,
                            k: Annotated[int | None, Form()] = None) -> Response:
        def run() -> bytes:
            with uploaded(files, fs, leads) as ecg:
                return answer(rg.report(ecg, k_of(k), log=True).to_json())
        return JSONBytes(await compute(run))

    @app.post("/v1/compare/upload", response_model=ComparisonOut)
    async def compare_upload(files_a: OptFiles = None, files_b: OptFiles = None,
                             example_a: FormText = None, example_b: FormText = None,
                             fs: FormFloat = None, leads: FormText = None,
                             k: Annotated[int | None, Form()] = None) -> Response:
        """Two ECGs, each uploaded (`files_a` / `files_b`) or a bundled example (`example_a` /
        `example_b`), compared as `POST /v1/compare` does."""
        def one(files: list[UploadFile] | None, example: str | None, side: str) -> Any:
            if bool(files) == (example is not None):
                raise BadRequest(f"side {side}: expected files_{side} (an uploaded ECG) or "
                                 f"example_{side} (a name from GET /v1/examples), one of them")
            if example is not None:
                if example not in paths.examples:
                    raise BadRequest(f"example_{side}: {example[:64]!r} is not one of "
                                     f"{sorted(paths.examples)}")
                return nullcontext(str(paths.examples[example]))
            return uploaded(files or [], fs, leads)

        def run() -> bytes:
            with one(files_a, example_a, "a") as a, one(files_b, example_b, "b") as b:
                return answer(rg.compare(a, b, k_of(k), log=True).to_json())
        return JSONBytes(await compute(run))

    @app.post("/v1/plot/upload", response_class=Response,
              responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}})
    async def plot_upload(files: Files, fs: FormFloat = None, leads: FormText = None,
                          format: Annotated[str, Form()] = "png") -> Response:
        if format not in ("png", "svg"):
            raise BadRequest(f"format={format[:20]!r}; expected 'png' or 'svg'")

        def run() -> Response:
            with uploaded(files, fs, leads) as ecg:
                return draw(ecg, format)
        return await compute(run)

    return Guard(app, token=s.api_token, max_body=s.max_body_bytes)


def JSONBytes(body: bytes) -> Response:  # noqa: N802 - reads as the response type it is
    return Response(body, media_type="application/json")


def draw(ecg: ECG | str, fmt: str) -> Response:
    from regen.plot import plot_ecg

    loaded = ecg if isinstance(ecg, ECG) else read_ecg(ecg)
    media = "image/svg+xml" if fmt == "svg" else "image/png"
    return Response(plot_ecg(loaded, fmt=fmt), media_type=media)


@contextmanager
def uploaded(files: list[UploadFile], fs: float | None, leads: str | None) -> Iterator[ECG]:
    """The ECG in uploaded files, read from a private temporary folder that is removed after;
    errors name the uploaded file, not the folder."""
    if not 1 <= len(files) <= 4:
        raise BadRequest(f"{len(files)} files uploaded; expected 1 (.edf, .npz, .npy) or 2 "
                         "(a WFDB record's .hea and .dat)")
    check_fs(fs)
    names = tuple(x.strip() for x in leads.split(",")) if leads else None
    if names is not None and (len(names) > 24 or any(not 0 < len(x) <= 32 for x in names)):
        raise BadRequest("leads: expected up to 24 comma-separated names of 1-32 characters")
    with tempfile.TemporaryDirectory(prefix="regen-upload-") as tmp:
        saved = []
        for i, f in enumerate(files):
            dest = Path(tmp) / upload_name(f.filename, i)
            f.file.seek(0)
            dest.write_bytes(f.file.read())
            saved.append(dest)
        by_ext = {p.suffix.lower(): p for p in saved}
        main = next((by_ext[e] for e in (".hea", ".edf", ".npz", ".npy") if e in by_ext), None)
        if main is None:
            raise BadRequest(f"uploaded {[p.name for p in saved]}; expected a .hea (with its "
                             ".dat), .edf, .npz or .npy file")
        try:
            ecg = read_ecg(main, fs=fs, leads=names)
        except RegenError as exc:
            raise BadRequest(str(exc).replace(tmp + "/", "")) from None
        yield replace(ecg, source=f"upload:{main.name}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def uvicorn_config(app: Guard, settings: Settings, host: str, port: int) -> Any:
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          http=idle_timeout_protocol(),
                          timeout_keep_alive=max(1, round(settings.keep_alive_s)),
                          limit_concurrency=max(64, 16 * settings.serve_workers),
                          server_header=False, lifespan="off")


@contextmanager
def running(rg: Regen, host: str = "127.0.0.1", port: int = 0,
            settings: Settings | None = None) -> Iterator[str]:
    """The app served from a thread (tests, benches): yields its base URL, stops after."""
    import uvicorn

    server = uvicorn.Server(uvicorn_config(make_app(rg, settings), settings or rg.settings,
                                           host, port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise ConfigError(f"cannot serve on {host}:{port} (see the log above)")
        threading.Event().wait(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve(home: str | Path | None, host: str, port: int,
          announce: Callable[[str], None] = print, **overrides: object) -> None:
    """Serve until interrupted; refuses a non-loopback address without an api_token."""
    import uvicorn

    with Regen.open(home, **overrides) as rg:
        s = rg.settings
        if not is_loopback(host) and not s.api_token:
            raise ConfigError(f"--host {host} is reachable from other machines: set an "
                              "api_token (REGEN_API_TOKEN) so requests need a bearer token")
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        roots = ", ".join(str(p) for p in s.data_root_paths) or "none ({\"path\"} refused)"
        processes = "" if s.serve_processes == 1 else f"{s.serve_processes} processes; "
        announce(f"regen serving build {rg.build_id} ({rg.index.ntotal} ECGs) on "
                 f"http://{host}:{port} (page /, API /docs; {processes}token "
                 f"{'required' if s.api_token else 'off'}; data roots: {roots})")
        if s.serve_processes == 1:
            uvicorn.Server(uvicorn_config(make_app(rg), s, host, port)).run()
            return
    _serve_processes(s, host, port, overrides)


RESTART_PAUSE_S = 1.0   # a worker process that died is started again after this
QUICK_EXIT_S, QUICK_EXITS = 30.0, 3   # ... unless this many in a row died this soon after start


def _serve_processes(s: Settings, host: str, port: int, overrides: dict[str, object]) -> None:
    """`serve_processes` worker processes, each opening the home itself and listening on the
    port with SO_REUSEPORT, so the kernel spreads connections among them (one shared socket
    let whichever process woke first accept a whole burst of connections). Python computes
    one report at a time per process (the GIL): this is what puts more cores to work. A
    worker that dies is started again; SIGINT or SIGTERM stops them all."""
    import multiprocessing
    import signal
    import time

    if port == 0:
        raise ConfigError(f"--port 0 with serve_processes={s.serve_processes}: each worker "
                          "would get its own free port; name the port")
    with _listener(host, port):    # the port is free (else a clear error, here)
        pass
    spec = {"home": str(s.home), "host": host, "port": port,
            "threads": max(1, (os.cpu_count() or 1) // s.serve_processes),
            "overrides": {k: v for k, v in overrides.items() if v is not None}}
    ctx = multiprocessing.get_context("spawn")
    stop = threading.Event()
    before = {sig: signal.signal(sig, lambda *_: stop.set())
              for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> tuple[Any, float]:
        proc = ctx.Process(target=_worker_main, args=(json.dumps(spec, default=str),),
                           daemon=True)
        proc.start()
        return proc, time.monotonic()

    procs = [start() for _ in range(s.serve_processes)]
    quick = 0
    try:
        while not stop.wait(0.5):
            for n, (proc, started) in enumerate(procs):
                if proc.is_alive() or stop.is_set():
                    continue
                quick = quick + 1 if time.monotonic() - started < QUICK_EXIT_S else 0
                if quick >= QUICK_EXITS:
                    raise ConfigError(f"{quick} worker processes in a row exited within "
                                      f"{QUICK_EXIT_S:.0f} s of starting (the last with code "
                                      f"{proc.exitcode}); see the log above")
                log.error("worker process %d exited (code %s); starting it again", proc.pid,
                          proc.exitcode)
                stop.wait(RESTART_PAUSE_S)
                procs[n] = start()
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _listener(host: str, port: int) -> Any:
    """A TCP socket listening on host:port that other processes may share (SO_REUSEPORT)."""
    import socket

    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


def _worker_main(spec_json: str) -> None:
    """One worker process of `serve`: the home and settings it was given, torch's threads
    shared out among the processes, its own listening socket on the shared port."""
    import torch
    import uvicorn

    spec = json.loads(spec_json)
    torch.set_num_threads(int(spec["threads"]))
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rg = Regen.open(spec["home"], **spec["overrides"])
    host, port = spec["host"], int(spec["port"])
    sock = _listener(host, port)
    uvicorn.Server(uvicorn_config(make_app(rg), rg.settings, host, port)).run(sockets=[sock])
