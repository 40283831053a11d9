"""`regen serve` over real HTTP on loopback: reports by path and by inline signal, questions,
comparisons, health, and clear 400/404 answers for bad requests; the `serve` command itself
starts and answers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port

from regen import Regen, read_ecg
from regen.server import make_server

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
Q1 = str(SAMPLE / "records100" / "01000" / "01469_lr")
Q2 = str(SAMPLE / "records100" / "00000" / "00028_lr")


@pytest.fixture(scope="module")
def home(sample_home):
    return sample_home


@pytest.fixture(scope="module")
def url(home):
    rg = Regen.open(home)
    httpd = make_server(rg, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    yield f"http://{host}:{port}"
    httpd.shutdown()
    httpd.server_close()
    rg.close()


def call(url: str, route: str, body: object | None = None,
         raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url + route, data=data, method="GET" if data is None else "POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_health(url, home):
    code, body = call(url, "/health")
    assert code == 200 and body["status"] == "ok" and body["count"] == 240


def test_report_by_path_equals_the_api(url, home):
    code, body = call(url, "/v1/report", {"ecg": {"path": Q1}, "k": 5, "log": False})
    assert code == 200
    with Regen.open(home) as rg:
        want = rg.report(Q1, k=5, log=False)
    assert body["text"] == want.text and body["cited"] == list(want.cited)
    assert [n["key"] for n in body["neighbours"]] == [n.key for n in want.neighbours]
    assert "not a diagnosis" in body["disclaimer"]


def test_report_of_an_inline_signal_equals_the_file(url):
    ecg = read_ecg(Q1)
    inline = {"signal": ecg.signal.tolist(), "fs": ecg.fs, "leads": list(ecg.leads), "id": "x"}
    _, by_path = call(url, "/v1/report", {"ecg": {"path": Q1}, "log": False})
    code, by_value = call(url, "/v1/report", {"ecg": inline, "log": False})
    assert code == 200 and by_value["text"] == by_path["text"]
    assert [n["key"] for n in by_value["neighbours"]] == [n["key"] for n in by_path["neighbours"]]


def test_ask_and_compare(url):
    code, ans = call(url, "/v1/ask", {"ecgs": [{"path": Q1}],
                                      "question": "Does this ECG show sinus rhythm?"})
    assert code == 200 and ans["options"][0] in ("yes", "no", "not sure")
    assert "sinus rhythm" in ans["evidence"] and ans["neighbours"][0]
    code, cmp = call(url, "/v1/compare", {"a": {"path": Q1}, "b": {"path": Q2}})
    assert code == 200 and "new" in cmp and cmp["neighbours_a"] and cmp["neighbours_b"]


@pytest.mark.parametrize(("route", "body", "raw", "code", "says"), [
    ("/v1/report", None, b"{not json", 400, "body is not JSON"),
    ("/v1/report", {"ecg": {"path": "/nope/rec"}}, None, 400, "/nope/rec.hea: no such WFDB"),
    ("/v1/report", {"ecg": {"signal": [[0.0] * 500]}}, None, 400, "with 'fs'"),
    ("/v1/report", {"ecg": {"path": Q1}, "k": 0}, None, 400, "k: expected a positive"),
    ("/v1/ask", {"ecgs": [], "question": "x"}, None, 400, "non-empty list"),
    ("/v1/nothing", {}, None, 404, "routes: /v1/report"),
])
def test_bad_requests_are_clear(url, route, body, raw, code, says):
    got, answer = call(url, route, body, raw)
    assert got == code and says in answer["error"]


def test_serve_command_starts_and_answers(home):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "regen", "serve", "--home", str(home),
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
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
    finally:
        proc.terminate()
        proc.wait(timeout=30)
