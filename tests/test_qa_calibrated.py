"""Questions answered from calibrated probabilities, ECG-QA's two-ECG wording through
Regen.ask, and the QA eval scoring exactly what Regen.ask answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from regen.qa import parse_comparison, parse_question

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
NORMAL = SAMPLE / "records100/00000/00047_lr"          # fold 9, "sinus rhythm normal ekg"
AFIB = SAMPLE / "records100/00000/00722_lr"            # fold 9, atrial fibrillation


@pytest.mark.parametrize("text, relation, kind, option", [
    ("Does the second ECG still show atrial fibrillation as compared to the first ECG?",
     "persisting", "verify", "atrial fibrillation"),
    ("Does the second ECG newly show left ventricular hypertrophy compared to the first ECG?",
     "new", "verify", "left ventricular hypertrophy"),
    ("Is atrial fibrillation no longer present in the second ECG compared to the first ECG?",
     "resolved", "verify", "atrial fibrillation"),
    ("What diagnostic symptoms of the second ECG are newly detected compared to the first ECG?",
     "new", "query", None),
])
def test_ecgqa_comparison_wording_parses(text, relation, kind, option) -> None:
    q = parse_comparison(text)
    assert q is not None and q.relation == relation and q.kind == kind
    if option:
        assert q.options == (option,)
    else:
        assert len(q.options) > 10 and q.group == "scp_code"
    assert parse_question(text, n_ecgs=2) == q


def test_numeric_comparisons_and_single_questions_are_not_comparisons() -> None:
    assert parse_comparison("What numeric features of the second ECG are still abnormal as "
                            "compared to the first ECG?") is None
    assert parse_comparison("Does this ECG show atrial fibrillation?") is None
    q = parse_question("Does this ECG show atrial fibrillation?", n_ecgs=2)
    assert q is not None and q.relation == "new"


@pytest.fixture(scope="module")
def rg(sample_home: Path):
    from regen import Regen

    with Regen.open(sample_home) as r:
        yield r


def test_verify_uses_calibrated_probabilities_and_gets_clear_cases_right(rg) -> None:
    afib = rg.ask(AFIB, "Does this ECG show atrial fibrillation?", log=False)
    normal = rg.ask(NORMAL, "Does this ECG show atrial fibrillation?", log=False)
    assert afib.refiner == "calibrated" and "calibrated" in afib.text
    assert afib.options == ("yes",) and normal.options == ("no",)
    assert afib.evidence["atrial fibrillation"] > normal.evidence["atrial fibrillation"]


def test_two_ecgs_answer_ecgqa_comparison_questions(rg) -> None:
    new = rg.ask([NORMAL, AFIB], "Does the second ECG newly show atrial fibrillation compared "
                 "to the first ECG?", log=False)
    still = rg.ask([NORMAL, AFIB], "Does the second ECG still show atrial fibrillation "
                   "compared to the first ECG?", log=False)
    gone = rg.ask([AFIB, NORMAL], "Is atrial fibrillation no longer present in the second ECG "
                  "compared to the first ECG?", log=False)
    assert new.options == ("yes",) and still.options == ("no",) and gone.options == ("yes",)
    assert len(new.neighbours) == 2


def test_an_implausible_amplitude_gets_not_sure(rg) -> None:
    from dataclasses import replace

    from regen.reader import read_ecg

    ecg = read_ecg(AFIB)
    ans = rg.ask(replace(ecg, signal=ecg.signal * 1000),
                 "Does this ECG show atrial fibrillation?", log=False)
    assert ans.abstained and ans.options == ("not sure",) and "microvolts" in ans.text


@pytest.mark.parametrize("question, field", [
    ("What is the heart rate?", "hr_bpm"), ("What is the PR interval?", "pr_ms"),
    ("How long is the QRS?", "qrs_ms"), ("What is the QTc?", "qtc_bazett_ms"),
    ("What is the axis in degrees?", "axis_deg"), ("What is the P-wave axis?", "p_axis_deg"),
    ("What is the T axis?", "t_axis_deg")])
def test_numeric_questions_are_measured(rg, question, field) -> None:
    from regen.measure import measure
    from regen.reader import read_ecg

    m = measure(read_ecg(SAMPLE / "records100/01000/01469_lr")).to_json()
    ans = rg.ask(SAMPLE / "records100/01000/01469_lr", question, log=False)
    assert ans.refiner == "measured" and not ans.abstained
    assert ans.evidence[field] == pytest.approx(m[field])
    assert "measured from the signal" in ans.text


def test_rhythm_regularity_is_measured(rg) -> None:
    assert rg.ask(NORMAL, "Is the rhythm regular?", log=False).options == ("yes",)
    assert rg.ask(AFIB, "Is the rhythm regular?", log=False).options == ("no",)
    flat = __import__("regen").ECG(__import__("numpy").zeros((1, 1000), "float32"), 100.0,
                                   ("II",), "flat")
    unsure = rg.ask(flat, "What is the heart rate?", log=False)
    assert unsure.options == ("not sure",) and "cannot be measured" in unsure.text
