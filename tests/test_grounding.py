"""No refiner states a finding it has no ground for, checked with the report labeller on every
fold-9 ECG of the bundled sample, and every output lists its neighbours: consensus states only
what the neighbours' reports support, the findings report and an LLM's reply only decided
findings. The `llm` refiner is driven through the real client by a loopback server playing a
model that embellishes: it writes the decided findings but adds a finding to some reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from llm_server import Respond

from regen import Regen, load_ptbxl
from regen.labeller import explicit_labels, label_report

pytest_plugins = ["llm_server"]

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
INVENTED = ("atrial fibrillation.", "complete left bundle branch block.",
            "acute anterior myocardial infarction.")


@pytest.fixture(scope="module")
def home(sample_home):
    return sample_home


@pytest.fixture(scope="module")
def queries():
    return load_ptbxl(SAMPLE, folds="9")


def _check_grounded(report) -> None:
    assert report.neighbours, "every output lists its neighbours"
    supported = set().union(*(label_report(n.report) for n in report.neighbours))
    stated = label_report(report.text) if not report.abstained else set()
    assert stated <= supported, (report.text, stated - supported)


def test_consensus_states_only_supported_findings(home, queries):
    with Regen.open(home, refiner="consensus") as rg:
        reports = list(rg.reports([q.path for q in queries], log=False))
    assert len(reports) == len(queries) >= 50
    for r in reports:
        _check_grounded(r)
        assert r.cited and set(r.cited) <= {n.key for n in r.neighbours}


def test_findings_reports_state_only_decided_findings_in_real_sentences(home, queries):
    """The findings refiner writes new text (clauses of several reports), so grounding is
    checked on what it decided: every label the text states is a finding it decided (with its
    calibrated probability over the CV threshold), and every sentence is verbatim in the corpus
    report it names."""
    import db as store
    from regen.compose import clean_report

    with Regen.open(home) as rg:
        reports = list(rg.reports([q.path for q in queries], log=False))
        for r in reports:
            if r.abstained:
                continue
            decided = {f.label for f in r.findings if f.present}
            # a whole report is read as the labeller reads any report; stitched clauses each for
            # what they say themselves (a bare "sinus rhythm" claims no normal ECG)
            stated = label_report(r.text) if len(r.sentences) == 1 else set().union(
                *(explicit_labels(t) for t, _ in r.sentences))
            assert stated <= decided, (r.text, stated - decided)
            with rg.db.session() as s:
                for text, key in r.sentences:
                    rid = store.record_id_for_key(s, key)
                    assert text in clean_report(store.fetch_records(s, [rid])[rid].reports["en"])
    assert sum(not r.abstained for r in reports) >= len(reports) // 2


def embellishing_model(body: dict) -> str:
    """Keeps the first two neighbours of the prompt and writes the decided findings the prompt
    names; every other request it appends a finding (the prompt's own sequence number decides
    which)."""
    prompt = body["messages"][-1]["content"]
    keys = re.findall(r"^<<<REPORT (\S+) similarity [0-9.]+>>>$", prompt, flags=re.M)
    named = re.search(r"are: (.*)\.$", prompt, flags=re.M)
    text = ". ".join((named.group(1) if named else "sinus rhythm").split(", ")) + "."
    h = sum(map(ord, prompt)) % 4
    if h < len(INVENTED):
        text = f"{text} {INVENTED[h]}"
    return json.dumps({"kept": keys[:2], "text": text})


def test_llm_refiner_never_passes_an_undecided_finding(home, queries, llm_server):
    """The LLM's text, when used, states only decided findings (neighbour text cannot vouch
    for a reply: it may be poisoned); when not used, the findings report is written instead."""
    pytest.importorskip("langchain_openai")
    llm_server.default = Respond(embellishing_model)
    with Regen.open(home) as rg:
        want = {r.query: r for r in rg.reports([q.path for q in queries], log=False)}
    with Regen.open(home, refiner="llm", llm_base_url=llm_server.base_url,
                    llm_model="embellisher", llm_retries=0) as rg:
        reports = list(rg.reports([q.path for q in queries], log=False))
    assert len(llm_server.received) == len(reports)
    for r in reports:
        assert r.neighbours, "every output lists its neighbours"
        decided = {f.label for f in r.findings if f.present}
        if r.fallback_reason:
            assert r.text == want[r.query].text and r.model is None
        else:
            assert explicit_labels(r.text) <= decided, (r.text, decided)
            assert r.model == "embellisher"
    fell_back = [r for r in reports if r.fallback_reason]
    assert fell_back and len(fell_back) < len(reports)     # both branches ran
    assert any("decided findings" in r.fallback_reason or "never decides" in r.fallback_reason
               for r in fell_back)


def test_a_rhythm_regen_never_decides_is_not_shown_or_composed():
    """A corpus report naming a wandering pacemaker is neither shown nor a sentence source: its
    "AV block 1st degree" clause once put a wandering pacemaker beside "sinus rhythm"."""
    from regen.compose import clean_report
    from regen.untrusted import never_decided

    text = "steep type wandering pacemaker AV block 1st degree intraventr. Line faulty"
    assert never_decided(text) and clean_report(text) is None
    assert clean_report("sinus rhythm a-v block i position type normal") is not None


def test_neighbours_are_shown_readable():
    """A neighbour's report is shown without coder's fragments or broken encoding, and stays
    stored as written (provenance); text regen never states itself is still shown."""
    from regen.compose import UNREADABLE, readable_report
    from regen.types import Neighbour

    broken = "sinus rhythm Ã³Â¿ Ã³Â¬ st-t SÃ„Ã³Â¬ning"
    edited = "sinus rhythm. left ventricular hypertrophy. Edit: LVH 100, ISC"
    assert Neighbour(1, "ptbxl:450", 0.8, broken).shown_report == UNREADABLE
    n = Neighbour(2, "ptbxl:1", 0.8, edited)
    assert n.shown_report == "sinus rhythm. left ventricular hypertrophy."
    assert n.to_json()["report"] == edited and n.to_json()["report_shown"] == n.shown_report
    assert readable_report("sinus rhythm. consider wpw syndrome") == \
        "sinus rhythm. consider wpw syndrome"
