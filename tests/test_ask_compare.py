"""Questions and comparisons through the API and the CLI, and the report/QA evals' shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import db as store
from regen import Regen, load_ptbxl, load_settings

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
Q1 = str(SAMPLE / "records100" / "01000" / "01469_lr")
Q2 = str(SAMPLE / "records100" / "00000" / "00028_lr")


@pytest.fixture(scope="module")
def home(sample_home):
    return sample_home


def test_verify_question_answers_with_evidence(home):
    # Q1 (ecg 1469, fold 9) is in sinus rhythm by its own report ("sinus rhythm. prolonged pr
    # interval. ..."), and no report in the sample near it says atrial fibrillation
    with Regen.open(home) as rg:
        ans = rg.ask(Q1, "Does this ECG show sinus rhythm?", k=10)
        af = rg.ask(Q1, "Does this ECG show atrial fibrillation?", k=10)
    assert ans.options == ("yes",) and not ans.abstained
    assert ans.evidence["sinus rhythm"] >= 0.6
    assert af.options == ("no",) and af.evidence["atrial fibrillation"] <= 0.4
    assert len(ans.neighbours) == 1 and len(ans.neighbours[0]) == 10


def test_unparsed_question_abstains_and_is_logged(home):
    with Regen.open(home) as rg:
        ans = rg.ask(Q1, "What did the patient have for breakfast?")
        assert ans.abstained and ans.options == ("not sure",)
        with rg.db.session() as s:
            row = store.list_generations(s, 1)[0]
        assert row.kind == "ask" and row.question.startswith("What did")


def test_comparing_an_ecg_with_itself_finds_no_change(home):
    with Regen.open(home) as rg:
        cmp = rg.compare(Q1, Q1)
    assert not cmp.new and not cmp.resolved
    assert [n.key for n in cmp.neighbours_a] == [n.key for n in cmp.neighbours_b]


def test_comparison_findings_are_grounded_in_each_neighbour_set(home):
    with Regen.open(home) as rg:
        cmp = rg.compare(Q1, Q2)
    for finding, (a, b) in cmp.new.items():
        assert b >= 0.5 > a, finding
    for finding, (a, b) in cmp.resolved.items():
        assert a >= 0.5 > b, finding
    assert cmp.queries == (Q1, Q2) and 0 <= cmp.confidence <= 1


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "regen", *args], capture_output=True,
                          text=True, timeout=300)


def test_cli_ask_and_compare_json(home):
    out = _cli("ask", Q1, "Is there left axis deviation?", "--json", "--home", str(home))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["question_type"] == "single-verify"
    out = _cli("compare", Q1, Q2, "--json", "--home", str(home))
    assert out.returncode == 0, out.stderr
    assert {"new", "resolved", "persisting", "confidence"} <= set(json.loads(out.stdout))
    bad = _cli("ask", "Is there AF?", "--home", str(home))
    assert bad.returncode == 1 and "error:" in bad.stderr


@pytest.mark.slow
def test_eval_report_has_every_metric_and_baseline(tmp_path):
    from regen.evalout import markdown
    from regen.evaluate import eval_report

    res = eval_report(load_settings(tmp_path), SAMPLE, limit=20)
    keys = {"n", "bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "meteor", "cider", "bertscore",
            "label_f1_macro", "label_f1_per_class"}
    assert keys <= set(res)
    assert set(res["baselines"]) >= {"random", "most_frequent", "raw_signal_nn", "label_oracle"}
    for b in res["baselines"].values():
        assert keys <= set(b)
    assert res["n"] == 20
    lat = res["latency_s"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["max"] and "fallback" not in res   # consensus
    # the oracle reads labels, so its clinical F1 must beat the label-blind constant report
    assert res["baselines"]["label_oracle"]["label_f1_macro"] > \
        res["baselines"]["most_frequent"]["label_f1_macro"]
    # and the same against PTB-XL's own codes, which no labeller reads from the reference
    assert res["baselines"]["label_oracle"]["codes_f1_macro"] > \
        res["baselines"]["most_frequent"]["codes_f1_macro"]
    assert set(res["codes_f1_per_class"]) == set(res["label_f1_per_class"])
    assert "against the queries' PTB-XL SCP codes" in markdown(res)


def test_eval_qa_reports_per_type_with_majority_baseline(home, tmp_path):
    from regen.evaluate import eval_qa, eval_settings
    from regen.qa_data import derive_questions, record_ecg_id

    settings = load_settings(tmp_path)
    res = eval_qa(settings, SAMPLE, per_template=5)
    d = res["derived"]
    # the same items asked as a user asks them: the eval's accuracy is exactly theirs
    queries = load_ptbxl(SAMPLE, folds="9")
    by_id = {record_ecg_id(r): r for r in queries}
    items = derive_questions(queries, seed=0, per_template=5)
    with Regen.from_settings(eval_settings(settings, SAMPLE, "1-8")) as rg:
        right = [set(rg.ask([by_id[e].path for e in it.ecg_ids], it.question,
                            options=it.attribute or None, k=10, log=False).options)
                 == set(it.answer) for it in items]
    assert d["answered"] == len(items) and d["overall"]["accuracy"] == sum(right) / len(right)
    assert set(d["by_type"]) <= {"single-verify", "single-choose", "single-query"}
    assert "majority" in d["baselines"] and "knn_vote" in d["baselines"]
    assert all("answered_accuracy" in v for v in d["by_type"].values())
