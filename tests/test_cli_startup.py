"""`regen --help`, `regen logs` and `regen index list` start without the heavy libraries: each runs
in a fresh interpreter, which then reports what it imported (`bench/cli_startup.py` times them)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "scipy", "faiss", "sklearn", "wfdb", "langchain_openai")
PROBE = """
import json, runpy, sys
watch = json.loads(sys.argv[2])
sys.argv = ["regen", *json.loads(sys.argv[1])]
try:
    runpy.run_module("regen", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in watch)}))
"""


def imported(*args: str) -> tuple[str, dict]:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(args)),
                           json.dumps(HEAVY + ("alembic",))],
                          capture_output=True, text=True, timeout=120)
    *out, last = proc.stdout.strip().splitlines()
    return "\n".join(out), json.loads(last)


@pytest.mark.parametrize("args", [["--help"], ["logs"], ["index", "list"]])
def test_light_commands_import_no_heavy_library(tmp_path, args):
    home = ["--home", str(tmp_path)] if args != ["--help"] else []
    imported("logs", "--home", str(tmp_path))          # makes (migrates) the database once
    out, got = imported(*args, *home)
    assert got["code"] in (0, None), out
    heavy = [m for m in got["loaded"] if m.split(".")[0] in HEAVY]
    assert heavy == [], f"regen {' '.join(args)} imported {heavy[:5]}"
    # a database already at the newest revision is opened without alembic
    assert not [m for m in got["loaded"] if m.startswith("alembic")]
    if args == ["--help"]:
        assert "report" in out and "logs" in out


def test_the_public_names_still_resolve_lazily():
    code = ("import sys, regen; assert 'torch' not in sys.modules; "
            "from regen import Regen, Report, read_ecg; assert Regen.open and read_ecg; "
            "print('torch' in sys.modules, sorted(set(regen.__all__) - set(dir(regen))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "[]"]       # Regen needs torch: loaded on use
