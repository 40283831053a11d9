"""The first `regen serve` (standard library `http.server`, one global lock), kept only as the
baseline `bench/serve_load.py` measures the FastAPI server (`regen.server`) against. It has
the defects issue 12 lists (no auth, unbounded k and fields, any path readable): never serve
it; `regen serve` runs `regen.server`.

    GET  /health                  {"status": "ok", "build": ..., "encoder": ..., "count": N}
    POST /v1/report   {"ecg": ECG, "k": 10}                       -> Report.to_json()
    POST /v1/ask      {"ecgs": [ECG, ...], "question": "...", "options": [...]} -> Answer
    POST /v1/compare  {"a": ECG, "b": ECG}                        -> Comparison

An ECG is either {"path": "..."} (a file the server can read: WFDB, EDF, .npy/.npz) or inline
{"signal": [[mV, ...], ...] (leads x samples), "fs": Hz, "leads": ["I", ...], "id": "..."}.
Bad input is HTTP 400 with {"error": "..."} naming what is wrong; an unknown route 404. Every
answer carries its neighbours, confidence and the decision-support disclaimer, and is logged
like the CLI's (unless "log": false).

It binds to 127.0.0.1 unless told otherwise and has no authentication: put it behind the
hospital's gateway (TLS, auth) to expose it. Requests are answered one at a time (one Regen,
one lock); connections are accepted concurrently.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from regen.api import Regen
from regen.ecg import ECG
from regen.errors import BadRequest, RegenError

MAX_BODY = 64 * 2**20        # 64 MiB: a 24-hour 12-lead recording at 100 Hz as JSON fits


def ecg_from_json(obj: Any, where: str) -> ECG | str:
    """{"path": ...} -> the path (read by Regen), {"signal", "fs", ...} -> an ECG."""
    if not isinstance(obj, dict):
        raise BadRequest(f"{where}: expected an object with 'path' or 'signal' and 'fs'")
    if "path" in obj:
        if not isinstance(obj["path"], str) or not obj["path"]:
            raise BadRequest(f"{where}.path: expected a file path string")
        return obj["path"]
    if "signal" not in obj or "fs" not in obj:
        raise BadRequest(f"{where}: give 'path', or 'signal' (leads x samples, mV) with 'fs'")
    try:
        sig = np.asarray(obj["signal"], dtype=np.float32)
        fs = float(obj["fs"])
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"{where}.signal/fs: not numbers ({exc})") from exc
    if sig.ndim == 1:
        sig = sig[None, :]
    leads = obj.get("leads")
    if leads is None:
        from regen.ecg import STANDARD_LEADS

        if sig.shape[0] != len(STANDARD_LEADS):
            raise BadRequest(f"{where}.leads: required for a signal of {sig.shape[0]} leads")
        leads = list(STANDARD_LEADS)
    if not isinstance(leads, list) or not all(isinstance(x, str) for x in leads):
        raise BadRequest(f"{where}.leads: expected a list of lead names")
    ident = str(obj.get("id") or "inline")
    return ECG(sig, fs, tuple(leads), ident, f"{where}:{ident}")


def handle(rg: Regen, route: str, body: dict[str, Any]) -> dict[str, Any]:
    """One request's JSON answer; raises BadRequest / RegenError for the 400s."""
    log = bool(body.get("log", True))
    k = body.get("k")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise BadRequest("k: expected a positive integer")
    if route == "/v1/report":
        return rg.report(ecg_from_json(body.get("ecg"), "ecg"), k, log=log).to_json()
    if route == "/v1/ask":
        ecgs = body.get("ecgs")
        question = body.get("question")
        if not isinstance(ecgs, list) or not ecgs or not isinstance(question, str):
            raise BadRequest("ask: expected 'ecgs' (a non-empty list) and 'question' (text)")
        options = body.get("options")
        if options is not None and not (isinstance(options, list)
                                        and all(isinstance(o, str) for o in options)):
            raise BadRequest("options: expected a list of strings")
        loaded = [ecg_from_json(e, f"ecgs[{i}]") for i, e in enumerate(ecgs)]
        return rg.ask(loaded, question, options, k, log=log).to_json()
    if route == "/v1/compare":
        return rg.compare(ecg_from_json(body.get("a"), "a"), ecg_from_json(body.get("b"), "b"),
                          k, log=log).to_json()
    raise KeyError(route)


def make_server(rg: Regen, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """A server answering from `rg` (not started: call serve_forever, or start a thread)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "regen"

        def log_message(self, format: str, *args: object) -> None:    # access log: quiet
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/health":
                self._send(404, {"error": f"no route GET {self.path}; try GET /health"})
                return
            self._send(200, {"status": "ok", "build": rg.build_id,
                             "encoder": rg.encoder.fingerprint, "count": rg.index.ntotal})

        def do_POST(self) -> None:
            route = self.path.rstrip("/")
            try:
                size = int(self.headers.get("Content-Length") or 0)
                if size > MAX_BODY:
                    raise BadRequest(f"body of {size} bytes; at most {MAX_BODY}")
                raw = self.rfile.read(size)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError as exc:
                    raise BadRequest(f"body is not JSON ({exc.msg} at char {exc.pos})") from exc
                if not isinstance(body, dict):
                    raise BadRequest("body: expected a JSON object")
                with lock:
                    out = handle(rg, route, body)
            except KeyError:
                self._send(404, {"error": f"no route POST {self.path}; routes: /v1/report, "
                                          "/v1/ask, /v1/compare"})
                return
            except RegenError as exc:                 # bad ECG, bad question, bad settings
                self._send(400, {"error": str(exc)})
                return
            except Exception as exc:  # noqa: BLE001 - the service must answer, not die
                self._send(500, {"error": f"{type(exc).__name__}: {exc}"})
                return
            self._send(200, out)

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    return httpd


def serve(home: str | Path | None, host: str, port: int,
          announce: Callable[[str], None] = print) -> None:
    with Regen.open(home) as rg:
        httpd = make_server(rg, host, port)
        h, p = str(httpd.server_address[0]), httpd.server_address[1]
        announce(f"regen serving build {rg.build_id} ({rg.index.ntotal} ECGs) on "
                 f"http://{h}:{p} (POST /v1/report, /v1/ask, /v1/compare; GET /health)")
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            httpd.server_close()
