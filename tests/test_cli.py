"""The CLI as a user runs it: a real subprocess, stdout/stderr, exit codes, --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = DATA / "ptbxl-sample"
QUERY = SAMPLE / "records100" / "01000" / "01469_lr"


def regen(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "regen", *args], capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"regen {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    h = tmp_path_factory.mktemp("clihome")
    out = regen("index", "rebuild", "--data", str(SAMPLE), "--folds", "1-8", "--home", str(h),
                "--json")
    built = json.loads(out.stdout)
    assert built["count"] == 240 and not built["up_to_date"]
    return h


def test_report_json(home):
    out = regen("report", str(QUERY), "-k", "4", "--json", "--home", str(home))
    r = json.loads(out.stdout)
    assert {"text", "confidence", "neighbours", "cited", "abstained"} <= set(r)
    assert len(r["neighbours"]) == 4
    assert {"id", "score", "report"} <= set(r["neighbours"][0])


def test_report_human_and_several_paths(home):
    out = regen("report", str(QUERY), str(DATA / "other" / "mitdb" / "100"), "--home",
                str(home))
    assert out.stdout.count("== ") == 2
    assert "not a diagnosis" in out.stdout
    assert "confidence:" in out.stdout


def test_rebuild_again_is_up_to_date(home):
    out = regen("index", "rebuild", "--data", str(SAMPLE), "--home", str(home), "--json")
    assert json.loads(out.stdout)["up_to_date"] is True


def test_index_info_and_logs(home):
    info = json.loads(regen("index", "info", "--home", str(home), "--json").stdout)
    assert info["manifest"]["count"] == 240
    assert info["manifest"]["encoder_fingerprint"] == info["active"]["encoder"]
    regen("report", str(QUERY), "--home", str(home))
    logs = regen("logs", "-n", "1", "--home", str(home), "--json").stdout.strip().splitlines()
    assert len(logs) == 1 and json.loads(logs[0])["kind"] == "report"


@pytest.mark.parametrize("args, needle", [
    (["report", "does/not/exist"], "does/not/exist"),
    (["report", str(SAMPLE / "ptbxl_database.csv")], "ptbxl_database"),
    (["index", "rebuild", "--data", "nowhere"], "ptbxl_database.csv"),
    (["index", "rebuild", "--data", str(SAMPLE), "--folds", "x-y"], "folds"),
])
def test_errors_are_one_line_and_nonzero(home, args, needle):
    proc = regen(*args, "--home", str(home), check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and needle in lines[-1]
    assert "Traceback" not in proc.stderr


def test_report_without_index_fails_with_the_fix(tmp_path):
    proc = regen("report", str(QUERY), "--home", str(tmp_path), check=False)
    assert proc.returncode == 1 and "regen index rebuild" in proc.stderr


def test_db_current_and_upgrade(home):
    cur = regen("db", "current", "--home", str(home))
    assert "revision 0003" in cur.stdout and "code head 0003" in cur.stdout
    up = regen("db", "upgrade", "--home", str(home))
    assert "at revision 0003" in up.stdout


def test_refiner_flag_on_report_and_serve(home):
    out = regen("report", str(QUERY), "--refiner", "consensus", "--no-log", "--json",
                "--home", str(home))
    r = json.loads(out.stdout)
    assert r["refiner"] == "consensus" and r["sentences"] == []      # not the findings text
    for cmd in (["report", str(QUERY)], ["serve", "--port", "1"]):
        proc = regen(*cmd, "--refiner", "gpt", "--home", str(home), check=False)
        assert proc.returncode == 1, proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert "refiner='gpt' is unknown" in last
        assert "'findings', 'consensus', 'llm' or 'local'" in last
    # the README documents the flag where the commands take it
    readme = (DATA.parent / "README.md").read_text()
    assert "regen report PATH... [-k 10] [--json] [--refiner" in readme
    assert "regen serve [--host 127.0.0.1] [--port 8080] [--refiner" in readme
    proc = regen("report", str(QUERY), "--refiner", "llm", "--home", str(home), "--no-log",
                 check=False)
    assert proc.returncode == 1 and "refiner 'llm' needs llm_base_url" in proc.stderr


def test_logs_list_and_one_entry_in_full(home):
    question = "Does this ECG show atrial fibrillation?"
    rep = json.loads(regen("report", str(QUERY), "--json", "--home", str(home)).stdout)
    regen("ask", str(QUERY), question, "--home", str(home))
    listed = regen("logs", "-n", "2", "--home", str(home)).stdout
    assert question in listed and f"ECG: {QUERY}" in listed
    assert "refiner findings" in listed and "prompt " in listed and "retrieve_s=" in listed
    rows = [json.loads(x) for x in regen("logs", "-n", "2", "--home", str(home),
                                         "--json").stdout.splitlines()]
    ask_row, report_row = rows
    assert ask_row["kind"] == "ask" and ask_row["question"] == question
    assert ask_row["queries"] == [str(QUERY)] and report_row["query"] == str(QUERY)
    # one entry in full, under the names the Report JSON uses
    full = json.loads(regen("logs", str(report_row["id"]), "--json", "--home",
                            str(home)).stdout)
    assert full["text"] == rep["text"] and full["fallback_reason"] is None
    assert [f["label"] for f in full["findings"]] == [f["label"] for f in rep["findings"]]
    assert [n["key"] for n in full["neighbours"]] == [n["key"] for n in rep["neighbours"]]
    assert full["input"] == rep["input"] and full["timings"] == rep["timings"]
    text = regen("logs", str(report_row["id"]), "--home", str(home)).stdout
    assert rep["text"] in text and "findings (probability; * present):" in text
    assert "neighbours:" in text and f"{rep['neighbours'][0]['key']}" in text
    assert "input: 12 leads" in text and "fallback_reason:" in text
    proc = regen("logs", "987654", "--home", str(home), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: no generation log with id 987654")


def test_compare_and_ask_use_the_json_names_in_text(home):
    other = SAMPLE / "records100" / "01000" / "01470_lr"
    if not other.with_suffix(".hea").exists():
        other = sorted((SAMPLE / "records100" / "01000").glob("*.hea"))[1].with_suffix("")
    cmp = json.loads(regen("compare", str(QUERY), str(other), "--json", "--no-log", "--home",
                           str(home)).stdout)
    assert cmp["queries"] == [str(QUERY), str(other)] and "persisting" in cmp
    text = regen("compare", str(QUERY), str(other), "--no-log", "--home", str(home)).stdout
    assert "Persisting:" in text and "Unchanged" not in text
    assert f"neighbours of {QUERY}:" in text
    ans = json.loads(regen("ask", str(QUERY), "Is the rhythm regular?", "--json", "--no-log",
                           "--home", str(home)).stdout)
    assert ans["queries"] == [str(QUERY)]


@pytest.fixture
def read_only_home(home, tmp_path):
    """`home` seen through a read-only mount (root: a bind mount, as permissions do not stop
    root), or a copy without write permission (anyone else)."""
    import os
    import shutil

    ro = tmp_path / "ro"
    if os.geteuid() == 0:
        ro.mkdir()
        try:
            subprocess.run(["mount", "--bind", str(home), str(ro)], check=True,
                           capture_output=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"cannot bind-mount a read-only home: {exc}")
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True,
                           capture_output=True)
            yield ro
        finally:
            subprocess.run(["umount", str(ro)], check=False)
        return
    shutil.copytree(home, ro)
    for p in [ro, *ro.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        yield ro
    finally:
        for p in [ro, *ro.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)


def test_read_only_home_still_reports_without_logging_and_lists_logs(read_only_home):
    out = regen("report", str(QUERY), "--home", str(read_only_home), "--no-log", "--json")
    assert json.loads(out.stdout)["text"]
    regen("logs", "-n", "1", "--home", str(read_only_home))
    # asking for a log row there is one clear error, not a traceback
    proc = regen("report", str(QUERY), "--home", str(read_only_home), check=False)
    assert proc.returncode == 1 and "readonly database" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_report_on_a_file_named_in_another_encoding(home, tmp_path):
    import os

    import numpy as np

    raw = os.fsencode(tmp_path) + b"/\xff\xfe.npy"
    with open(raw, "wb") as fh:
        np.save(fh, np.random.default_rng(14).normal(size=(12, 1000)).astype(np.float32))
    proc = subprocess.run([sys.executable.encode(), b"-m", b"regen", b"report", raw, b"--fs",
                           b"100", b"--home", os.fsencode(home)], capture_output=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    assert b"Traceback" not in proc.stderr
