"""Findings in words: zero-shot scores, search by meaning, plain-word questions and the
random-ECG control, on the bundled sample (corpus folds 1-8, queries fold 9)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from regen import Regen, load_ptbxl
from regen.errors import ConfigError, QuestionError
from regen.qa_free import parse_free, phrase_of
from regen.zeroshot import TextIndex, check_labels, percentile, split_labels, text_projection

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
Q1 = str(SAMPLE / "records100" / "01000" / "01469_lr")     # fold 9: sinus rhythm, long PR


@pytest.fixture(scope="module")
def home(sample_home):
    return sample_home


@pytest.fixture(scope="module")
def fold9():
    return load_ptbxl(SAMPLE, folds="9")


def test_text_projection_of_index_vectors_matches_the_raw_output(home):
    # the index keeps unit vectors; rescaled by sqrt(dim) they project like the raw output
    from regen.prepare import prepare
    from regen.reader import read_ecg

    with Regen.open(home) as rg:
        enc = rg.encoder
        p = prepare(read_ecg(Q1), fs=enc.cfg.fs, window_s=enc.cfg.window_s, band=enc.cfg.band)
        x = torch.from_numpy(p.windows[:1].astype(np.float32))
        m = torch.from_numpy(p.mask[None])
        with torch.inference_mode():
            h = enc.model(x, m)
            direct = torch.nn.functional.normalize(enc.model.text_head(h), dim=-1).numpy()
        z = torch.nn.functional.normalize(h, dim=-1).numpy()
        assert float((text_projection(enc, z) * direct).sum()) > 0.99


def test_an_encoder_without_a_text_head_is_refused_with_the_fix():
    class Headless:
        model = torch.nn.Module()
    with pytest.raises(ConfigError, match="no text head"):
        text_projection(Headless(), np.zeros((1, 128), np.float32))


def test_percentile_counts_ties_half_and_orders_columns():
    ref = np.sort(np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 5.0]]), axis=0)
    got = percentile(np.array([[1.5, 5.0], [-1.0, 6.0]]), ref)
    assert got.tolist() == [[0.5, 0.5], [0.0, 1.0]]


def test_labels_are_checked_with_a_fix():
    assert split_labels("atrial fibrillation|afib; left bundle branch block;") == [
        "atrial fibrillation|afib", "left bundle branch block"]
    for bad, why in (([], "no labels"), (["a", "a"], "repeat"), (["|"], "empty"),
                     (["x" * 301], "at most 300"), ([str(i) for i in range(65)], "at most 64")):
        with pytest.raises(QuestionError, match=why):
            check_labels(bad)


def test_text_index_is_saved_beside_the_build_and_reused(home):
    with Regen.open(home) as rg:
        ti = rg.text_index
        path = TextIndex.file(rg.build_path, "en")
    assert path.exists()
    assert ti.reports.shape == (240, 384) and len(ti.ref_rows) == 240
    assert ti.ref_vrows.shape == (240, ti.k)
    # no corpus ECG votes for itself in the reference sample
    assert not (ti.ref_vrows == ti.ref_rows[:, None]).any()
    before = path.stat().st_mtime_ns
    with Regen.open(home) as rg:
        again = rg.text_index
    assert path.stat().st_mtime_ns == before and again.encoder == ti.encoder


def test_zero_shot_scores_rank_fold9_ecgs_by_superclass(home, fold9):
    # no labels used: "normal ecg" in words should rank the fold-9 NORM ECGs above the others
    with Regen.open(home) as rg:
        res = rg.classify_many([r.path for r in fold9], ["normal ecg", "myocardial infarction"])
    from sklearn.metrics import roc_auc_score

    y = np.array(["NORM" in r.superclasses for r in fold9])
    s = np.array([c.scores["normal ecg"] for c in res])
    assert roc_auc_score(y, s) >= 0.7
    c = res[0]
    assert c.path == "text+neighbours" and set(c.scores) == {"normal ecg", "myocardial infarction"}
    assert all(0.0 <= v <= 1.0 for v in c.scores.values())
    assert set(c.parts["normal ecg"]) >= {"text", "neighbours", "text_cosine"}
    assert c.findings["myocardial infarction"]["label"] == "MI"
    assert len(c.neighbours) == 10 and "not probabilities" in c.note


def test_text_only_path_ignores_the_neighbours(home):
    with Regen.open(home) as rg:
        t = rg.classify(Q1, ["atrial fibrillation"], path="text")
        both = rg.classify(Q1, ["atrial fibrillation"])
        with pytest.raises(ConfigError, match="expected one of"):
            rg.classify(Q1, ["x"], path="magic")
    assert t.path == "text" and t.neighbours == ()
    assert t.scores["atrial fibrillation"] == pytest.approx(
        both.parts["atrial fibrillation"]["text"])


def test_search_by_meaning_finds_reports_that_say_it(home):
    from regen.labeller import label_report

    with Regen.open(home) as rg:
        hits = rg.search("left ventricular hypertrophy", 5)
        by_ecg = rg.search("left ventricular hypertrophy", 5, via="ecg")
        with pytest.raises(ConfigError, match="1-1000"):
            rg.search("x", 0)
    assert [h.via for h in hits] == ["report"] * 5
    assert sum("LVH" in label_report(h.report) for h in hits) >= 4
    assert hits == sorted(hits, key=lambda h: -h.score)
    assert len(by_ecg) == 5 and by_ecg[0].via == "ecg"


def test_cli_classify_and_search_json(home):
    base = [sys.executable, "-m", "regen"]
    out = subprocess.run(base + ["classify", Q1, "--labels", "sinus rhythm; atrial fibrillation",
                                 "--json", "--home", str(home)],
                         capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    assert doc["query"].endswith("01469_lr") and doc["path"] == "text+neighbours"
    assert set(doc["scores"]) == {"sinus rhythm", "atrial fibrillation"}
    out = subprocess.run(base + ["search", "complete left bundle branch block", "-k", "3",
                                 "--json", "--home", str(home)],
                         capture_output=True, text=True, check=True)
    hits = json.loads(out.stdout)
    assert len(hits) == 3 and set(hits[0]) == {"key", "score", "report", "labels",
                                               "superclasses", "via"}
    bad = subprocess.run(base + ["classify", Q1, "--labels", ";", "--home", str(home)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "no labels given" in bad.stderr


# -- plain-word questions --------------------------------------------------------------------

@pytest.mark.parametrize("question,kind,codes", [
    ("What is the rhythm?", "rhythm", ()),
    ("Is there evidence of an old inferior infarction?", "finding", ("IMI",)),
    ("Are there signs of left ventricular hypertrophy?", "finding", ("LVH",)),
    ("Is this sinus tachycardia?", "finding", ("STACH",)),
    ("Is there AF on this tracing?", "finding", ("AFIB",)),
    ("Do the ST segments or T waves look abnormal?", "finding", ("STTC",)),
    ("Is there a delta wave?", "words", ()),
])
def test_parse_free_reads_what_is_asked(question, kind, codes):
    fq = parse_free(question)
    assert fq is not None and fq.kind == kind and fq.codes == codes


def test_parse_free_leaves_other_questions_alone():
    assert parse_free("What did the patient have for breakfast?") is None
    assert parse_free("") is None
    assert phrase_of("Is there a delta wave on this ECG?") == "delta wave"


def test_plain_word_questions_are_answered_from_the_findings(home):
    with Regen.open(home) as rg:
        rhythm = rg.ask(Q1, "What is the rhythm?", log=False)
        imi = rg.ask(Q1, "Is there evidence of an old inferior infarction?", log=False)
        rep = rg.report(Q1, log=False)
        off = rg.ask(Q1, "Is the patient hungry?", log=False)
    assert rhythm.options == ("sinus rhythm",) and rhythm.question_type == "free-form"
    assert "sinus rhythm" in rhythm.evidence and "measured rate" in rhythm.text
    f = next(x for x in rep.findings if x.label == "IMI")
    assert imi.options == (("yes",) if f.present else ("no",))
    assert list(imi.evidence.values()) == [pytest.approx(f.probability)]
    assert "Support set" in imi.text
    assert off.options == ("not sure",) and "not what ECG reports describe" in off.text


def test_a_p_wave_that_is_not_sinus_answers_no_sinus_rhythm(home):
    """Every limb lead inverted turns the P axis into the upper right quadrant: asked in plain
    words, regen names no sinus rhythm and says why, with the measured P axis."""
    from regen import ECG
    from regen.reader import read_ecg

    ecg = read_ecg(Q1)
    sig = ecg.signal.copy()
    limb = [i for i, n in enumerate(ecg.leads) if n.upper() in ("I", "II", "III", "AVR", "AVL",
                                                                "AVF")]
    sig[limb] *= -1
    turned = ECG(sig, ecg.fs, ecg.leads, ecg.id, ecg.source)
    with Regen.open(home) as rg:
        rhythm = rg.ask(turned, "What is the rhythm?", log=False)
        sinus = rg.ask(turned, "Is this sinus rhythm?", log=False)
        plain = rg.ask(Q1, "Is this sinus rhythm?", log=False)
    assert "sinus" not in rhythm.options[0] and "not a sinus P wave" in rhythm.text
    assert sinus.options == ("no",) and "measured: P axis" in sinus.text
    assert "not a sinus P wave" in sinus.text
    assert plain.options == ("yes",)


def test_plain_word_question_on_two_leads_says_what_cannot_be_assessed(home):
    from regen.reader import read_ecg

    ecg = read_ecg(Q1).select(("I", "II"))
    with Regen.open(home) as rg:
        free = rg.ask(ecg, "Any sign of a previous anteroseptal MI?", log=False)
        templ = rg.ask(ecg, "Is there an anteroseptal infarction?", log=False)  # ECG-QA wording
        lateral = rg.ask(ecg, "Is there evidence of an old inferior infarction?", log=False)
    for ans in (free, templ):
        assert ans.options == ("not sure",) and ans.abstained
        assert "V1-V4" in ans.text
    assert lateral.options != ("not sure",)     # limb leads I and II show the inferior wall


def test_eval_qa_reports_the_random_ecg_control(home, tmp_path):
    from regen.qa_data import derive_questions, record_ecg_id
    from regen.qa_eval import evaluate_qa

    queries = load_ptbxl(SAMPLE, folds="9")
    corpus = load_ptbxl(SAMPLE, folds="1-8")
    items = [it for it in derive_questions(queries, seed=0, per_template=2)
             if it.question_type == "single-verify" and it.attribute_type == "scp_code"][:12]
    with Regen.open(home) as rg:
        out = evaluate_qa(rg, items, {record_ecg_id(r): r for r in queries}, 10,
                          control=[r.path for r in corpus])
    ctl = out["random_ecg_control"]
    assert ctl["overall"]["n"] == out["overall"]["n"] == len(items)
    assert out["signal_gap"]["overall"] == pytest.approx(
        out["overall"]["accuracy"] - ctl["overall"]["accuracy"], abs=1e-4)
