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


def test_readme_documents_the_refiner_as_report_ask_and_serve_take_it(home):
    # the README once showed `--refiner` for report, ask and serve; only `eval report` has it.
    # What it documents now: the `refiner` setting, e.g. REGEN_REFINER, which report reads.
    readme = (DATA.parent / "README.md").read_text()
    for line in readme.splitlines():
        if "--refiner" in line:
            assert "eval report" in line, line
    assert "REGEN_REFINER=llm regen report" in readme
    import os

    proc = subprocess.run([sys.executable, "-m", "regen", "report", str(QUERY), "--home",
                           str(home), "--no-log"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "REGEN_REFINER": "llm", "REGEN_LLM_BASE_URL": "",
                               "REGEN_LLM_MODEL": ""})
    assert proc.returncode == 1 and "refiner 'llm' needs llm_base_url" in proc.stderr


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
