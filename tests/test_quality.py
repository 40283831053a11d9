"""Signal quality per lead: the PTB-XL annotation parser, the shipped model's response to noise
added to one lead (and to a whole ECG) of a real ECG, fitting on the bundled sample, the prior
answer for a type the model cannot measure, and noise questions through `Regen.ask` and the
CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from regen import Regen, read_ecg
from regen.cli import app
from regen.ecg import STANDARD_LEADS
from regen.qa import answer_measured, parse_question
from regen.qa_data import QAItem
from regen.quality import (
    ANY_NOISE,
    HEADS,
    N_FEATURES,
    QualityModel,
    fit_quality,
    noise_score,
    parse_noise_leads,
    question_priors,
)

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
CLEAN = SAMPLE / "records100" / "01000" / "01469_lr"       # fold 9, no noise annotated
V1, II = STANDARD_LEADS.index("V1"), STANDARD_LEADS.index("II")


def _with(ecg, lead: int, add: np.ndarray):
    signal = ecg.signal.copy()
    row = [i for i, name in enumerate(ecg.leads) if name.upper() == STANDARD_LEADS[lead].upper()]
    signal[row[0]] += add.astype(signal.dtype)
    return replace(ecg, signal=signal)


@pytest.fixture(scope="module")
def model():
    return QualityModel.load()


def test_ptbxl_noise_cells_parse_to_leads():
    assert parse_noise_leads(" , I-AVF,  ") == frozenset(range(6))
    assert parse_noise_leads("V1,V2") == {V1, V1 + 1}
    assert parse_noise_leads("alles") == frozenset(range(12))
    assert parse_noise_leads("V1???") == {V1}
    assert parse_noise_leads("") == parse_noise_leads(None) == frozenset()
    # Annotators' other spellings in PTB-XL: German "alle", chest leads written short, a dot
    # for a comma, a lead among words; a grade alone names no lead.
    assert parse_noise_leads("alle, alle") == frozenset(range(12))
    assert parse_noise_leads("v1-2") == parse_noise_leads("V1,2") == {V1, V1 + 1}
    assert parse_noise_leads("v5-6") == {V1 + 4, V1 + 5}
    assert parse_noise_leads(" , I,II,AVR,AVL.AVF,V1,  ") == {0, 1, 3, 4, 5, V1}
    assert parse_noise_leads("Kontaktprobleme aVL ???") == {4}
    assert parse_noise_leads(" , mittel,  ") == frozenset()


def test_noise_added_to_one_lead_is_found_in_that_lead(model):
    ecg = read_ecg(CLEAN)
    rng = np.random.default_rng(0)
    before = model.probabilities(ecg)
    static = _with(ecg, V1, 0.08 * rng.normal(size=ecg.n_samples))
    after = model.probabilities(static)
    assert after["static noise"]["V1"] > max(0.15, 5 * before["static noise"]["V1"])
    assert after["static noise"]["V1"] >= model.threshold("static noise", True)
    assert after["static noise"]["V1"] > 2 * after["static noise"]["V6"]    # not everywhere

    t = np.arange(ecg.n_samples) / ecg.fs
    drift = _with(ecg, II, 1.5 * np.sin(2 * np.pi * 0.15 * t))
    moved = model.probabilities(drift)["baseline drift"]
    assert moved["II"] > max(0.15, 5 * before["baseline drift"]["II"])
    assert moved["II"] > 3 * moved["V5"]


def test_scores_read_one_lead_or_the_worst(model):
    probs = model.probabilities(read_ecg(CLEAN))
    assert noise_score(probs, "static noise", "V1") == probs["static noise"]["V1"]
    assert noise_score(probs, "static noise", None) == max(probs["static noise"].values())
    assert noise_score(probs, ANY_NOISE, "V1") == probs[ANY_NOISE]["V1"]    # its own head
    types = {t: v for t, v in probs.items() if t != ANY_NOISE}
    assert noise_score(types, ANY_NOISE, "V1") == max(v["V1"] for v in types.values())
    two_lead = read_ecg(SAMPLE.parent / "other" / "mitdb" / "100")
    p2 = model.probabilities(two_lead)
    assert set(p2["static noise"]) == {"II", "V5"}
    assert noise_score(p2, "static noise", "V1") is None


def test_a_clean_lead_in_a_noisy_ecg_reads_its_ecg(model):
    """PTB-XL annotates static noise over lead ranges ("I-AVR", "alles"), so the model reads each
    lead with its ECG: a clean V6 is likelier annotated when the other leads are noisy, though
    still less than they are."""
    ecg = read_ecg(CLEAN)
    add = 0.08 * np.random.default_rng(2).normal(size=ecg.signal.shape)
    add[[i for i, name in enumerate(ecg.leads) if name.upper() == "V6"]] = 0.0
    noisy = model.probabilities(replace(ecg, signal=ecg.signal + add.astype(ecg.signal.dtype)))
    before = model.probabilities(ecg)["static noise"]["V6"]
    assert noisy["static noise"]["V6"] > 2 * before
    assert noisy["static noise"]["V6"] < noisy["static noise"]["V1"] / 2


def test_fit_on_the_bundled_sample_round_trips(tmp_path):
    m = fit_quality(SAMPLE, "1-8")
    assert m.coef.shape == (len(HEADS), N_FEATURES) and np.isfinite(m.coef).all()
    back = QualityModel.load(m.save(tmp_path / "q.json"))
    p, q = (x.probabilities(read_ecg(CLEAN)) for x in (m, back))
    for t in p:
        assert p[t] == pytest.approx(q[t], abs=1e-5)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(Exception, match="not a signal-quality model"):
        QualityModel.load(tmp_path / "bad.json")
    old = json.loads((tmp_path / "q.json").read_text())
    old.pop("format")                                   # a format-1 file (before the heads)
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(Exception, match="format 1.*regen quality train"):
        QualityModel.load(tmp_path / "old.json")


def _item(question: str, attribute: str, answer: str) -> QAItem:
    return QAItem(0, 26, "single-verify", "noise", question, (answer,), (1,), (attribute,))


def test_a_type_the_model_cannot_measure_gets_its_prior(model):
    ecg = read_ecg(CLEAN)
    q = parse_question("Does this ECG show electrodes problems in lead V2?")
    assert q is not None and "electrodes problems" in model.unsupported
    items = [_item("Does this ECG show electrodes problems in lead V2?", "electrodes problems",
                   a) for a in ("yes", "yes", "no")]
    items.append(_item("Does this ECG show static noise?", "static noise", "no"))
    priors = question_priors(items)
    assert priors == {"electrodes problems|lead": (0.6667, 3), "static noise|ecg": (0.0, 1)}
    probs = model.probabilities(ecg)
    ans = answer_measured(q, probs, replace(model, priors=priors))
    assert ans.options == ("yes",) and not ans.abstained
    assert "not measured from the signal" in ans.text and "67%" in ans.text
    assert ans.confidence == pytest.approx(1 / 3, abs=1e-3)
    bare = answer_measured(q, probs, replace(model, priors={}))
    assert bare.abstained and "cannot be measured reliably" in bare.text


def test_lead_questions_parse_only_for_noise():
    q = parse_question("Does this ECG show static noise in lead aVL?")
    assert q is not None and (q.group, q.options, q.lead) == ("noise", ("static noise",), "aVL")
    assert q.measured
    anyq = parse_question("Does this ECG show any kind of noises in lead V2?")
    assert anyq is not None and anyq.lead == "V2" and anyq.options == ("any kind of noises",)
    assert parse_question("Does this ECG show atrial fibrillation in lead V1?") is None
    assert not parse_question("Does this ECG show atrial fibrillation?").measured


@pytest.fixture(scope="module")
def home(sample_home):
    return sample_home


def test_noise_questions_are_measured_not_voted(home):
    ecg = read_ecg(CLEAN)
    noisy = _with(ecg, V1, 0.08 * np.random.default_rng(1).normal(size=ecg.n_samples))
    with Regen.open(home) as rg:
        yes = rg.ask(noisy, "Does this ECG show static noise in lead V1?")
        no = rg.ask(ecg, "Does this ECG show baseline drift in lead V4?")
        which = rg.ask(noisy, "What kind of noises does this ECG show?")
        rare = rg.ask(noisy, "Does this ECG show electrodes problems in lead V2?")
        voted = rg.ask(noisy, "Does this ECG show electrodes problems?")
        pick = rg.ask(noisy, "Which noise does this ECG show, electrodes problems or static "
                             "noise?")
        absent = rg.ask(SAMPLE.parent / "other" / "mitdb" / "100",
                        "Does this ECG show static noise in lead V1?")
    assert yes.refiner == "signal-quality" and yes.options == ("yes",)
    assert "measured from the signal" in yes.text and yes.neighbours[0]
    assert no.options == ("no",) and 0 < no.confidence <= 1
    # The types it models, each with its score; electrode problems (5 annotated leads) is not.
    assert set(which.evidence) == {"baseline drift", "burst noise", "static noise"}
    # Electrode problems in one lead: the usual answer of that kind of question, marked.
    assert rare.options == ("no",) and not rare.abstained
    assert "not measured from the signal" in rare.text
    assert voted.refiner == "knn-vote" and voted.options in (("yes",), ("no",), ("not sure",))
    assert voted.text.startswith("not measured from the signal") and voted.evidence
    assert "electrodes problems" not in pick.options and pick.options[0] != "not sure"
    assert "electrodes problems: cannot be measured" in pick.text
    assert absent.abstained and "has no lead V1" in absent.text


def test_cli_quality_check(tmp_path):
    out = CliRunner().invoke(app, ["quality", "check", str(CLEAN), "--json"])
    assert out.exit_code == 0, out.output
    row = json.loads(out.stdout.strip().splitlines()[0])
    assert set(row["probabilities"]["static noise"]) == set(STANDARD_LEADS)
    bad = tmp_path / "x.hea"
    bad.write_text("garbage\n")
    out = CliRunner().invoke(app, ["quality", "check", str(bad)])
    assert out.exit_code != 0
