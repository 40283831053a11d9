"""ECG-QA style question answering: loading, ground truth from labels, derived questions, parsing,
the kNN vote, and an end-to-end evaluation on the bundled sample (corpus folds 1-8, questions
about fold 9).

The ECG-QA fixture holds real samples of the dataset (template variant, copied verbatim), about
records that are in the bundled sample, so their gold answers are a known answer for the labels.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from regen import DataError, Neighbour, load_ptbxl, load_settings
from regen.api import Regen
from regen.qa import (
    ParsedQuestion,
    answer_knn,
    item_question,
    label_answer,
    parse_question,
)
from regen.qa_data import (
    DIAGNOSTIC_CODES,
    FORM_CODES,
    RHYTHM_CODES,
    SCP_NAMES,
    TEMPLATES,
    QAItem,
    derive_questions,
    load_ecgqa,
    neighbour_answers,
    record_answers,
    record_ecg_id,
)
from regen.qa_eval import evaluate_qa, majority_answers
from regen.rebuild import rebuild

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"

ECGQA_SAMPLES = {
    "train": [
        {"template_id": 26, "question_id": 1721, "sample_id": 122220,
         "question_type": "single-verify", "attribute_type": "noise",
         "question": "Does this ECG show burst noise in lead I?", "answer": ["yes"],
         "ecg_id": [1249], "attribute": ["burst noise"]},
        {"template_id": 27, "question_id": 1745, "sample_id": 125571,
         "question_type": "single-verify", "attribute_type": "noise",
         "question": "Does this ECG show baseline drift?", "answer": ["yes"], "ecg_id": [1425],
         "attribute": ["baseline drift"]},
        {"template_id": 27, "question_id": 1746, "sample_id": 125886,
         "question_type": "single-verify", "attribute_type": "noise",
         "question": "Does this ECG show static noise?", "answer": ["yes"], "ecg_id": [877],
         "attribute": ["static noise"]},
        {"template_id": 27, "question_id": 1746, "sample_id": 126062,
         "question_type": "single-verify", "attribute_type": "noise",
         "question": "Does this ECG show static noise?", "answer": ["no"], "ecg_id": [1264],
         "attribute": ["static noise"]},
        {"template_id": 27, "question_id": 1747, "sample_id": 126399,
         "question_type": "single-verify", "attribute_type": "noise",
         "question": "Does this ECG show burst noise?", "answer": ["no"], "ecg_id": [205],
         "attribute": ["burst noise"]},
        {"template_id": 28, "question_id": 1749, "sample_id": 127051,
         "question_type": "single-verify", "attribute_type": "noise",
         "question": "Does this ECG show any kind of noises in lead II?", "answer": ["no"],
         "ecg_id": [205], "attribute": ["any kind of noises"]},
    ],
    "valid": [
        {"template_id": 68, "question_id": 2470, "sample_id": 60000,
         "question_type": "comparison_irrelevant-query", "attribute_type": "numeric_feature",
         "question": "What numeric features of the second ECG now have become normal as "
                     "compared to the first ECG?", "answer": ["p duration", "qt interval"],
         "ecg_id": [3076, 3426], "attribute": None},
    ],
    "test": [
        {"template_id": 69, "question_id": 2471, "sample_id": 80000,
         "question_type": "comparison_irrelevant-query", "attribute_type": "numeric_feature",
         "question": "What numeric features of the second ECG are now considered abnormal "
                     "values as compared to the first ECG?",
         "answer": ["qrs duration", "rr interval"], "ecg_id": [17229, 20344], "attribute": None},
    ],
}


@pytest.fixture(scope="module")
def ecgqa_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ecgqa")
    for split, samples in ECGQA_SAMPLES.items():
        d = root / "ptbxl" / "template" / split
        d.mkdir(parents=True)
        (d / "00000.json").write_text(json.dumps(samples), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def records():
    return {record_ecg_id(r): r for r in load_ptbxl(SAMPLE)}


@pytest.fixture(scope="module")
def corpus():
    return load_ptbxl(SAMPLE, folds="1-8")


@pytest.fixture(scope="module")
def queries():
    return load_ptbxl(SAMPLE, folds="9")


def test_load_ecgqa_reads_the_layout_and_types(ecgqa_dir):
    items = load_ecgqa(ecgqa_dir)
    assert [i.split for i in items] == ["train"] * 6 + ["valid", "test"]
    first = items[0]
    assert first == QAItem(122220, 26, "single-verify", "noise",
                           "Does this ECG show burst noise in lead I?", ("yes",), (1249,),
                           ("burst noise",), "ecgqa", 1721, "train")
    assert items[-1].attribute is None and items[-1].ecg_ids == (17229, 20344)
    assert load_ecgqa(ecgqa_dir / "ptbxl", splits=("test",))[0].sample_id == 80000


def test_load_ecgqa_errors_name_what_is_missing(ecgqa_dir, tmp_path):
    with pytest.raises(DataError, match="paraphrased"):
        load_ecgqa(ecgqa_dir, variant="paraphrased")
    with pytest.raises(DataError, match="no JSON files for split 'extra'"):
        load_ecgqa(ecgqa_dir, splits=("train", "extra"))
    bad = tmp_path / "template" / "train"
    bad.mkdir(parents=True)
    (bad / "0.json").write_text(json.dumps([{"template_id": 1, "question": "?"}]))
    with pytest.raises(DataError, match=r"0.json\[0\].*lacks"):
        load_ecgqa(tmp_path, splits=("train",))


def test_vocabulary_tables_match_scp_statements():
    with (SAMPLE / "scp_statements.csv").open(newline="") as fh:
        rows = {r[""]: r for r in csv.DictReader(fh)}
    assert set(SCP_NAMES) == set(rows)
    for codes, column in ((DIAGNOSTIC_CODES, "diagnostic"), (FORM_CODES, "form"),
                          (RHYTHM_CODES, "rhythm")):
        assert codes == {c for c, r in rows.items() if r[column] == "1.0"}, column


def test_record_answers_of_a_known_record(records):
    # ptbxl:833: {'ASMI': 50, 'ILMI': 50, 'CLBBB': 100, 'PVC': 100, '1AVB': 100, 'SR': 0},
    # heart_axis LAD, infarction_stadium1 unknown, static_noise ' , leicht, ', extra_beats 4ES
    a = record_answers(records[833])
    assert a["scp_code"] == {
        "myocardial infarction in anteroseptal leads",
        "myocardial infarction in inferolateral leads", "complete left bundle branch block",
        "ventricular premature complex", "first degree av block", "sinus rhythm"}
    assert a["scp_code_uncertain"] == {"myocardial infarction in anteroseptal leads",
                                       "myocardial infarction in inferolateral leads"}
    assert a["superclass"] == {"myocardial infarction", "conduction disturbance"}
    assert a["stage_of_infarction"] == {"unknown stage of myocardial infarction"}
    assert a["extra_systole"] == {"extrasystoles"}
    assert a["heart_axis"] == {"normal heart axis"}      # LAD is the German "Linkstyp"
    assert a["noise"] == {"static noise"}
    # ptbxl:28: {'NST_': 100, 'DIG': 100, 'SR': 0}, no noise, no infarction
    b = record_answers(records[28])
    assert b["scp_code"] == {"non-specific st changes", "digitalis effect", "sinus rhythm"}
    assert b["superclass"] == {"st/t change"} and not b["noise"]
    assert b["stage_of_infarction"] == {"none of myocardial infarction"}


def test_labels_reproduce_ecgqa_gold_on_real_samples(ecgqa_dir, records):
    """The fixture's template-27 samples are about bundled records: the labels must give
    ECG-QA's own answers. Lead-specific noise is measured from the signal instead (parsed with
    its lead); numeric samples are not answerable."""
    answered = 0
    for item in load_ecgqa(ecgqa_dir):
        q = item_question(item)
        if " in lead " in item.question:
            assert q is not None and q.measured and q.lead and q.lead in item.question
            continue
        if item.template_id != 27:
            assert q is None
            continue
        truth = [record_answers(records[e]) for e in item.ecg_ids]
        assert label_answer(q, truth) == item.answer, item
        answered += 1
    assert answered == 4


def _as_neighbour(rec, score: float = 0.9) -> Neighbour:
    return Neighbour(record_ecg_id(rec), rec.key, score, rec.report(), tuple(rec.scp),
                     rec.superclasses, rec.patient_id, rec.path, rec.attributes)


def test_derive_questions_is_deterministic_and_its_gold_is_the_labels(queries):
    items = derive_questions(queries, seed=3, per_template=12)
    assert items == derive_questions(queries, seed=3, per_template=12)
    assert items != derive_questions(queries, seed=4, per_template=12)
    assert {i.template_id for i in items} == set(TEMPLATES)
    assert all(i.source == "derived" for i in items)
    assert max(sum(i.template_id == t for i in items) for t in TEMPLATES) == 12
    by_id = {record_ecg_id(r): r for r in queries}
    for it in items:
        rec = by_id[it.ecg_ids[0]]
        truth = record_answers(rec)
        q = item_question(it)
        assert q is not None and label_answer(q, [truth]) == it.answer, it
        if it.template_id == 27:
            assert (it.answer == ("yes",)) == (it.attribute[0] in truth["noise"])
        # a neighbour that is the record itself answers like its labels ("not sure" aside:
        # neighbours carry no likelihoods)
        if it.answer != ("not sure",):
            ans = answer_knn(it, [[_as_neighbour(rec)]])
            assert set(ans.options) == set(it.answer) and ans.confidence == 1.0, it
    verify = [i for i in items if i.question_type == "single-verify"]
    assert {a for i in verify for a in i.answer} >= {"yes", "no"}


def _nb(i: int, labels=(), attributes=(), score: float = 0.9) -> Neighbour:
    return Neighbour(i, f"ptbxl:{i}", score, "", tuple(labels), (), str(i), "", tuple(attributes))


def test_answer_knn_unanimous_and_split_votes():
    q = ParsedQuestion("single-verify", "scp_code", "scp_code",
                       ("complete left bundle branch block",), "Does this ECG show LBBB?")
    yes = answer_knn(q, [[_nb(i, ["CLBBB", "SR"]) for i in range(5)]])
    assert yes.options == ("yes",) and not yes.abstained and yes.confidence == pytest.approx(1.0)
    assert yes.evidence == {"complete left bundle branch block": pytest.approx(1.0)}
    assert yes.question_type == "single-verify" and len(yes.neighbours[0]) == 5
    split = answer_knn(q, [[_nb(i, ["CLBBB"] if i % 2 else ["SR"]) for i in range(6)]])
    assert split.options == ("not sure",) and split.abstained and split.confidence < 0.1
    # the closest neighbours weigh more: scores 0.95 vs 0.80 outweigh a 1-vs-3 count
    close = answer_knn(q, [[_nb(0, ["CLBBB"], score=0.95)] +
                           [_nb(i, ["SR"], score=0.80) for i in range(1, 4)]])
    assert close.options == ("yes",)


def test_answer_knn_choose_query_and_ignored_unknown_axis():
    nbrs = [_nb(0, [], [("noise", "baseline drift"), ("noise", "static noise")]),
            _nb(1, [], [("noise", "baseline drift")]), _nb(2, [], [("noise", "static noise")])]
    choose = ParsedQuestion("single-choose", "noise", "noise", ("burst noise", "baseline drift"))
    assert answer_knn(choose, [nbrs]).options == ("baseline drift",)
    both = ParsedQuestion("single-choose", "noise", "noise", ("static noise", "baseline drift"))
    assert answer_knn(both, [nbrs]).options == ("static noise", "baseline drift")
    query = ParsedQuestion("single-query", "noise", "noise",
                           ("baseline drift", "burst noise", "electrodes problems",
                            "static noise"))
    assert set(answer_knn(query, [nbrs]).options) == {"baseline drift", "static noise"}
    assert answer_knn(query, [[_nb(0), _nb(1)]]).options == ("none",)
    axis = ParsedQuestion("single-query", "heart_axis", "heart_axis",
                          ("left axis deviation", "normal heart axis"))
    # two neighbours without an axis do not vote; the one with an axis decides
    got = answer_knn(axis, [[_nb(0), _nb(1), _nb(2, [], [("axis", "ALAD")], score=0.5)]])
    assert got.options == ("left axis deviation",)
    assert answer_knn(axis, [[_nb(0)]]).abstained


def test_answer_knn_comparisons_combine_the_two_ecgs():
    first = [_nb(i, ["CLBBB"]) for i in range(3)]
    second = [_nb(i, ["CLBBB", "AFIB"]) for i in range(3)]
    names = ("atrial fibrillation", "complete left bundle branch block", "sinus rhythm")

    def ask(relation: str, kind: str = "query", options=names):
        q = ParsedQuestion(f"comparison_irrelevant-{kind}", "scp_code", "scp_code", options,
                           relation=relation)
        return answer_knn(q, [first, second]).options

    assert ask("new") == ("atrial fibrillation",)
    assert ask("persisting") == ("complete left bundle branch block",)
    assert ask("resolved") == ("none",)
    assert ask("new", "verify", ("complete left bundle branch block",)) == ("no",)
    from regen.errors import QuestionError

    with pytest.raises(QuestionError, match="2 ECG"):
        answer_knn(ParsedQuestion("comparison_irrelevant-query", "scp_code", "scp_code", names,
                                  relation="new"), [first])


@pytest.mark.parametrize("text, kind, group, options", [
    ("Does this ECG show left bundle branch block?", "verify", "scp_code",
     ("complete left bundle branch block",)),
    ("Does this ECG show symptoms of CLBBB?", "verify", "scp_code",
     ("complete left bundle branch block",)),
    ("Is there evidence of non-diagnostic t abnormalities on this ECG?", "verify", "scp_code",
     ("non-diagnostic t abnormalities",)),
    ("does the ecg show signs of inferior myocardial infarction", "verify", "scp_code",
     ("myocardial infarction in inferior leads",)),
    ("Does this ECG show symptoms of myocardial infarction?", "verify", "superclass",
     ("myocardial infarction",)),
    ("Is this a normal ECG?", "verify", "scp_code", ("normal ecg",)),
    ("Does this ECG show left axis deviation?", "verify", "heart_axis",
     ("left axis deviation",)),
    ("Does this ECG show any kind of noises?", "verify", "noise", ("any kind of noises",)),
    ("Which noise does this ECG show, baseline drift or static noise?", "choose", "noise",
     ("baseline drift", "static noise")),
    ("What kind of noises does this ECG show?", "query", "noise", None),
    ("What is the heart axis of this ECG?", "query", "heart_axis", None),
    ("What rhythm-related symptoms does this ECG show?", "query", "scp_code", None),
])
def test_parse_question_phrasings(text, kind, group, options):
    q = parse_question(text)
    assert q is not None and q.kind == kind and q.group == group
    if options is not None:
        assert q.options == options
    assert q.question == text


@pytest.mark.parametrize("text", ["What is the QT interval?", "How old is the patient?",
                                  "Does this ECG show atrial fibrillation in lead V1?",
                                  "Does this ECG show a purple elephant?"])
def test_parse_question_returns_none_when_nothing_matches(text):
    assert parse_question(text) is None


def test_majority_answers_per_template():
    items = [QAItem(i, 27, "single-verify", "noise", "q", (a,), (1,), None, "derived")
             for i, a in enumerate(["no", "no", "yes"])]
    table = majority_answers(items)
    assert table[27] == frozenset({"no"}) and table[("single-verify", "noise")] == {"no"}


def test_evaluate_qa_end_to_end_on_the_bundled_sample(tmp_path, corpus, queries, ecgqa_dir):
    rebuild(load_settings(tmp_path), corpus, data_source="sample", progress=False)
    train = derive_questions(corpus, seed=0, per_template=20)
    test = derive_questions(queries, seed=1, per_template=20)
    real = load_ecgqa(ecgqa_dir)
    by_id = {record_ecg_id(r): r for r in queries}
    with Regen.open(tmp_path) as rg:
        res = evaluate_qa(rg, test + real, by_id, k=10, train_items=train)
    # real samples: burst noise of ecg 205 (fold 9) and the two lead-specific noise questions
    # are answered (measured from the signal); the other three are about ECGs not given
    assert res["n"] == len(test) + len(real) and res["answered"] == len(test) + 3
    assert sum(res["skipped"].values()) == len(real) - 3
    # the kNN vote is scored on what it can answer: everything but the lead-specific two
    assert res["baselines"]["knn_vote"]["overall"]["n"] == len(test) + 1
    assert set(res["by_type"]) == {"single-verify", "single-choose", "single-query"}
    for report in (res, res["baselines"]["majority"]):
        assert 0.0 <= report["overall"]["accuracy"] <= 1.0
        for summary in list(report["by_type"].values()) + list(report["by_attribute"].values()):
            assert summary["n"] > 0 and 0.0 <= summary["accuracy"] <= 1.0
            assert 0.0 <= summary["abstained"] <= 1.0
    assert "single-verify/scp_code" in res["by_attribute"]
    assert res["baselines"]["majority"]["overall"]["abstained"] == 0.0

    # Cases with a known answer. Gold that no answerer can give: every item is wrong. The
    # majority baseline equals its definition, recomputed here from the training items.
    from dataclasses import replace

    with Regen.open(tmp_path) as rg:
        wrong = evaluate_qa(rg, [replace(it, answer=("no such answer",)) for it in test], by_id,
                            k=10)
        on_test = evaluate_qa(rg, test, by_id, k=10, train_items=train)
    assert wrong["answered"] == len(test) and wrong["overall"]["accuracy"] == 0.0
    table = majority_answers(train)
    hits = [table.get(it.template_id, table.get((it.question_type, it.attribute_type)))
            == frozenset(it.answer) for it in test]
    assert 0 < sum(hits) < len(test)
    assert on_test["baselines"]["majority"]["overall"]["accuracy"] == \
        pytest.approx(sum(hits) / len(test))


def test_qa_eval_scores_what_ask_answers(sample_home, queries):
    # gold set to what `Regen.ask` answers (the item's words and options, as a user passes
    # them): every item must be scored right (issue 15 item 2)
    from dataclasses import replace

    by_id = {record_ecg_id(r): r for r in queries}
    test = derive_questions(queries, seed=1, per_template=20)
    with Regen.open(sample_home) as rg:
        own = [replace(it, answer=rg.ask(by_id[it.ecg_ids[0]].path, it.question,
                                         options=it.attribute or None, k=10,
                                         log=False).options) for it in test]
        right = evaluate_qa(rg, own, by_id, k=10)
    assert right["answered"] == len(test) and right["overall"]["accuracy"] == 1.0


def test_neighbour_answers_match_record_answers_without_likelihoods(records):
    rec = records[833]
    got, want = neighbour_answers(_as_neighbour(rec)), record_answers(rec)
    assert got["scp_code_uncertain"] == set()
    assert {k: v for k, v in got.items() if k != "scp_code_uncertain"} == {
        k: v for k, v in want.items() if k != "scp_code_uncertain"}
