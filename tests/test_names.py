"""One name per thing across the JSON answers, the HTTP models, the CLI text and the log rows."""

from __future__ import annotations

from types import SimpleNamespace

from regen.cli.logview import log_json
from regen.compare import compare_neighbours
from regen.serve_models import AnswerOut, ComparisonOut, ReportOut
from regen.types import Answer, Neighbour, Report


def nb(key: str, report: str, labels: tuple[str, ...]) -> Neighbour:
    return Neighbour(id=1, key=key, score=0.9, report=report, labels=labels)


A = [nb("a1", "sinus rhythm. left bundle branch block.", ("SR", "CLBBB"))] * 3
B = [nb("b1", "atrial fibrillation. left bundle branch block.", ("AFIB", "CLBBB"))] * 3


def test_http_models_name_what_the_json_names():
    cmp = compare_neighbours(A, B)
    answers = ((ReportOut, Report("x", 0.5, (), (), False, "findings").to_json()),
               (AnswerOut, Answer("q?", ("yes",), 0.5, False, ((),), queries=("e",)).to_json()),
               (ComparisonOut, cmp.to_json()))
    for model, json_ in answers:
        assert set(model.model_fields) <= set(json_), (model.__name__,
                                                       set(model.model_fields) - set(json_))
    assert {"queries", "new", "resolved", "persisting"} <= set(ComparisonOut.model_fields)
    assert "queries" in AnswerOut.model_fields


def test_comparison_text_says_what_its_json_says():
    cmp = compare_neighbours(A, B)
    lbbb, sr, af = ("complete left bundle branch block", "sinus rhythm", "atrial fibrillation")
    assert list(cmp.persisting) == [lbbb] and list(cmp.resolved) == [sr]
    assert list(cmp.new) == [af]
    assert f"Persisting: {lbbb}" in cmp.text and "Unchanged" not in cmp.text
    assert f"New: {af}" in cmp.text and f"Resolved: {sr}" in cmp.text


def test_log_rows_use_the_answers_names():
    row = SimpleNamespace(id=3, created_at="2025-01-01 10:00:00", kind="report",
                          query={"query": "rec1", "build": "b"}, question=None,
                          refiner="llm", model="m", prompt_hash="abc", output="sinus rhythm.",
                          confidence=0.7, abstained=False, error="InvalidReplyError: x",
                          timings={"retrieve_s": 0.1}, settings={}, neighbours=[],
                          findings=[], input=None)
    got = log_json(row)
    report_keys = set(Report("x", 0.5, (), (), False, "findings").to_json())
    assert {"query", "text", "fallback_reason", "model", "prompt_hash", "timings",
            "neighbours", "findings", "input", "confidence", "abstained",
            "refiner"} <= set(got) & report_keys
    assert got["query"] == "rec1" and got["text"] == "sinus rhythm."
    ask = log_json(SimpleNamespace(**{**vars(row), "kind": "ask", "question": "q?",
                                      "query": {"queries": ["rec1"]}}))
    assert ask["queries"] == ["rec1"] and "query" not in ask
    # rows logged before the names were aligned
    old = log_json(SimpleNamespace(**{**vars(row), "kind": "compare",
                                      "query": {"sources": ["r1", "r2"]}}))
    assert old["queries"] == ["r1", "r2"]
    assert log_json(SimpleNamespace(**{**vars(row), "query": {"source": "r0"}}))["query"] == "r0"
