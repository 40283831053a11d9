"""A report's AFIB: the retrieved probability blended with the measured AF score
(regen.diagnose.MEASURED_BLEND), on real bundled PTB-XL ECGs of the held-out fold."""

from __future__ import annotations

from pathlib import Path

from regen import Regen, measure, read_ecg
from regen.diagnose import MEASURED_BLEND
from regen.measured import AF_CUT, af_finding, af_probability, all_findings

R100 = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample" / "records100"
AF_ECG = R100 / "00000" / "00722_lr"        # fold 9, PTB-XL AFIB
SINUS_ECG = R100 / "01000" / "01469_lr"     # fold 9, sinus rhythm


def _afib(report):
    return next((f for f in report.findings if f.label == "AFIB"), None)


def test_the_af_score_reads_the_rhythm():
    af = af_finding(measure(read_ecg(AF_ECG)))
    sinus = af_finding(measure(read_ecg(SINUS_ECG)))
    assert af is not None and af.present and af.probability >= AF_CUT
    assert "AF score" in af.evidence and af.value is not None and af.value > 0.1
    assert sinus is not None and not sinus.present and sinus.probability < 0.2
    assert af in all_findings(measure(read_ecg(AF_ECG)))


def test_reports_blend_the_af_score(sample_home):
    with Regen.open(sample_home) as rg:
        af = _afib(rg.report(AF_ECG, log=False))
        sinus = _afib(rg.report(SINUS_ECG, log=False))
    assert af is not None and af.present
    assert any("AF score" in e for e in af.evidence) and "blended" in af.note
    assert sinus is None or not sinus.present
    # the blend: a regular rhythm is never AF; the measured score moves the retrieved
    # probability towards its own side of the cut-off
    b = MEASURED_BLEND["AFIB"]
    assert af_probability(0.9, 0.3, 0.95, 0.01, b) == 0.0
    assert af_probability(0.2, 0.3, 0.95, 0.2, b) > 0.2 > af_probability(0.2, 0.3, 0.05, 0.2, b)


def test_rhythm_questions_agree_with_the_report(sample_home):
    """ECG-QA's questions on statements a report decides take its decision (FROM_REPORT): for
    an AF and a sinus ECG the choose and query answers name the rhythm the report states, and
    the answer model's vote alone is what they replace."""
    import regen.api as api

    choose = "Which rhythm-related symptom does this ECG show, {} or {}?"
    with Regen.open(sample_home) as rg:
        for ecg, label, name in ((AF_ECG, "AFIB", "atrial fibrillation"),
                                 (SINUS_ECG, "SR", "sinus rhythm")):
            rep = rg.report(ecg, log=False)
            assert any(f.label == label and f.present for f in rep.findings)
            opts = ["atrial fibrillation", "sinus rhythm"]
            a = rg.ask(ecg, choose.format(*opts), options=opts, log=False)
            assert a.options == (name,), a
            q = rg.ask(ecg, "What rhythm-related symptoms does this ECG show?", log=False)
            assert name in q.options, q
            f = next(f for f in rep.findings if f.label == label)
            on_scale = 0.5 + 0.5 * (f.probability - f.threshold) / (1 - f.threshold)
            assert abs(a.evidence[name] - on_scale) < 1e-9          # the report's, rescaled
            assert a.evidence[next(o for o in opts if o != name)] < 0.5
        assert api.FROM_REPORT is None                       # every finding a report decides


def test_answers_take_the_reports_consistent_decision():
    """A report states one rhythm (regen.diagnose.resolve), and PTB-XL codes one: sinus rhythm
    over its threshold but not stated beside a sinus tachycardia is answered "no"; a stated
    finding is answered "yes" even where its probability is under its threshold (a superclass a
    code brought in); without another rhythm, sinus rhythm stands."""
    from regen.api import _from_report
    from regen.types import Finding

    sr_dropped = Finding("sinus rhythm", "SR", 0.9, False, "retrieved", threshold=0.4)
    sr = Finding("sinus rhythm", "SR", 0.9, True, "retrieved", threshold=0.4)
    st = Finding("sinus tachycardia", "STACH", 0.7, True, "measured", threshold=0.5)
    weak = Finding("sinus tachycardia", "STACH", 0.3, False, "retrieved", threshold=0.5)
    opts = ["sinus rhythm", "sinus tachycardia"]
    both = _from_report([sr_dropped, st], {}, opts)
    assert both["sinus tachycardia"] >= 0.5 > both["sinus rhythm"]
    alone = _from_report([sr, weak], {}, opts)
    assert alone["sinus rhythm"] >= 0.5 > alone["sinus tachycardia"]
    name = "left anterior fascicular block"
    lafb = Finding(name, "LAFB", 0.2, True, "retrieved", threshold=0.3)
    assert _from_report([lafb], {}, [name])[name] >= 0.5
