"""Signal quality per lead: the PTB-XL annotation parser, the shipped model's response to noise
added to one lead of a real ECG, fitting on the bundled sample, and noise questions through
`Regen.ask` and the CLI."""

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
from regen.qa import parse_question
from regen.quality import QualityModel, fit_quality, noise_score, parse_noise_leads

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
    assert noise_score(probs, "any kind of noises", "V1") == max(
        probs[t]["V1"] for t in probs)
    two_lead = read_ecg(SAMPLE.parent / "other" / "mitdb" / "100")
    p2 = model.probabilities(two_lead)
    assert set(p2["static noise"]) == {"II", "V5"}
    assert noise_score(p2, "static noise", "V1") is None


def test_fit_on_the_bundled_sample_round_trips(tmp_path):
    m = fit_quality(SAMPLE, "1-8")
    assert m.coef.shape == (4, m.mean.shape[0]) and np.isfinite(m.coef).all()
    back = QualityModel.load(m.save(tmp_path / "q.json"))
    p, q = (x.probabilities(read_ecg(CLEAN)) for x in (m, back))
    for t in p:
        assert p[t] == pytest.approx(q[t], abs=1e-5)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(Exception, match="not a signal-quality model"):
        QualityModel.load(tmp_path / "bad.json")


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
    assert rare.abstained and "cannot be measured reliably" in rare.text
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
