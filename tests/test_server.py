"""`regen serve` (FastAPI on uvicorn) over real HTTP on loopback: the API's answers by path,
example, inline signal and upload; and each defect issue 12 found in the first server, each
checked by a request that server got wrong (huge k, bad Content-Length, oversized bodies
desyncing the connection, unbounded fields, client-disabled logging, 500s with exception text,
idle connections kept forever, leaked corpus paths, any file readable, no auth, keys echoed)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port
from llm_server import Status

import db as store
from regen import Regen, read_ecg
from regen.server import running

pytest_plugins = ["llm_server"]
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
Q1 = str(SAMPLE / "records100" / "01000" / "01469_lr")
Q2 = str(SAMPLE / "records100" / "00000" / "00028_lr")
LIMIT = 2 * 2**20
TOKEN = "t0ken-for-tests-7f3a"


@pytest.fixture(scope="module")
def home(sample_home):
    return sample_home


@pytest.fixture(scope="module")
def rg(home):
    with Regen.open(home) as opened:
        yield opened


def serving(rg, **settings):
    base = dict(data_roots=str(SAMPLE), max_body_bytes=LIMIT, keep_alive_s=1.0)
    return running(rg, settings=replace(rg.settings, **{**base, **settings}))


@pytest.fixture(scope="module")
def url(rg):
    with serving(rg) as base:
        yield base


def call(url: str, route: str, body: object | None = None, raw: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url + route, data=data, method="GET" if data is None else "POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def raw_http(url: str, data: bytes, timeout: float = 10) -> tuple[bytes, bool]:
    """Send bytes on one connection; (everything answered, whether the server closed it)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except TimeoutError:
            return got, False
        return got, True


def generations(rg: Regen) -> int:
    with rg.db.session() as s:
        return len(store.list_generations(s, 10**6))


# -- answers ------------------------------------------------------------------------------------

def test_health_and_openapi(url):
    code, body = call(url, "/health")
    assert code == 200 and body["status"] == "ok" and body["count"] == 240
    code, spec = call(url, "/openapi.json")
    assert code == 200 and {"/v1/report", "/v1/ask", "/v1/compare", "/v1/plot",
                            "/v1/report/upload", "/health"} <= set(spec["paths"])
    assert "k" in spec["components"]["schemas"]["ReportIn"]["properties"]
    with urllib.request.urlopen(url + "/docs", timeout=10) as resp:
        assert resp.status == 200 and b"swagger" in resp.read().lower()


def test_report_by_path_equals_the_api(url, rg):
    code, body = call(url, "/v1/report", {"ecg": {"path": Q1}, "k": 5})
    assert code == 200
    want = rg.report(Q1, k=5, log=False)
    assert body["text"] == want.text and body["cited"] == list(want.cited)
    assert [n["key"] for n in body["neighbours"]] == [n.key for n in want.neighbours]
    assert "not a diagnosis" in body["disclaimer"]


def test_report_of_an_inline_signal_and_an_example_equal_the_file(url):
    ecg = read_ecg(Q2)
    inline = {"signal": ecg.signal.tolist(), "fs": ecg.fs, "leads": list(ecg.leads), "id": "x"}
    _, by_path = call(url, "/v1/report", {"ecg": {"path": Q2}})
    code, by_value = call(url, "/v1/report", {"ecg": inline})
    assert code == 200 and by_value["text"] == by_path["text"]
    assert [n["key"] for n in by_value["neighbours"]] == [n["key"] for n in by_path["neighbours"]]
    code, examples = call(url, "/v1/examples")
    assert code == 200 and "00028_lr" in [e["name"] for e in examples]
    code, by_name = call(url, "/v1/report", {"ecg": {"example": "00028_lr"}})
    assert code == 200 and by_name["text"] == by_path["text"]
    assert by_name["query"] == "example:00028_lr"


def test_uploads_read_like_the_file(url, tmp_path):
    _, by_path = call(url, "/v1/report", {"ecg": {"path": Q1}})
    wfdb = [("files", Path(Q1 + ext)) for ext in (".hea", ".dat")]
    code, up = upload(url, "/v1/report/upload", wfdb)
    assert code == 200 and up["text"] == by_path["text"] and up["query"] == "upload:01469_lr.hea"
    npy = tmp_path / "one.npy"
    np.save(npy, read_ecg(Q1).signal)
    code, up = upload(url, "/v1/report/upload", [("files", npy)], {"fs": "100"})
    assert code == 200 and up["text"] == by_path["text"]
    code, err = upload(url, "/v1/report/upload", [("files", npy)])
    assert code == 400 and "sampling rate unknown" in err["error"] and "/tmp" not in err["error"]
    code, err = upload(url, "/v1/report/upload", [("files", npy)], {"fs": "1e6"})
    assert code == 400 and "50..10000 Hz" in err["error"]


def upload(url: str, route: str, files: list[tuple[str, Path]],
           fields: dict[str, str] | None = None) -> tuple[int, dict | bytes]:
    """A multipart/form-data POST, built by hand (the standard library has no encoder)."""
    boundary = "regen-test-boundary"
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    for name, path in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + path.read_bytes() + b"\r\n")
    data = b"".join(parts) + f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + route, data=data, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
            return resp.status, json.loads(body) if resp.headers.get_content_type() \
                == "application/json" else body
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_plots_are_pictures(url):
    req = urllib.request.Request(url + "/v1/plot", data=json.dumps(
        {"ecg": {"example": "00028_lr"}, "format": "svg"}).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in resp.read(4096)
    _, body = call(url, "/v1/report", {"ecg": {"example": "00028_lr"}})
    req = urllib.request.Request(url + "/v1/plot", data=json.dumps(
        {"ecg": {"record": body["neighbours"][0]["key"]}}).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:        # a neighbour's trace
        assert resp.read(8) == b"\x89PNG\r\n\x1a\n"
    code, err = call(url, "/v1/plot", {"ecg": {"record": "ptbxl:nope"}})
    assert code == 400 and "not a corpus record's key" in err["error"]
    code, err = call(url, "/v1/report", {"ecg": {"record": body["neighbours"][0]["key"]}})
    assert code == 400 and "only taken by POST /v1/plot" in err["error"]
    code, png = upload(url, "/v1/plot/upload", [("files", Path(Q1 + ext))
                                                for ext in (".hea", ".dat")])
    assert code == 200 and isinstance(png, bytes) and png.startswith(b"\x89PNG")


def test_compare_upload_takes_files_or_an_example_on_each_side(url):
    """An uploaded WFDB record against a bundled example gives what /v1/compare gives for
    the same two records by path; a side with neither (or both) is a 400 naming it."""
    wfdb = [("files_a", Path(Q1 + ext)) for ext in (".hea", ".dat")]
    code, up = upload(url, "/v1/compare/upload", wfdb, {"example_b": "00028_lr"})
    _, by_path = call(url, "/v1/compare", {"a": {"path": Q1}, "b": {"path": Q2}})
    assert code == 200 and isinstance(up, dict)
    assert up["text"] == by_path["text"] and up["persisting"] == by_path["persisting"]
    assert up["queries"] == ["upload:01469_lr.hea", "example:00028_lr"]
    code, err = upload(url, "/v1/compare/upload", wfdb)
    assert code == 400 and "side b: expected files_b" in err["error"]
    code, err = upload(url, "/v1/compare/upload", wfdb, {"example_a": "00028_lr",
                                                         "example_b": "00028_lr"})
    assert code == 400 and "side a" in err["error"]
    code, err = upload(url, "/v1/compare/upload", [], {"example_a": "nope", "example_b": "x"})
    assert code == 400 and "example_a: 'nope' is not one of" in err["error"]


def test_ask_and_compare(url):
    code, ans = call(url, "/v1/ask", {"ecgs": [{"path": Q1}],
                                      "question": "Does this ECG show sinus rhythm?"})
    assert code == 200 and ans["options"][0] in ("yes", "no", "not sure")
    assert "sinus rhythm" in ans["evidence"] and ans["neighbours"][0]
    code, cmp = call(url, "/v1/compare", {"a": {"path": Q1}, "b": {"path": Q2}})
    assert code == 200 and "new" in cmp and cmp["neighbours_a"] and cmp["neighbours_b"]


def test_concurrent_reports_each_get_their_own_answer_or_error(url, rg):
    """Requests arriving together are computed as one batch; a bad ECG among them gets its
    own 400 and the others their own reports, each logged once."""
    from concurrent.futures import ThreadPoolExecutor

    from regen import load_ptbxl

    paths = [str(r.path) for r in load_ptbxl(SAMPLE, folds="9")[:7]]
    bodies = [{"ecg": {"path": p}, "k": 5} for p in paths]
    bodies.insert(3, {"ecg": {"path": str(SAMPLE / "records100" / "missing")}, "k": 5})
    before = generations(rg)
    with ThreadPoolExecutor(len(bodies)) as pool:
        got = list(pool.map(lambda b: call(url, "/v1/report", b), bodies))
    assert [c for c, _ in got] == [200] * 3 + [400] + [200] * 4
    assert "no such WFDB header" in got[3][1]["error"]
    want = [rg.report(p, k=5, log=False) for p in paths]
    assert [a["text"] for c, a in got if c == 200] == [w.text for w in want]
    assert [[n["key"] for n in a["neighbours"]] for c, a in got if c == 200] == \
        [[n.key for n in w.neighbours] for w in want]
    assert generations(rg) == before + 7


# -- bad input: 4xx with a clear message, never a 500 -------------------------------------------

DEEP = b'{"ecg": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize(("route", "body", "raw", "code", "says"), [
    ("/v1/report", None, b"{not json", 400, "JSON"),
    ("/v1/report", {"ecg": {"path": str(SAMPLE / "nope" / "rec")}}, None, 400,
     "no such WFDB"),
    ("/v1/report", {"ecg": {"signal": [[0.0] * 500]}}, None, 400, "with 'fs'"),
    ("/v1/report", {"ecg": {"path": Q1}, "k": 0}, None, 400, "k: Input should be greater"),
    ("/v1/report", {"ecg": {"path": Q1}, "k": 1_000_000_000}, None, 400, "at most 100"),
    ("/v1/report", {"ecg": {"path": Q1}, "k": "many"}, None, 400, "k: Input should be"),
    ("/v1/ask", {"ecgs": [], "question": "x"}, None, 400, "non-empty list"),
    ("/v1/ask", {"ecgs": [{"path": Q1}], "question": "sinus rhythm? " * 80_000}, None, 400,
     "question: String should have at most 1000"),
    ("/v1/ask", {"ecgs": [{"path": Q1}], "question": "x", "options": ["y" * 300]}, None, 400,
     "at most 200"),
    ("/v1/report", {"ecg": {"signal": [[0.1] * 500] * 12, "fs": 100, "id": "i" * 100_000}},
     None, 400, "ecg.id: String should have at most 200"),
    ("/v1/report", {"ecg": {"signal": [[0.1] * 500] * 12, "fs": 1e6}}, None, 400,
     "ecg.fs: Input should be less than or equal to 10000"),
    ("/v1/report", {"ecg": {"signal": [[0.1] * 500] * 12, "fs": 1e-300}}, None, 400, "ecg.fs"),
    ("/v1/report", None, b'{"ecg": {"signal": [[NaN, 0.1]], "fs": 100, "leads": ["I"]}}', 400,
     "NaN or infinite"),
    ("/v1/report", None, b'{"ecg": {"signal": [[Infinity, 0.1]], "fs": 100, "leads": ["I"]}}',
     400, "NaN or infinite"),
    ("/v1/report", None, b'{"ecg": {"signal": [[1e308, 0.1]], "fs": 100, "leads": ["I"]}}',
     400, "NaN or infinite"),
    ("/v1/report", None, DEEP, 400, ""),
    ("/v1/report", None, b'{"ecg": {"path": "\xff\xfe"}}', 400, ""),
    ("/v1/report", {"ecg": {"path": "x" * 100_000}}, None, 400, "at most 1024"),
    ("/v1/nothing", {}, None, 404, "Not Found"),
])
def test_bad_requests_are_clear_4xx(url, route, body, raw, code, says):
    t0 = time.monotonic()
    got, answer = call(url, route, body, raw)
    assert (got, code) == (code, code) and says in answer["error"], answer
    assert "Traceback" not in answer["error"] and time.monotonic() - t0 < 5
    assert call(url, "/health")[0] == 200                  # and the server stays up


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3"])
def test_a_bad_content_length_is_refused(url, length):
    got, _ = raw_http(url, b"POST /v1/report HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: " + length + b"\r\n\r\n" + b"{}" * 50)
    assert got.startswith(b"HTTP/1.1 400")


def test_an_oversized_body_is_refused_and_the_connection_closed(url):
    """The first server answered 400, kept the connection and parsed the unread body as a
    second request (request desync behind a proxy)."""
    smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    head = (f"POST /v1/report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {LIMIT + 1}\r\n\r\n").encode()
    got, closed = raw_http(url, head + smuggled)
    assert got.startswith(b"HTTP/1.1 413") and b"max_body_bytes" in got
    assert closed and got.count(b"HTTP/1.1") == 1


def test_a_chunked_body_over_the_limit_is_refused(url):
    chunk = b"x" * 65536
    body = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * (LIMIT // len(chunk) + 2)
    got, closed = raw_http(url, b"POST /v1/report HTTP/1.1\r\nHost: x\r\nContent-Type: "
                           b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body
                           + b"0\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 413") and closed


def test_idle_connections_are_closed(url):
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        t0 = time.monotonic()
        assert sock.recv(1) == b"" and time.monotonic() - t0 < 5      # keep_alive_s=1


# -- what clients may not choose or see --------------------------------------------------------

def test_clients_cannot_switch_the_audit_log_off(url, rg):
    before = generations(rg)
    for log in (False, "false"):
        assert call(url, "/v1/report", {"ecg": {"path": Q1}, "log": log})[0] == 200
    assert generations(rg) == before + 2


def test_answers_name_corpus_records_without_absolute_paths(url, home):
    _, body = call(url, "/v1/report", {"ecg": {"path": Q1}})
    _, ans = call(url, "/v1/ask", {"ecgs": [{"path": Q1}], "question": "Is it normal?"})
    text = json.dumps([body, ans])
    assert body["neighbours"] and str(SAMPLE) not in text and str(home) not in text
    assert all(n["path"].startswith("records100/") for n in body["neighbours"])


def test_show_paths_gives_absolute_corpus_paths(rg):
    with serving(rg, show_paths=True) as base:
        _, body = call(base, "/v1/report", {"ecg": {"path": Q1}})
    assert all(Path(n["path"]).is_absolute() for n in body["neighbours"])


@pytest.mark.parametrize("path", ["/etc/passwd", "{home}/regen.db",
                                  str(SAMPLE / ".." / ".." / "pyproject.toml")])
def test_paths_outside_the_data_roots_are_forbidden(url, home, path):
    code, body = call(url, "/v1/report", {"ecg": {"path": path.format(home=home)}})
    assert code == 403 and "outside the data_roots" in body["error"]
    assert "root:" not in body["error"]


def test_a_symlink_out_of_a_data_root_is_forbidden(rg, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "rec.hea").symlink_to("/etc/passwd")
    with serving(rg, data_roots=str(root)) as base:
        code, body = call(base, "/v1/report", {"ecg": {"path": str(root / "rec")}})
    assert code == 403 and "outside the data_roots" in body["error"]


def test_reading_by_path_is_off_by_default(rg):
    with serving(rg, data_roots="") as base:
        code, body = call(base, "/v1/report", {"ecg": {"path": Q1}})
        assert code == 403 and "set the data_roots setting" in body["error"]
        assert call(base, "/v1/report", {"ecg": {"example": "01469_lr"}})[0] in (200, 400)


def test_a_token_is_required_when_set(rg):
    with serving(rg, api_token=TOKEN) as base:
        assert call(base, "/health")[0] == 200
        code, body = call(base, "/v1/report", {"ecg": {"path": Q1}})
        assert code == 401 and "bearer token" in body["error"] and TOKEN not in body["error"]
        assert call(base, "/v1/report", {"ecg": {"path": Q1}},
                    headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(base, "/v1/report", {"ecg": {"path": Q1}},
                    headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200


def test_a_slow_request_answers_504_and_others_go_on(rg):
    with serving(rg, request_timeout_s=0.001) as base:
        code, body = call(base, "/v1/report", {"ecg": {"path": Q1}})
        assert code == 504 and "request_timeout_s" in body["error"]
        assert call(base, "/health")[0] == 200


def test_an_echoed_llm_key_is_redacted(home, llm_server):
    pytest.importorskip("langchain_openai", reason="the llm extra is not installed")
    key = "sk-secret-key-0123456789"
    llm_server.default = Status(401, message=f"Incorrect API key provided: {key}")
    with Regen.open(home, refiner="llm", llm_base_url=llm_server.base_url, llm_model="m",
                    llm_api_key=key, llm_timeout=5, llm_retries=0) as llm_rg, \
            running(llm_rg, settings=replace(llm_rg.settings, data_roots=str(SAMPLE))) as base:
        code, body = call(base, "/v1/report", {"ecg": {"path": Q1}})
        with llm_rg.db.session() as s:
            row = store.list_generations(s, 1)[0]
    assert code == 200 and "HTTP 401" in body["fallback_reason"]
    assert key not in json.dumps(body) and "[redacted]" in body["fallback_reason"]
    assert key not in (row.error or "") and "HTTP 401" in row.error


# -- the command --------------------------------------------------------------------------------

def test_serve_command_starts_and_answers(home):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "regen", "serve", "--home", str(home),
                             "--port", str(port), "--data-root", str(SAMPLE)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                code, body = call(f"http://127.0.0.1:{port}", "/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "regen serve did not come up"
                time.sleep(0.2)
        assert code == 200 and body["count"] == 240
        assert call(f"http://127.0.0.1:{port}", "/v1/report", {"ecg": {"path": Q1}})[0] == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"POST /v1/report 200" in err          # the access log: method, route, status, ms


def _children(pid: int) -> list[str]:
    """Command lines of the processes whose parent is `pid`."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError, IndexError):
            continue
    return out


def test_serve_with_two_processes_answers_reports_and_scan_jobs(home):
    """--processes 2: two worker processes on one port, each with its own model; reports from
    concurrent clients are all answered, a scan job is polled to its result whichever process
    answers each poll, and SIGTERM stops the workers too."""
    import threading

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "regen", "serve", "--home", str(home),
                             "--port", str(port), "--processes", "2", "--data-root",
                             os.pathsep.join([str(SAMPLE), str(MITDB)])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                if call(base, "/health")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, "regen serve --processes 2 did not come up"
            time.sleep(0.3)
        workers = [c for c in _children(proc.pid) if "spawn_main" in c]
        assert len(workers) == 2, _children(proc.pid)
        codes: list[int] = []

        def client(path: str) -> None:
            for _ in range(3):
                codes.append(call(base, "/v1/report", {"ecg": {"path": path}})[0])

        threads = [threading.Thread(target=client, args=(q,)) for q in (Q1, Q2) * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes == [200] * 12
        code, job = call(base, "/v1/scan", {"ecg": {"path": str(MITDB / "100")},
                                           "async": True})
        assert code == 202
        seen: list[dict] = []
        done = poll(base, job["job_id"], seen)
        assert done["status"] == "done", done
        assert all(s["status"] in ("queued", "running", "done") for s in seen), seen
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert b"2 processes" in err
    assert not [c for c in _children(proc.pid) if "spawn_main" in c]


def test_serve_refuses_a_public_address_without_a_token(home):
    env = {k: v for k, v in os.environ.items() if k != "REGEN_API_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "regen", "serve", "--home", str(home),
                           "--host", "0.0.0.0", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "REGEN_API_TOKEN" in done.stderr


def test_serve_refuses_port_0_with_several_processes(home):
    done = subprocess.run([sys.executable, "-m", "regen", "serve", "--home", str(home),
                           "--port", "0", "--processes", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "name the port" in done.stderr


def test_workers_that_keep_dying_at_start_stop_the_server(tmp_path):
    """A worker that cannot open its home exits at once: after QUICK_EXITS such exits in a
    row the supervisor stops with an error instead of restarting it forever."""
    from regen import load_settings
    from regen.errors import ConfigError
    from regen.server import QUICK_EXITS, _serve_processes

    s = replace(load_settings(tmp_path / "no-index-here"), serve_processes=1)
    with pytest.raises(ConfigError, match=f"{QUICK_EXITS} worker processes in a row exited"):
        _serve_processes(s, "127.0.0.1", free_port(), {})


def test_measure_and_scan_answer_over_http(url):
    code, m = call(url, "/v1/measure", {"ecg": {"path": Q1}})
    assert code == 200 and m["pr_ms"] > 210 and m["line"].startswith("HR ")
    assert any(f["label"] == "LPR" and f["present"] for f in m["findings"])
    code, sc = call(url, "/v1/scan", {"ecg": {"path": Q1}, "window": 5, "step": 5},
                    timeout=120)
    assert code == 200 and {"summary", "episodes", "windows"} <= set(sc)
    assert len(sc["windows"]) == 2
    code, bad = call(url, "/v1/scan", {"ecg": {"path": Q1}, "window": 0.1})
    assert code == 400 and "window" in bad["error"]


# -- scan jobs ----------------------------------------------------------------------------------

MITDB = Path(__file__).resolve().parent.parent / "data" / "other" / "mitdb"


def scan_serving(rg, **settings):
    return serving(rg, **{"data_roots": os.pathsep.join([str(SAMPLE), str(MITDB)]), **settings})


def poll(base: str, job_id: str, seen: list[dict], headers: dict[str, str] | None = None,
         limit_s: float = 300) -> dict:
    deadline = time.monotonic() + limit_s
    while True:
        code, body = call(base, f"/v1/scan/{job_id}", headers=headers)
        assert code == 200, body
        seen.append(body)
        if body["status"] in ("done", "failed"):
            return body
        assert time.monotonic() < deadline, f"scan job still {body['status']} after {limit_s} s"
        time.sleep(0.05)


def test_a_long_record_scan_is_a_job_polled_to_its_result(rg):
    """MIT-BIH 100 (30 min) over scan_async_after_s: 202 and a job whose progress rises to 1
    while it runs; the result equals the synchronous answer of the same request."""
    body = {"ecg": {"path": str(MITDB / "100")}}
    with scan_serving(rg, scan_async_after_s=600) as base:
        code, job = call(base, "/v1/scan", body)
        assert code == 202 and job["status"] in ("queued", "running") and job["progress"] == 0
        seen: list[dict] = []
        done = poll(base, job["job_id"], seen)
        assert done["status"] == "done", done
        assert seen[0]["status"] != "done"         # 361 windows take seconds to scan
        fractions = [b["progress"] for b in seen]
        assert fractions == sorted(fractions) and 0 <= fractions[0] < 1 and fractions[-1] == 1
        assert done["windows"] == done["windows_done"] == 361
        assert any(0 < f < 1 for f in fractions), fractions           # batches of 64 windows
        got = done["result"]
        assert [e["finding"] for e in got["episodes"]].count("AFIB") == 0
        assert got["summary"]["n_ve"] == 1 and len(got["windows"]) == 361
    with scan_serving(rg, scan_async_after_s=3600, request_timeout_s=300) as base:
        code, sync = call(base, "/v1/scan", body, timeout=300)
    assert code == 200 and sync["summary"] == got["summary"]
    assert sync["episodes"] == got["episodes"] and sync["events"] == got["events"]


def test_async_on_request_unknown_and_expired_jobs(rg):
    with scan_serving(rg, scan_job_ttl_s=1.0) as base:
        code, job = call(base, "/v1/scan", {"ecg": {"path": Q1}, "async": True})
        assert code == 202
        done = poll(base, job["job_id"], [])
        assert done["status"] == "done" and len(done["result"]["windows"]) == 1
        assert call(base, "/v1/scan", {"ecg": {"path": Q1}})[0] == 200     # short: answered
        time.sleep(1.2)
        code, gone = call(base, f"/v1/scan/{job['job_id']}")
        assert code == 404 and "scan_job_ttl_s" in gone["error"]
        code, unknown = call(base, "/v1/scan/not-a-job")
        assert code == 404 and "'not-a-job' is unknown" in unknown["error"]


def test_scan_jobs_outlive_a_restart(rg):
    """A finished job is answered by the next server on the same home, with its result; a job
    that was running when the server stopped is failed, saying so; odd ids read no file."""
    with scan_serving(rg) as base:
        code, job = call(base, "/v1/scan", {"ecg": {"path": Q1}, "async": True})
        assert code == 202
        first = poll(base, job["job_id"], [])
    assert first["status"] == "done"
    store = rg.settings.home / "scan-jobs"
    (store / "Zm9yZ290dGVuLWpvYi0x.json").write_text('{"status": "running", "done": 3, '
                                                    '"total": 9, "error": null}')
    with scan_serving(rg) as base:
        code, again = call(base, f"/v1/scan/{job['job_id']}")
        assert code == 200 and again["status"] == "done"
        assert again["result"] == first["result"]
        code, lost = call(base, "/v1/scan/Zm9yZ290dGVuLWpvYi0x")
        assert code == 200 and lost["status"] == "failed" and "server stopped" in lost["error"]
        assert call(base, "/v1/scan/..%2F..%2Fregen.db")[0] == 404


def test_scan_jobs_keep_auth_data_roots_and_their_bound(rg, tmp_path):
    with scan_serving(rg, api_token=TOKEN, scan_async_after_s=0, scan_max_jobs=1) as base:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert call(base, "/v1/scan", {"ecg": {"path": Q1}})[0] == 401
        outside = tmp_path / "x.edf"
        outside.write_bytes(b"0" * 300)
        code, body = call(base, "/v1/scan", {"ecg": {"path": str(outside)}}, headers=auth)
        assert code == 403 and "data_roots" in body["error"]
        code, job = call(base, "/v1/scan", {"ecg": {"path": str(MITDB / "100")}}, headers=auth)
        assert code == 202
        code, busy = call(base, "/v1/scan", {"ecg": {"path": Q1}}, headers=auth)
        assert code == 429 and "scan_max_jobs=1" in busy["error"]
        code, body = call(base, f"/v1/scan/{job['job_id']}")
        assert code == 401 and TOKEN not in json.dumps(body)
        assert poll(base, job["job_id"], [], headers=auth)["status"] == "done"
        code, job2 = call(base, "/v1/scan", {"ecg": {"path": Q1}}, headers=auth)
        assert code == 202                       # room again once the first has finished


def test_another_processs_job_is_read_from_its_file(tmp_path):
    """With serve_processes > 1 a poll may reach a process that did not start the job: it
    answers from the job's file while the process running it lives, and says the job was
    lost once that process is gone."""
    import anyio

    from regen.scan_jobs import ScanJobs

    jobs = ScanJobs(anyio.CapacityLimiter(1), ttl_s=60, max_jobs=1, store=tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "cnVubmluZy1lbHNld2hlcmU.json").write_text(json.dumps(
            {"status": "running", "done": 3, "total": 12, "error": None, "pid": other.pid}))
        job = jobs.get("cnVubmluZy1lbHNld2hlcmU")
        assert job is not None and job.status == "running" and job.progress() == 0.25
        assert json.loads(job.to_json_bytes())["windows_done"] == 3
    finally:
        other.kill()
        other.wait()
    job = jobs.get("cnVubmluZy1lbHNld2hlcmU")          # not kept: read again, now lost
    assert job is not None and job.status == "failed" and "server stopped" in job.error


def test_a_scan_job_that_fails_says_why_without_paths(rg, tmp_path):
    """A WFDB header whose .dat is cut short fails in the job, not at submission."""
    (tmp_path / "100.hea").write_bytes((MITDB / "100.hea").read_bytes())
    (tmp_path / "100.dat").write_bytes((MITDB / "100.dat").read_bytes()[:100_000])
    with scan_serving(rg, data_roots=str(tmp_path), scan_async_after_s=0) as base:
        code, job = call(base, "/v1/scan", {"ecg": {"path": str(tmp_path / "100")}})
        assert code == 202
        failed = poll(base, job["job_id"], [])
    assert failed["status"] == "failed" and "result" not in failed
    assert "could not read samples" in failed["error"], failed
    assert str(tmp_path) not in failed["error"]
